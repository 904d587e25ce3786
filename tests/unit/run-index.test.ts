import { describe, expect, it } from "vitest";
import type { AnyRun, CodeRun, DocsRun } from "../../src/api/index.js";
import { buildAuthzAnnotations } from "../../src/authz/authorize.js";
import { RunIndex } from "../../src/controller/run-index.js";

function codeRun(name: string, service: string, requester?: string, ns = "team"): CodeRun {
  const spec = {
    taskId: 1,
    service,
    repositoryUrl: "https://github.com/acme/r.git",
    docsRepositoryUrl: "",
    model: "m",
    githubUser: "alice",
  };
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: {
      name,
      namespace: ns,
      uid: `uid-${ns}-${name}`,
      ...(requester ? { annotations: buildAuthzAnnotations(requester, spec) } : {}),
    },
    spec,
  };
}

function docsRun(name: string): DocsRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "DocsRun",
    metadata: { name, namespace: "team", uid: `uid-team-${name}` },
    spec: { repositoryUrl: "https://github.com/acme/d.git", workingDirectory: ".", sourceBranch: "main", model: "m", githubUser: "alice" },
  } as DocsRun;
}

const names = (m: ReadonlyMap<string, AnyRun>) => [...m.values()].map((r) => r.metadata.name).sort();

describe("RunIndex", () => {
  it("files runs by requester (both kinds) and CodeRuns by service, per namespace", () => {
    const idx = new RunIndex();
    [
      codeRun("a", "api", "alice"),
      codeRun("b", "api"),
      codeRun("c", "web", "alice"),
      docsRun("d"),
      codeRun("e", "api", "alice", "other"),
    ].forEach((r) => idx.upsert(r));
    expect(names(idx.ofRequester("team", "alice"))).toEqual(["a", "c"]);
    expect(names(idx.ofRequester("team", "kubernetes"))).toEqual(["b", "d"]);
    expect(names(idx.ofRequester("other", "alice"))).toEqual(["e"]);
    expect(names(idx.codeRunsOfService("team", "api"))).toEqual(["a", "b"]);
    expect(names(idx.codeRunsOfService("team", "nope"))).toEqual([]);
    expect(idx.size).toBe(5);
  });

  it("refiles a run whose spec changed since the intake authorized it (its requester becomes kubernetes) and whose service changed", () => {
    const idx = new RunIndex();
    const a = codeRun("a", "api", "alice");
    idx.upsert(a);
    const edited = { ...a, spec: { ...a.spec, service: "web", githubUser: "mallory" } };
    idx.upsert(edited);
    expect(names(idx.ofRequester("team", "alice"))).toEqual([]);
    expect(idx.ofRequester("team", "kubernetes").get(a.metadata.uid!)).toBe(edited);
    expect(names(idx.codeRunsOfService("team", "api"))).toEqual([]);
    expect(names(idx.codeRunsOfService("team", "web"))).toEqual(["a"]);
    expect(idx.size).toBe(1);
  });

  it("unfiles deleted runs and ignores runs without a uid", () => {
    const idx = new RunIndex();
    const a = codeRun("a", "api", "alice");
    idx.upsert(a);
    idx.upsert({ ...codeRun("x", "api"), metadata: { name: "x", namespace: "team" } });
    idx.remove(a);
    idx.remove(a);
    expect(idx.size).toBe(0);
    expect(names(idx.ofRequester("team", "alice"))).toEqual([]);
    expect(names(idx.codeRunsOfService("team", "api"))).toEqual([]);
  });
});
