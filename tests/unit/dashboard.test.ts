import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Phase } from "../../src/api/constants.js";
import type { Play } from "../../src/api/play.js";
import type { AnyRun, CodeRun } from "../../src/api/types.js";
import { dashboardRoutes, LiveFeed } from "../../src/dashboard/index.js";
import type { DashboardKube, JobSummary, WatchedCollection, WorkspaceSummary } from "../../src/dashboard/ports.js";
import { cookiePath } from "../../src/dashboard/routes.js";
import { computeServices } from "../../src/dashboard/services.js";
import { createLogger } from "../../src/observability/logger.js";
import { emptyProgress, progressFromLine } from "../../web/src/progress.js";
import { createMemoryRunStore } from "../support/memory-run-store.js";
import { API_TOKEN, authHeader, buildTestApp, type TestApp } from "../support/webhook-fixtures.js";

/** A hand-driven informer: list() and the add/update/delete handlers. */
class FakeCollection<T> implements WatchedCollection<T> {
  items: T[] = [];
  private readonly handlers: Record<string, ((o: T) => void)[]> = { add: [], update: [], delete: [] };
  list(): T[] {
    return this.items;
  }
  on(verb: "add" | "update" | "delete", cb: (o: T) => void): void {
    this.handlers[verb]!.push(cb);
  }
  emit(verb: "add" | "update" | "delete", o: T): void {
    for (const h of this.handlers[verb]!) h(o);
  }
}

function codeRun(
  name: string,
  service: string,
  extra: { uid?: string; created?: string; phase?: Phase; waiting?: string; cancel?: boolean } = {},
): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: {
      name,
      uid: extra.uid ?? `uid-${name}`,
      creationTimestamp: extra.created ?? "2025-06-01T10:00:00Z",
      managedFields: [{ manager: "x" }],
    } as CodeRun["metadata"],
    spec: {
      service,
      taskId: 1,
      model: "m",
      repositoryUrl: "acme/app",
      docsRepositoryUrl: "acme/docs",
      ...(extra.cancel ? { cancel: true } : {}),
    },
    status: {
      ...(extra.phase ? { phase: extra.phase } : {}),
      ...(extra.waiting
        ? {
            conditions: [
              {
                type: "Waiting",
                status: "True",
                reason: extra.waiting,
                message: `why ${extra.waiting}`,
                lastTransitionTime: "2025-06-01T10:00:00Z",
              },
            ],
          }
        : {}),
    },
  };
}

function job(name: string, runUid: string, finished: boolean, attempt = 1): JobSummary {
  return {
    name,
    uid: `uid-${name}`,
    runUid,
    runName: "",
    service: "",
    attempt,
    active: finished ? 0 : 1,
    succeeded: finished ? 1 : 0,
    failed: 0,
    finished,
    conditions: [],
  };
}

const workspace = (service: string): WorkspaceSummary => ({
  name: `workspace-${service}`,
  service,
  phase: "Bound",
  requested: "10Gi",
  accessModes: ["ReadWriteOnce"],
});

describe("computeServices", () => {
  it("counts a slot per run with an unfinished Job and queues the other unfinished runs oldest first", () => {
    const runs = [
      codeRun("holder", "api", { created: "2025-06-01T10:00:00Z", phase: "Running" }),
      codeRun("second", "api", { created: "2025-06-01T10:02:00Z", waiting: "WaitingForSlot" }),
      codeRun("first", "api", { created: "2025-06-01T10:01:00Z", waiting: "WaitingForSlot" }),
      codeRun("done", "api", { phase: "Succeeded" }),
      codeRun("cancelled", "api", { cancel: true }),
      codeRun("other", "web", { phase: "Failed" }),
    ];
    const jobs = [job("holder-a1", "uid-holder", false), job("done-a1", "uid-done", true)];
    const views = computeServices(runs, jobs, [workspace("api"), workspace("billing")], 1);
    expect(views.map((v) => v.service)).toEqual(["api", "billing", "web"]);
    const api = views[0]!;
    expect(api.workspace?.name).toBe("workspace-api");
    expect(api.active).toEqual([{ run: "holder", job: "holder-a1", attempt: 1, since: undefined }]);
    expect(api.queue.map((q) => [q.run, q.reason])).toEqual([
      ["first", "WaitingForSlot"],
      ["second", "WaitingForSlot"],
    ]);
    expect(api.phases).toEqual({ Running: 1, Pending: 3, Succeeded: 1 });
    expect(views[1]).toMatchObject({ service: "billing", active: [], queue: [], phases: {} });
    expect(views[2]).toMatchObject({ service: "web", queue: [], phases: { Failed: 1 } });
    expect(views[2]!.workspace).toBeUndefined();
  });
});

describe("progressFromLine", () => {
  it("follows the runner's log lines and ignores anything else", () => {
    const lines = [
      "plain text from git",
      '{"level":30,"msg":"Agent wrote","turn":1,"text":"hi"}',
      '{"level":30,"msg":"Agent called tool","turn":1,"tool":"Bash"}',
      '{"level":30,"msg":"Agent called tool","turn":2,"tool":"Edit"}',
      "{not json",
      '{"level":30,"msg":"Agent progress","turns":10,"inputTokens":1200,"outputTokens":300}',
    ];
    const p = lines.reduce(progressFromLine, emptyProgress());
    expect(p).toEqual({ turns: 10, toolCalls: 2, inputTokens: 1200, outputTokens: 300, costUsd: null, lastTool: "Edit" });
    const end = progressFromLine(
      p,
      '{"msg":"Claude Code exited","turns":12,"toolCalls":{"Bash":3,"Edit":2},"inputTokens":1500,"outputTokens":400,"costUsd":0.0123}',
    );
    expect(end).toMatchObject({ turns: 12, toolCalls: 5, inputTokens: 1500, outputTokens: 400, costUsd: 0.0123 });
  });
});

describe("cookiePath", () => {
  it.each([
    [undefined, "/"],
    ["/orchestrator", "/orchestrator"],
    ["/orchestrator/", "/orchestrator"],
    ["/", "/"],
    ["orchestrator", "/"],
    ["/a;b", "/"],
    ["/x y", "/"],
  ])("%s → %s", (prefix, expected) => expect(cookiePath(prefix)).toBe(expected));
});

// ---- routes ---------------------------------------------------------------------------------

interface Harness {
  t: TestApp;
  feed: LiveFeed;
  runs: FakeCollection<AnyRun>;
  plays: FakeCollection<Play>;
  kubeCalls: string[];
  assets: string;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.t.close();
  if (h) rmSync(h.assets, { recursive: true, force: true });
  h = undefined;
});

function fakeKube(calls: string[]): DashboardKube {
  return {
    async listEvents(uids) {
      calls.push(`events:${uids.join(",")}`);
      return [
        { type: "Normal", reason: "Created", message: "Created Job", object: "CodeRun/x", count: 1, lastTime: "2025-06-01T10:00:00Z" },
      ];
    },
    async listJobs(runUid) {
      calls.push(`jobs:${runUid ?? "*"}`);
      return runUid ? [job("j1", runUid, true), job("j2", runUid, false, 2)] : [];
    },
    async listPods(runUid) {
      calls.push(`pods:${runUid}`);
      return [{ name: "p1", uid: "pod-uid", job: "j2", phase: "Running" }];
    },
    async listWorkspaces() {
      calls.push("workspaces");
      return [workspace("api")];
    },
  };
}

function harness(opts: { built?: boolean } = {}): Harness {
  const assets = mkdtempSync(join(tmpdir(), "dash-assets-"));
  if (opts.built !== false) {
    writeFileSync(join(assets, "index.html"), "<!doctype html><title>orchestrator</title>");
    mkdirSync(join(assets, "assets"));
    writeFileSync(join(assets, "assets", "index-abc.js"), "console.log(1)");
  }
  const runs = new FakeCollection<AnyRun>();
  const plays = new FakeCollection<Play>();
  const kubeCalls: string[] = [];
  const store = createMemoryRunStore("orchestrator");
  const feed = new LiveFeed({ runs: [runs], plays });
  const routes = dashboardRoutes({
    feed,
    kube: fakeKube(kubeCalls),
    runs: store,
    auth: {
      enabled: true,
      authenticate: async (header) =>
        header === `Bearer ${API_TOKEN}`
          ? { ok: true, principal: { name: "api-token-1", method: "token" } }
          : { ok: false, status: 401, message: "Invalid token." },
    },
    namespace: "orchestrator",
    slotsPerService: 1,
    assetsDir: assets,
    logger: createLogger({ level: "silent" }),
  });
  const t = buildTestApp({ runs: store, routes });
  h = { t, feed, runs, plays, kubeCalls, assets };
  return h;
}

const sessionCookie = (setCookie: string | string[] | undefined) =>
  [setCookie ?? []].flat().find((c) => c.startsWith("orchestrator_session="));

describe("dashboard routes", () => {
  it("serves the built front end with a strict content security policy, and keeps the API's 404s", async () => {
    const { t } = harness();
    const index = await t.app.inject({ method: "GET", url: "/" });
    expect(index.statusCode).toBe(200);
    expect(index.headers["content-type"]).toMatch(/text\/html/);
    expect(index.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(index.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(index.headers["cache-control"]).toBe("no-cache");
    const asset = await t.app.inject({ method: "GET", url: "/assets/index-abc.js" });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers["cache-control"]).toContain("immutable");
    const missing = await t.app.inject({ method: "GET", url: "/nope" });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers["content-type"]).toMatch(/problem\+json/);
  });

  it("says how to build the front end when it is not built", async () => {
    const { t } = harness({ built: false });
    const res = await t.app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toContain("npm run build");
  });

  it("signs in with a token the API accepts into an HttpOnly cookie, and refuses a bad one", async () => {
    const { t } = harness();
    const empty = await t.app.inject({ method: "POST", url: "/dashboard/login", payload: {} });
    expect(empty.statusCode).toBe(422);
    const bad = await t.app.inject({ method: "POST", url: "/dashboard/login", payload: { token: "wrong" } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().detail).toContain("refused");
    expect(sessionCookie(bad.headers["set-cookie"])).toBeUndefined();

    const ok = await t.app.inject({
      method: "POST",
      url: "/dashboard/login",
      payload: { token: API_TOKEN },
      headers: { "x-forwarded-prefix": "/orchestrator", "x-forwarded-proto": "https" },
    });
    expect(ok.statusCode).toBe(200);
    const cookie = sessionCookie(ok.headers["set-cookie"])!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/Path=\/orchestrator/);

    const out = await t.app.inject({ method: "POST", url: "/dashboard/logout", payload: {} });
    expect(sessionCookie(out.headers["set-cookie"])).toMatch(/Max-Age=0/);
  });

  it("authenticates API calls by the cookie, and refuses cookie writes without the CSRF header", async () => {
    const { t } = harness();
    const cookies = { orchestrator_session: API_TOKEN };
    const session = await t.app.inject({ method: "GET", url: "/api/v1/dashboard/session", cookies });
    expect(session.statusCode).toBe(200);
    expect(session.json().data).toMatchObject({
      principal: { name: "api-token-1" },
      namespace: "orchestrator",
      playsEnabled: true,
      slotsPerService: 1,
    });
    expect(
      (await t.app.inject({ method: "GET", url: "/api/v1/dashboard/session", cookies: { orchestrator_session: "wrong" } })).statusCode,
    ).toBe(401);
    expect((await t.app.inject({ method: "GET", url: "/api/v1/dashboard/session" })).statusCode).toBe(401);

    const created = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/tasks",
      headers: authHeader,
      payload: { task_id: 1, service: "api", repository_url: "acme/app", docs_repository_url: "acme/docs", github_user: "dev" },
    });
    const name = created.json().data.coderun_name as string;
    const forged = await t.app.inject({ method: "POST", url: `/api/v1/runs/coderun/${name}/cancel`, cookies });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().detail).toContain("x-orchestrator-dashboard");
    expect((await t.runs.get("CodeRun", name)).spec.cancel).toBeUndefined();
    const cancel = await t.app.inject({
      method: "POST",
      url: `/api/v1/runs/coderun/${name}/cancel`,
      cookies,
      headers: { "x-orchestrator-dashboard": "1" },
    });
    expect(cancel.statusCode).toBe(202);
    expect((await t.runs.get("CodeRun", name)).spec.cancel).toBe(true);
  });

  it("gives a run's attempts, pods and the Events of all of them", async () => {
    const { t, kubeCalls } = harness();
    const created = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/tasks",
      headers: authHeader,
      payload: { task_id: 1, service: "api", repository_url: "acme/app", docs_repository_url: "acme/docs", github_user: "dev" },
    });
    const name = created.json().data.coderun_name as string;
    const uid = (await t.runs.get("CodeRun", name)).metadata.uid;
    const res = await t.app.inject({ method: "GET", url: `/api/v1/dashboard/runs/coderun/${name}/timeline`, headers: authHeader });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.jobs.map((j: JobSummary) => j.name)).toEqual(["j1", "j2"]);
    expect(kubeCalls).toContain(`events:${uid},uid-j1,uid-j2,pod-uid`);
    const missing = await t.app.inject({ method: "GET", url: "/api/v1/dashboard/runs/coderun/nope/timeline", headers: authHeader });
    expect(missing.statusCode).toBe(404);
    const invalid = await t.app.inject({ method: "GET", url: "/api/v1/dashboard/runs/pods/x/timeline", headers: authHeader });
    expect(invalid.statusCode).toBe(400);
  });

  it("derives the Services view from the informers' runs and the cluster's Jobs and PVCs", async () => {
    const { t, runs } = harness();
    runs.items = [codeRun("a", "api", { waiting: "WaitingForSlot" })];
    const res = await t.app.inject({ method: "GET", url: "/api/v1/dashboard/services", headers: authHeader });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.services).toMatchObject([
      { service: "api", workspace: { name: "workspace-api" }, limit: 1, active: [], queue: [{ run: "a", reason: "WaitingForSlot" }] },
    ]);
  });

  it("streams a snapshot, then every informer change, without managedFields", async () => {
    const { t, runs, plays, feed } = harness();
    runs.items = [codeRun("first", "api")];
    const response = t.app.inject({ method: "GET", url: "/api/v1/dashboard/stream", headers: authHeader });
    await vi.waitFor(() => expect(feed.subscribers).toBe(1), { timeout: 10_000 });
    runs.emit("update", codeRun("first", "api", { phase: "Running" }));
    plays.emit("delete", {
      apiVersion: "orchestrator.platform/v1",
      kind: "Play",
      metadata: { name: "p" },
      spec: { service: "api", repositoryUrl: "r", docsRepositoryUrl: "d", tasks: [1] },
    });
    // Closing the app ends open streams (otherwise they would hold app.close() open).
    await t.app.close();
    const res = await response;
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/event-stream/);
    expect(res.headers["x-accel-buffering"]).toBe("no");
    expect(feed.subscribers).toBe(0);
    const events = [...res.payload.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => [m[1], JSON.parse(m[2]!)] as const);
    expect(events.map(([e]) => e)).toEqual(["snapshot", "change", "change"]);
    const snapshot = events[0]![1];
    expect(snapshot.runs.map((r: AnyRun) => r.metadata.name)).toEqual(["first"]);
    expect(snapshot.runs[0].metadata.managedFields).toBeUndefined();
    expect(snapshot).toMatchObject({ plays: [], playsEnabled: true, namespace: "orchestrator" });
    expect(events.slice(1).map(([, c]) => [c.op, c.object.kind, c.object.status?.phase])).toEqual([
      ["upsert", "CodeRun", "Running"],
      ["delete", "Play", undefined],
    ]);
  });
});
