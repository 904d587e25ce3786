import { describe, expect, it, beforeEach } from "vitest";
import type { CodeRun, DocsRun } from "../../src/api/index.js";
import { buildAuthzAnnotations } from "../../src/authz/authorize.js";
import { parseConfig } from "../../src/config/config.js";
import { RunReconciler, type RenderFiles } from "../../src/controller/reconciler.js";
import { createLogger } from "../../src/observability/logger.js";
import { FakeKube } from "../support/fake-controller-kube.js";

const NS = "team";
const config = parseConfig("job: {maxRetries: 2, retryBackoffSeconds: 10, retryBackoffMaxSeconds: 100}\nconcurrency: {perService: 1}", {});
const silent = createLogger({ level: "silent" });
const render: RenderFiles = () => ({ "CLAUDE.md": "# task", "managed-settings.json": "{}" });

function codeRun(name: string, extra: Partial<CodeRun["spec"]> = {}, created = "2026-01-01T00:00:00Z"): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name, namespace: NS, uid: `uid-${name}-0000-1111`, generation: 1, creationTimestamp: created },
    spec: {
      taskId: 7,
      service: "api",
      repositoryUrl: "https://github.com/acme/r.git",
      docsRepositoryUrl: "https://github.com/acme/d.git",
      model: "m",
      githubUser: "alice",
      ...extra,
    },
  };
}

describe("RunReconciler", () => {
  let kube: FakeKube;
  let now: number;
  let rec: RunReconciler;
  beforeEach(() => {
    kube = new FakeKube();
    kube.secrets.set(`${NS}/orchestrator-secrets`, ["ANTHROPIC_API_KEY"]);
    kube.secrets.set(`${NS}/github-token-alice`, ["token"]);
    now = Date.parse("2026-01-01T01:00:00Z");
    rec = new RunReconciler({ kube, cache: kube, config, renderFiles: render, logger: silent, now: () => now });
  });

  it("creates one PVC, one ConfigMap and one Job, and repeating the pass 100 times creates nothing new", async () => {
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.pvcs.size).toBe(1);
    expect(kube.configMaps.size).toBe(1);
    expect(kube.jobs.size).toBe(1);
    expect(run.status?.phase).toBe("Running");
    expect(run.status?.attempts).toBe(1);
    const calls = kube.calls.length;
    for (let i = 0; i < 100; i++) await rec.reconcile("CodeRun", NS, "a");
    expect(kube.jobs.size).toBe(1);
    expect(kube.configMaps.size).toBe(1);
    expect(kube.calls.slice(calls).filter((c) => c.startsWith("create") || c.startsWith("patch"))).toEqual([]);
  });

  it("does not create a second Job, nor read it live, when the cache has not seen the first yet", async () => {
    kube.cacheLag = true;
    kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    expect(await rec.reconcile("CodeRun", NS, "a")).toEqual({ requeueAfterMs: 60_000 });
    expect(kube.jobs.size).toBe(1);
    expect(kube.calls.filter((c) => c.startsWith("getJob"))).toEqual([]);
  });

  it("works from the status it wrote while the cache still shows the run before that write: no second, older status", async () => {
    kube.statusLag = true;
    const run = kube.addRun({ ...codeRun("a"), metadata: { ...codeRun("a").metadata, resourceVersion: "1" } });
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status).toBeUndefined();
    // The Job's event comes first: the cached run has no status yet.
    now += 1000;
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.calls.filter((c) => c.startsWith("patchStatus"))).toHaveLength(1);
    kube.flushStatus();
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.calls.filter((c) => c.startsWith("patchStatus"))).toHaveLength(1);
    expect(run.status?.conditions?.map((c) => c.type)).toEqual(["JobCreated", "Ready", "Waiting"]);
    // A newer version from elsewhere wins over what this process wrote.
    kube.statusLag = false;
    run.spec.cancel = true;
    run.metadata.resourceVersion = "3";
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status?.phase).toBe("Cancelled");
  });

  it("reads a Job live when the cache lacks it and this process did not just create it (after a restart)", async () => {
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    kube.hideJob([...kube.jobs.keys()][0]!);
    const restarted = new RunReconciler({ kube, cache: kube, config, renderFiles: render, logger: silent, now: () => now });
    await restarted.reconcile("CodeRun", NS, "a");
    expect(kube.calls.filter((c) => c.startsWith("getJob"))).toEqual([`getJob ${run.status?.jobName}`]);
    expect(run.status?.phase).toBe("Running");
  });

  it("starts a run from the caches alone: no Secret or claim is read from the API server", async () => {
    kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.calls.filter((c) => !c.includes("(cache)")).map((c) => c.split(" ")[0])).toEqual([
      "createPvc",
      "createConfigMap",
      "createJob",
      "createEvent",
      "patchStatus",
    ]);
  });

  it("confirms with a live read a Secret the cache does not have yet, and starts the run", async () => {
    kube.secretCache = new Map([[`${NS}/orchestrator-secrets`, ["ANTHROPIC_API_KEY"]]]);
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.calls.filter((c) => c.startsWith("getSecretKeys"))).toEqual(["getSecretKeys github-token-alice"]);
    expect(run.status?.phase).toBe("Running");
  });

  it("succeeds with the PR URL from the termination message and stays finished when the Job is deleted", async () => {
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    const job = run.status?.jobName ?? "";
    kube.finishJob(job, NS, true, JSON.stringify({ outcome: "succeeded", pullRequestUrl: "https://github.com/o/r/pull/1" }));
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status).toMatchObject({ phase: "Succeeded", pullRequestUrl: "https://github.com/o/r/pull/1", workCompleted: true });
    expect(run.status?.completionTime).toBeTruthy();
    await kube.deleteJob(NS, job);
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.jobs.size).toBe(0);
    expect(run.status?.phase).toBe("Succeeded");
  });

  it("retries failed attempts with backoff, as new Jobs, then fails with the reason", async () => {
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    kube.finishJob(
      run.status?.jobName ?? "",
      NS,
      false,
      JSON.stringify({ outcome: "failed", reason: "PushFailed", message: "remote rejected" }),
      new Date(now),
    );
    const r1 = await rec.reconcile("CodeRun", NS, "a");
    expect(run.status).toMatchObject({ phase: "Pending", reason: "PushFailed" });
    expect(r1.requeueAfterMs).toBeGreaterThan(9000);
    expect(kube.jobs.size).toBe(1);
    now += 10_100;
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status).toMatchObject({ phase: "Running", attempts: 2, retryCount: 1 });
    expect(kube.jobs.size).toBe(2);
    const params = JSON.parse(String([...kube.configMaps.values()].find((c) => c.metadata?.name?.includes("-a2-"))?.data?.["run.json"]));
    expect(params.continueSession).toBe(true);
    kube.finishJob(run.status?.jobName ?? "", NS, false, "plain log tail", new Date(now));
    await rec.reconcile("CodeRun", NS, "a");
    now += 20_100;
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status?.attempts).toBe(3);
    kube.finishJob(run.status?.jobName ?? "", NS, false, undefined, new Date(now));
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status).toMatchObject({ phase: "Failed", attempts: 3, retryCount: 2 });
    expect(run.status?.message).toMatch(/Failed after 3 attempt/);
    expect(kube.jobs.size).toBe(3);
    expect([...kube.events.values()].map((e) => e.reason)).toEqual(
      expect.arrayContaining(["JobCreated", "AttemptFailed", "Retrying", "Failed"]),
    );
  });

  it("a missing Secret ends the run with a condition naming it, without creating a Job", async () => {
    kube.secrets.delete(`${NS}/github-token-alice`);
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    expect(run.status?.phase).toBe("Failed");
    expect(run.status?.reason).toBe("SecretMissing");
    expect(run.status?.message).toContain("github-token-alice");
    expect(run.status?.conditions?.find((c) => c.type === "ConfigError")?.message).toContain("setup-agent-secrets.sh");
    expect(kube.jobs.size).toBe(0);
  });

  it("refuses to mount the controller's own Secret before reading any Secret, revealing nothing", async () => {
    const probes = [
      { name: "own", secretName: "orchestrator-secrets", secretKey: "GITHUB_WEBHOOK_SECRET" },
      { name: "absent", secretName: "does-not-exist", secretKey: "k" },
    ];
    for (const p of probes) {
      const run = kube.addRun(codeRun(p.name, { envFromSecrets: [{ name: "X", secretName: p.secretName, secretKey: p.secretKey }] }));
      const calls = kube.calls.length;
      await rec.reconcile("CodeRun", NS, p.name);
      expect(run.status).toMatchObject({ phase: "Failed", reason: "NotAuthorized" });
      expect(run.status?.message).toContain(`Secret ${p.secretName} may not be mounted into runs`);
      expect(run.status?.message).not.toMatch(/does not exist|has no key/);
      expect(kube.calls.slice(calls).filter((c) => /^(getSecret|secretKeys)/.test(c))).toEqual([]);
    }
    expect(kube.jobs.size).toBe(0);
  });

  it("fails a kubectl-made run whose spec is over authorization.quotas.maxSpecBytes, without creating anything", async () => {
    const big = kube.addRun(codeRun("big", { promptModification: "x".repeat(config.authorization.quotas.maxSpecBytes) }));
    await rec.reconcile("CodeRun", NS, "big");
    expect(big.status).toMatchObject({ phase: "Failed", reason: "QuotaExceeded" });
    expect(big.status?.message).toMatch(/authorization\.quotas\.maxSpecBytes allows 131072/);
    expect(kube.jobs.size).toBe(0);
  });

  it("refuses a repository on another host and reserved environment variables at reconcile", async () => {
    const off = kube.addRun(codeRun("off", { docsRepositoryUrl: "http://evil.example:8080/x/y.git" }));
    const env = kube.addRun(codeRun("env", { env: { NODE_OPTIONS: "--require /workspace/x.js" } }));
    await rec.reconcile("CodeRun", NS, "off");
    await rec.reconcile("CodeRun", NS, "env");
    expect(off.status).toMatchObject({ phase: "Failed", reason: "RepositoryNotAllowed" });
    expect(env.status).toMatchObject({ phase: "Failed", reason: "InvalidRequest" });
    expect(kube.jobs.size).toBe(0);
  });

  it("keys workspaces by repository and keeps using a legacy workspace-{service} bound to the same one", async () => {
    const claimOf = (run: { status?: { jobName?: string } }) =>
      kube.jobs.get(`${NS}/${run.status?.jobName}`)?.spec?.template.spec?.volumes?.find((v) => v.name === "workspace")
        ?.persistentVolumeClaim?.claimName;
    await kube.createPvc({
      metadata: { name: "workspace-api", namespace: NS, annotations: { "orchestrator.platform/repository": "acme/r" } },
    });
    const a = kube.addRun(codeRun("a"));
    const b = kube.addRun(codeRun("b", { repositoryUrl: "https://github.com/other/api.git" }));
    const c = kube.addRun(codeRun("c", { service: "web" }));
    await kube.createPvc({ metadata: { name: "workspace-web", namespace: NS } });
    for (const r of ["a", "b", "c"]) await rec.reconcile("CodeRun", NS, r);
    // Bound legacy volume: its repository keeps it; another repository gets a volume of its own,
    // and both run at once (different workspaces do not share a slot).
    expect(claimOf(a)).toBe("workspace-api");
    expect(claimOf(b)).toMatch(/^workspace-api-[0-9a-f]{8}$/);
    expect(kube.pvcs.get(`${NS}/${claimOf(b)}`)?.metadata?.annotations).toEqual({ "orchestrator.platform/repository": "other/api" });
    // Unbound legacy volume (made before this version): used as it is.
    expect(claimOf(c)).toBe("workspace-web");
  });

  it("an unrenderable template ends the run with reason TemplateError naming the template", async () => {
    const bad = new RunReconciler({
      kube,
      cache: kube,
      config,
      logger: silent,
      now: () => now,
      renderFiles: () => {
        throw Object.assign(new Error("missing variable foo"), { template: "code_CLAUDE.md" });
      },
    });
    const run = kube.addRun(codeRun("a"));
    await bad.reconcile("CodeRun", NS, "a");
    expect(run.status).toMatchObject({ phase: "Failed", reason: "TemplateError" });
    expect(run.status?.message).toContain("code_CLAUDE.md");
  });

  it("cancellation deletes the Job and ends Cancelled", async () => {
    const run = kube.addRun(codeRun("a"));
    await rec.reconcile("CodeRun", NS, "a");
    run.spec.cancel = true;
    await rec.reconcile("CodeRun", NS, "a");
    expect(kube.jobs.size).toBe(0);
    expect(run.status?.phase).toBe("Cancelled");
  });

  it("runs of one service wait for a slot, oldest first", async () => {
    const a = kube.addRun(codeRun("a", {}, "2026-01-01T00:00:01Z"));
    const b = kube.addRun(codeRun("b", {}, "2026-01-01T00:00:02Z"));
    const c = kube.addRun(codeRun("c", {}, "2026-01-01T00:00:03Z"));
    const other = kube.addRun(codeRun("d", { service: "web" }, "2026-01-01T00:00:04Z"));
    // c is reconciled before b, but b is older and must start first.
    await rec.reconcile("CodeRun", NS, "a");
    await rec.reconcile("CodeRun", NS, "c");
    await rec.reconcile("CodeRun", NS, "b");
    await rec.reconcile("CodeRun", NS, "d");
    expect(a.status?.phase).toBe("Running");
    expect(b.status).toMatchObject({ phase: "Pending", reason: "WaitingForSlot" });
    expect(c.status?.phase).toBe("Pending");
    expect(b.status?.message).toContain("service api allows 1");
    expect(other.status?.phase).toBe("Running");
    kube.finishJob(a.status?.jobName ?? "", NS, true);
    await rec.reconcile("CodeRun", NS, "a");
    await rec.reconcile("CodeRun", NS, "c");
    await rec.reconcile("CodeRun", NS, "b");
    expect(b.status?.phase).toBe("Running");
    expect(c.status?.phase).toBe("Pending");
  });

  it("starts only a requester's oldest maxActiveRuns unfinished runs: the rest wait for the quota (kubectl-made runs pass no intake)", async () => {
    const quota = parseConfig("authorization: {quotas: {maxActiveRuns: 2}}\nconcurrency: {perService: 10}", {});
    rec = new RunReconciler({ kube, cache: kube, config: quota, renderFiles: render, logger: silent, now: () => now });
    // Different services, so only the quota can hold them back; reconciled newest first.
    const runs = ["a", "b", "c", "d"].map((n, i) => kube.addRun(codeRun(n, { service: `s${n}` }, `2026-01-01T00:00:0${i + 1}Z`)));
    const [a, b, c, d] = runs as [CodeRun, CodeRun, CodeRun, CodeRun];
    for (const n of ["d", "c", "b", "a"]) await rec.reconcile("CodeRun", NS, n);
    expect(runs.map((r) => r.status?.phase)).toEqual(["Running", "Running", "Pending", "Pending"]);
    expect(c.status).toMatchObject({ reason: "WaitingForQuota" });
    expect(c.status?.message).toMatch(/requester kubernetes: authorization\.quotas\.maxActiveRuns allows 2 .* 2 older ones/);
    expect(kube.jobs.size).toBe(2);
    // Another requester's runs do not count against it.
    const api = kube.addRun({
      ...codeRun("e", { service: "se" }, "2026-01-01T00:00:09Z"),
      metadata: {
        ...codeRun("e").metadata,
        creationTimestamp: "2026-01-01T00:00:09Z",
        annotations: buildAuthzAnnotations("api-token-1", codeRun("e", { service: "se" }).spec),
      },
    });
    await rec.reconcile("CodeRun", NS, "e");
    expect(api.status?.phase).toBe("Running");
    // One finishes: the oldest waiting one starts, the next keeps waiting.
    kube.finishJob(a.status?.jobName ?? "", NS, true);
    for (const n of ["a", "d", "c"]) await rec.reconcile("CodeRun", NS, n);
    expect([a, b, c, d].map((r) => r.status?.phase)).toEqual(["Succeeded", "Running", "Running", "Pending"]);
  });

  it("DocsRuns get an ephemeral workspace and no PVC", async () => {
    const d: DocsRun = {
      apiVersion: "orchestrator.platform/v1",
      kind: "DocsRun",
      metadata: { name: "d", namespace: NS, uid: "u-d" },
      spec: { repositoryUrl: "acme/docs", workingDirectory: ".", sourceBranch: "main", githubUser: "alice" },
    };
    kube.addRun(d);
    await rec.reconcile("DocsRun", NS, "d");
    expect(kube.pvcs.size).toBe(0);
    const job = [...kube.jobs.values()][0];
    expect(job?.spec?.template.spec?.volumes?.find((v) => v.name === "workspace")?.emptyDir).toEqual({});
  });
});
