import { afterEach, describe, expect, it } from "vitest";
import type { CodeRun, DocsRun } from "../../src/api/types.js";
import { RunStoreError } from "../../src/intake/store.js";
import { authHeader, buildTestApp, type TestApp } from "../support/webhook-fixtures.js";
import { logsProblem, retryVersion } from "../../src/http/routes/runs.js";

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const get = (url: string) => t.app.inject({ method: "GET", url, headers: authHeader });
const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: "POST",
    url,
    headers: { ...authHeader, ...headers },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

async function submit(task: number, service = "payments"): Promise<string> {
  const res = await post("/api/v1/pm/tasks", {
    task_id: task,
    service,
    repository_url: "acme/app",
    docs_repository_url: "acme/docs",
    github_user: "dev",
  });
  expect(res.statusCode).toBe(201);
  return res.json().data.coderun_name as string;
}

async function submitDocs(): Promise<string> {
  const res = await post("/api/v1/pm/docs/generate", {
    repository_url: "acme/docs",
    working_directory: ".",
    source_branch: "main",
    github_app: "Morgan",
  });
  expect(res.statusCode).toBe(201);
  return res.json().data.docsrun_name as string;
}

describe("GET /api/v1/runs", () => {
  it("lists both kinds, filtered by kind, service, task and phase", async () => {
    t = buildTestApp();
    const a = await submit(1);
    const b = await submit(2);
    const c = await submit(1, "billing");
    const d = await submitDocs();
    t.runs.setStatus("CodeRun", b, { phase: "Running" });

    const names = async (q: string) =>
      ((await get(`/api/v1/runs${q}`)).json().data.items as { metadata: { name: string } }[]).map((i) => i.metadata.name).sort();
    expect(await names("")).toEqual([a, b, c, d].sort());
    expect(await names("?kind=coderun")).toEqual([a, b, c].sort());
    expect(await names("?kind=DocsRun")).toEqual([d]);
    expect(await names("?service=payments")).toEqual([a, b].sort());
    expect(await names("?task=1")).toEqual([a, c].sort());
    expect(await names("?task=1&service=billing")).toEqual([c]);
    expect(await names("?phase=Running")).toEqual([b]);
    expect(await names("?phase=Pending&kind=coderun")).toEqual([a, c].sort());
    const res = await get("/api/v1/runs");
    expect(res.json()).toMatchObject({ success: true, data: { namespace: "orchestrator" } });
  });

  it("answers 400 with field errors for an invalid query", async () => {
    t = buildTestApp();
    const res = await get("/api/v1/runs?kind=pods&task=abc&phase=Done&x=1");
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/problem\+json/);
    expect((res.json().errors as { field: string }[]).map((e) => e.field).sort()).toEqual([
      "query.kind",
      "query.phase",
      "query.task",
      "query.x",
    ]);
  });

  it("answers 401 without credentials and 503 when the API server is down", async () => {
    t = buildTestApp();
    expect((await t.app.inject({ method: "GET", url: "/api/v1/runs" })).statusCode).toBe(401);
    t.runs.failWith("Unavailable");
    expect((await get("/api/v1/runs")).statusCode).toBe(503);
  });
});

describe("GET /api/v1/runs/:kind/:name", () => {
  it("returns the run, 404 for an unknown one and 400 for a bad kind or name", async () => {
    t = buildTestApp();
    const name = await submit(5);
    const res = await get(`/api/v1/runs/coderun/${name}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ kind: "CodeRun", metadata: { name }, spec: { taskId: 5 } });
    const missing = await get("/api/v1/runs/coderun/nope");
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ success: false, status: 404, type: "urn:orchestrator:problem:not-found" });
    expect((await get(`/api/v1/runs/docsrun/${name}`)).statusCode).toBe(404);
    expect((await get(`/api/v1/runs/pod/${name}`)).statusCode).toBe(400);
    expect((await get("/api/v1/runs/coderun/UPPER")).statusCode).toBe(400);
  });
});

describe("POST /api/v1/runs/:kind/:name/cancel", () => {
  it("sets spec.cancel on an active run (202) and is idempotent", async () => {
    t = buildTestApp();
    const name = await submit(5);
    t.runs.setStatus("CodeRun", name, { phase: "Running" });
    const res = await post(`/api/v1/runs/coderun/${name}/cancel`);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ success: true, data: { kind: "CodeRun", name, cancel: true, phase: "Running" } });
    expect((t.runs.all()[0] as CodeRun).spec.cancel).toBe(true);
    expect((await post(`/api/v1/runs/coderun/${name}/cancel`)).statusCode).toBe(202);
  });

  it("answers 409 for a finished run and 404 for an unknown one", async () => {
    t = buildTestApp();
    const name = await submitDocs();
    t.runs.setStatus("DocsRun", name, { phase: "Succeeded" });
    const res = await post(`/api/v1/runs/docsrun/${name}/cancel`);
    expect(res.statusCode).toBe(409);
    expect(res.json().detail).toMatch(/already finished/);
    expect((t.runs.all()[0] as DocsRun).spec.cancel).toBeUndefined();
    expect((await post("/api/v1/runs/docsrun/missing/cancel")).statusCode).toBe(404);
  });
});

describe("POST /api/v1/runs/:kind/:name/retry", () => {
  it("creates a new CodeRun with contextVersion+1, continueSession and the new prompt", async () => {
    t = buildTestApp();
    const name = await submit(9);
    t.runs.setStatus("CodeRun", name, { phase: "Failed" });
    const res = await post(`/api/v1/runs/coderun/${name}/retry`, { prompt_modification: "Use the v2 API." });
    expect(res.statusCode).toBe(201);
    const data = res.json().data;
    expect(data).toMatchObject({ retry_of: name, context_version: 2, namespace: "orchestrator" });
    const retry = t.runs.all().find((r) => r.metadata.name === data.coderun_name) as CodeRun;
    expect(retry.spec).toMatchObject({
      taskId: 9,
      service: "payments",
      contextVersion: 2,
      continueSession: true,
      promptModification: "Use the v2 API.",
    });
    expect(retry.metadata.labels).toMatchObject({ "task-id": "9", service: "payments", "context-version": "2" });
    expect(retry.metadata.annotations?.["orchestrator.platform/retry-of"]).toBe(name);
  });

  it("retries without a body, keeps the prompt, and picks the version after every run of the task", async () => {
    t = buildTestApp();
    const first = await submit(3);
    t.runs.setStatus("CodeRun", first, { phase: "Failed" });
    const second = (await post(`/api/v1/runs/coderun/${first}/retry`)).json().data.coderun_name as string;
    t.runs.setStatus("CodeRun", second, { phase: "Failed" });
    // Retrying the older run again still moves forward.
    const third = await post(`/api/v1/runs/coderun/${first}/retry`);
    expect(third.statusCode).toBe(201);
    expect(third.json().data.context_version).toBe(3);
  });

  it("answers 409 for a run that has not finished, and for a repeated retry of the same run", async () => {
    t = buildTestApp();
    const name = await submit(4);
    const active = await post(`/api/v1/runs/coderun/${name}/retry`);
    expect(active.statusCode).toBe(409);
    expect(active.json().detail).toMatch(/has not finished/);
    t.runs.setStatus("CodeRun", name, { phase: "Succeeded" });
    expect((await post(`/api/v1/runs/coderun/${name}/retry`)).statusCode).toBe(201);
    // The new attempt is active: a second retry of the same source is refused.
    expect((await post(`/api/v1/runs/coderun/${name}/retry`)).statusCode).toBe(409);
    expect(t.runs.all()).toHaveLength(2);
  });

  it("answers a retry repeated with the same Idempotency-Key with the original 201", async () => {
    t = buildTestApp();
    const name = await submit(5);
    t.runs.setStatus("CodeRun", name, { phase: "Failed" });
    const headers = { "idempotency-key": "retry-once" };
    const first = await post(`/api/v1/runs/coderun/${name}/retry`, { prompt_modification: "try again" }, headers);
    expect(first.statusCode).toBe(201);
    const again = await post(`/api/v1/runs/coderun/${name}/retry`, { prompt_modification: "try again" }, headers);
    expect([again.statusCode, again.json(), again.headers.location]).toEqual([201, first.json(), first.headers.location]);
    expect((await post(`/api/v1/runs/coderun/${name}/retry`, { prompt_modification: "other" }, headers)).statusCode).toBe(422);
    expect(t.runs.all()).toHaveLength(2);
  });

  it("retries a finished DocsRun, rejects prompt_modification for it, and 422s bad bodies", async () => {
    t = buildTestApp();
    const name = await submitDocs();
    t.runs.setStatus("DocsRun", name, { phase: "Failed" });
    expect((await post(`/api/v1/runs/docsrun/${name}/retry`, { prompt_modification: "x" })).statusCode).toBe(422);
    expect((await post(`/api/v1/runs/docsrun/${name}/retry`, { unknown: 1 })).statusCode).toBe(422);
    const res = await post(`/api/v1/runs/docsrun/${name}/retry`, {});
    expect(res.statusCode).toBe(201);
    expect(res.json().data).toMatchObject({ docsrun_name: expect.stringMatching(/^docs-gen-r/), retry_of: name });
  });

  it("answers 404 for an unknown run", async () => {
    t = buildTestApp();
    expect((await post("/api/v1/runs/coderun/ghost/retry")).statusCode).toBe(404);
  });
});

describe("GET /api/v1/runs/:kind/:name/logs", () => {
  it("answers 404 while the run has no Job, 404 while the Job has no pod, 409 while the container waits, then streams", async () => {
    t = buildTestApp();
    const name = await submit(11);
    const noJob = await get(`/api/v1/runs/coderun/${name}/logs`);
    expect(noJob.statusCode).toBe(404);
    expect(noJob.json().detail).toMatch(/has no Job yet/);

    t.runs.setStatus("CodeRun", name, { phase: "Running", jobName: "code-11-job" });
    const noPod = await get(`/api/v1/runs/coderun/${name}/logs`);
    expect(noPod.statusCode).toBe(404);
    expect(noPod.json().detail).toMatch(/has no pod yet/);

    t.runs.jobLogs.set("code-11-job", "waiting");
    const waiting = await get(`/api/v1/runs/coderun/${name}/logs?follow=true`);
    expect(waiting.statusCode).toBe(409);
    expect(waiting.json().type).toBe("urn:orchestrator:problem:not-ready");

    // The API server could not reach the node's kubelet: a 502 that says so, not "API server unreachable".
    t.runs.jobLogs.set(
      "code-11-job",
      new RunStoreError(
        "Unavailable",
        'HTTP 500: Get "https://127.0.0.1:10250/containerLogs/ns/pod/agent": dial tcp 127.0.0.1:10250: connect: connection refused',
      ),
    );
    const noKubelet = await get(`/api/v1/runs/coderun/${name}/logs`);
    expect(noKubelet.statusCode).toBe(502);
    expect(noKubelet.json()).toMatchObject({ type: "urn:orchestrator:problem:logs-unavailable" });
    expect(noKubelet.json().detail).toMatch(
      /could not read the log of Job code-11-job from its node \(HTTP 500: .*10250.*\)\. Check that the node's kubelet/,
    );

    t.runs.jobLogs.set("code-11-job", "line 1\nline 2\nline 3");
    const logs = await get(`/api/v1/runs/coderun/${name}/logs?tail_lines=2`);
    expect(logs.statusCode).toBe(200);
    expect(logs.headers["content-type"]).toMatch(/^text\/plain/);
    expect(logs.headers["x-job-name"]).toBe("code-11-job");
    expect(logs.body).toBe("line 2\nline 3");
  });

  it("container=channel streams the channel container's log, the default and container=agent the agent container's", async () => {
    t = buildTestApp();
    const code = await submit(12);
    t.runs.setStatus("CodeRun", code, { phase: "Running", jobName: "code-12-job" });
    t.runs.jobLogs.set("code-12-job#claude-code", "agent line");
    t.runs.jobLogs.set("code-12-job#channel", "Prepared the workspace\nPushed the branch");
    expect((await get(`/api/v1/runs/coderun/${code}/logs`)).body).toBe("agent line");
    expect((await get(`/api/v1/runs/coderun/${code}/logs?container=agent`)).body).toBe("agent line");
    expect((await get(`/api/v1/runs/coderun/${code}/logs?container=channel&tail_lines=1`)).body).toBe("Pushed the branch");
    expect(t.runs.lastLogCluster).toBeUndefined();
    // A run in an execution cluster: its log is asked of that cluster.
    t.runs.setStatus("CodeRun", code, { phase: "Running", jobName: "code-12-job", cluster: "gpu-east" });
    expect((await get(`/api/v1/runs/coderun/${code}/logs`)).body).toBe("agent line");
    expect(t.runs.lastLogCluster).toBe("gpu-east");
    const bad = await get(`/api/v1/runs/coderun/${code}/logs?container=claude-code`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/query\.container.*must be agent \(the agent's log, the default\) or channel/);
  });

  it("answers 400 for a bad query and 404 for an unknown run", async () => {
    t = buildTestApp();
    expect((await get("/api/v1/runs/coderun/x/logs?follow=maybe")).statusCode).toBe(400);
    expect((await get("/api/v1/runs/coderun/x/logs")).statusCode).toBe(404);
  });
});

describe("unknown routes", () => {
  it("answer 404 problem+json", async () => {
    t = buildTestApp();
    const res = await t.app.inject({ method: "GET", url: "/nope?x=1" });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toMatch(/problem\+json/);
    expect(res.json()).toMatchObject({ success: false, status: 404, instance: "/nope" });
  });
});

describe("retryVersion", () => {
  const run = (name: string, contextVersion: number | undefined, phase?: string) =>
    ({ kind: "CodeRun", metadata: { name }, spec: { contextVersion }, status: phase ? { phase } : undefined }) as unknown as CodeRun;
  it.each([
    { name: "alone: the next version", source: run("a", 2, "Failed"), siblings: [run("a", 2, "Failed")], want: { contextVersion: 3 } },
    { name: "no version is 1", source: run("a", undefined, "Failed"), siblings: [], want: { contextVersion: 2 } },
    {
      name: "after every sibling, not just the source",
      source: run("a", 1, "Failed"),
      siblings: [run("a", 1, "Failed"), run("b", 4, "Succeeded"), run("c", 2, "Cancelled")],
      want: { contextVersion: 5 },
    },
  ])("$name", ({ source, siblings, want }) => {
    expect(retryVersion(source, siblings)).toEqual(want);
  });
  it("an active sibling blocks the retry", () => {
    const active = run("b", 2, "Running");
    expect(retryVersion(run("a", 1, "Failed"), [run("a", 1, "Failed"), active])).toEqual({ active });
  });
});

describe("logsProblem", () => {
  it.each([
    { reason: "NotFound", message: "no pod", want: { problem: "notFound", status: 404 } },
    { reason: "NotReady", message: "waiting", want: { problem: "notReady", status: 409 } },
    { reason: "Unavailable", message: "HTTP 502: bad gateway", want: { problem: "logsUnavailable", status: 502 } },
  ] as const)("$reason", ({ reason, message, want }) => {
    expect(logsProblem(new RunStoreError(reason, message), "job-1", "CodeRun x")).toMatchObject({
      ...want,
      message: expect.stringContaining("job-1"),
    });
  });
  it("leaves the rest to the store's error mapping", () => {
    expect(logsProblem(new RunStoreError("Unavailable", "connect ECONNREFUSED"), "job-1", "CodeRun x")).toBeUndefined();
    expect(logsProblem(new Error("boom"), "job-1", "CodeRun x")).toBeUndefined();
  });
});
