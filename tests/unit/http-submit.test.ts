import { afterEach, describe, expect, it } from "vitest";
import type { CodeRun, DocsRun } from "../../src/api/types.js";
import { Labels } from "../../src/api/constants.js";
import { RunStoreError } from "../../src/intake/store.js";
import { requesterOf } from "../../src/authz/authorize.js";
import { activeDuplicate } from "../../src/http/routes/submit.js";
import { API_TOKEN, authHeader, buildTestApp, DEFAULT_CONFIG_YAML, testConfig, type TestApp } from "../support/webhook-fixtures.js";

const codeBody = {
  task_id: 42,
  service: "payments",
  repository_url: "https://github.com/acme/payments.git",
  docs_repository_url: "https://github.com/acme/docs.git",
  github_user: "swe-1-acme",
};

const docsBody = {
  repository_url: "https://github.com/acme/docs.git",
  working_directory: ".",
  source_branch: "main",
  github_user: "pm0-acme",
};

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return t.app.inject({ method: "POST", url, payload: payload as object, headers: { ...authHeader, ...headers } });
}

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }, status: number) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers["content-type"])).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({
    success: false,
    status,
    type: expect.stringMatching(/^urn:orchestrator:problem:/),
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(body.message).toBe(body.detail);
  return body;
}

describe("POST /api/v1/pm/tasks", () => {
  it("creates a CodeRun with the upstream response shape, defaults, labels and annotations", async () => {
    t = buildTestApp();
    const res = await post("/api/v1/pm/tasks", codeBody);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      success: true,
      message: "Code task submitted successfully",
      data: {
        coderun_name: expect.stringMatching(/^code-42-/),
        namespace: "orchestrator",
        task_id: 42,
        service: "payments",
        context_version: 1,
        model: "claude-sonnet-4-20250514",
      },
    });
    expect(res.headers.location).toBe(`/api/v1/runs/coderun/${body.data.coderun_name}`);
    const [run] = t.runs.all() as CodeRun[];
    expect(run!.metadata.name).toBe(body.data.coderun_name);
    expect(run!.metadata.labels).toMatchObject({ app: "orchestrator", service: "payments", "task-id": "42", "context-version": "1" });
    expect(run!.metadata.annotations).toMatchObject({
      "orchestrator.platform/requested-by": "api-token-1",
      "orchestrator.platform/source": "api",
    });
    expect(run!.spec).toEqual({
      taskId: 42,
      service: "payments",
      repositoryUrl: codeBody.repository_url,
      docsRepositoryUrl: codeBody.docs_repository_url,
      docsBranch: "main",
      model: "claude-sonnet-4-20250514",
      githubUser: "swe-1-acme",
      contextVersion: 1,
      continueSession: false,
      overwriteMemory: false,
    });
  });

  it("maps every CodeRequest field to the spec (env_from_secrets items stay camelCase)", async () => {
    t = buildTestApp({ config: testConfig(`${DEFAULT_CONFIG_YAML}\nauthorization: {mountableSecrets: [db]}\n`) });
    const full = {
      ...codeBody,
      github_user: undefined,
      github_app: "5DLabs-Rex",
      docs_project_directory: "_projects/payments",
      working_directory: "services/payments",
      model: "claude-opus-4-20250514",
      local_tools: "fs,git",
      remote_tools: "brave",
      context_version: 3,
      prompt_modification: "Focus on the tests.",
      docs_branch: "develop",
      continue_session: true,
      overwrite_memory: true,
      env: { LOG_LEVEL: "debug" },
      env_from_secrets: [{ name: "DB_URL", secretName: "db", secretKey: "url" }],
      timeout_seconds: 1800,
      max_retries: 1,
      max_turns: 50,
    };
    const res = await post("/api/v1/pm/tasks", full);
    expect(res.statusCode).toBe(201);
    const run = t.runs.all()[0] as CodeRun;
    expect(run.spec).toMatchObject({
      githubApp: "5DLabs-Rex",
      docsProjectDirectory: "_projects/payments",
      workingDirectory: "services/payments",
      model: "claude-opus-4-20250514",
      localTools: "fs,git",
      remoteTools: "brave",
      contextVersion: 3,
      promptModification: "Focus on the tests.",
      docsBranch: "develop",
      continueSession: true,
      overwriteMemory: true,
      env: { LOG_LEVEL: "debug" },
      envFromSecrets: [{ name: "DB_URL", secretName: "db", secretKey: "url" }],
      timeoutSeconds: 1800,
      maxRetries: 1,
      maxTurns: 50,
    });
    expect(run.spec.githubUser).toBeUndefined();
    expect(run.metadata.labels?.["context-version"]).toBe("3");
  });

  it("answers 422 with field-level errors for an invalid CodeRequest and creates nothing", async () => {
    t = buildTestApp();
    const res = await post("/api/v1/pm/tasks", { ...codeBody, task_id: 0, service: "Bad_Service", env: { "1X": "y" }, extra: true });
    const body = expectProblem(res, 422);
    const fields = (body.errors as { field: string; pointer: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(["env.1X", "extra", "service", "task_id"]);
    expect(body.errors).toContainEqual(expect.objectContaining({ field: "task_id", pointer: "#/task_id" }));
    expect(t.runs.all()).toHaveLength(0);
  });

  it("requires exactly one of github_user or github_app", async () => {
    t = buildTestApp();
    const both = await post("/api/v1/pm/tasks", { ...codeBody, github_app: "X" });
    expect((expectProblem(both, 422).errors as { field: string }[])[0]!.field).toBe("github_user");
    const none = await post("/api/v1/pm/tasks", { ...codeBody, github_user: undefined });
    expectProblem(none, 422);
    expect(t.runs.all()).toHaveLength(0);
  });

  it("rejects path traversal in working_directory", async () => {
    t = buildTestApp();
    const res = await post("/api/v1/pm/tasks", { ...codeBody, working_directory: "../../etc" });
    expect((expectProblem(res, 422).errors as { field: string }[])[0]!.field).toBe("working_directory");
  });

  it("answers 400 for malformed JSON, a non-object body and a missing body", async () => {
    t = buildTestApp();
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: "{nope",
        headers: { ...authHeader, "content-type": "application/json" },
      }),
      400,
    );
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: "[1,2]",
        headers: { ...authHeader, "content-type": "application/json" },
      }),
      400,
    );
    expectProblem(await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", headers: authHeader }), 400);
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: '{"__proto__":{"x":1}}',
        headers: { ...authHeader, "content-type": "application/json" },
      }),
      400,
    );
  });

  it("answers 415 for a non-JSON content type and 413 over api.maxBodyBytes", async () => {
    t = buildTestApp();
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: "task_id=1",
        headers: { ...authHeader, "content-type": "text/plain" },
      }),
      415,
    );
    const big = JSON.stringify({ ...codeBody, prompt_modification: "x".repeat(t.config.api.maxBodyBytes) });
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: big,
        headers: { ...authHeader, "content-type": "application/json" },
      }),
      413,
    );
  });

  it("answers 401 with WWW-Authenticate without or with a wrong token, before looking at the body", async () => {
    t = buildTestApp();
    for (const headers of [
      {},
      { authorization: "Bearer wrong" },
      { authorization: `Basic ${API_TOKEN}` },
      { authorization: `Bearer ${API_TOKEN}x` },
    ]) {
      const res = await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: "{broken",
        headers: { ...headers, "content-type": "application/json" },
      });
      const body = expectProblem(res, 401);
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="orchestrator"');
      expect(body.detail).toMatch(/Authorization: Bearer/);
    }
    expect(t.runs.createCalls).toBe(0);
  });

  it("answers 409 for the same task, service and context version while it is active, and allows it once finished", async () => {
    t = buildTestApp();
    const first = await post("/api/v1/pm/tasks", codeBody);
    expect(first.statusCode).toBe(201);
    const name = first.json().data.coderun_name as string;
    const dup = expectProblem(await post("/api/v1/pm/tasks", codeBody), 409);
    expect(dup.existing).toMatchObject({ name, phase: "Pending" });
    t.runs.setStatus("CodeRun", name, { phase: "Running" });
    expectProblem(await post("/api/v1/pm/tasks", codeBody), 409);
    // Another context version or service is not a duplicate.
    expect((await post("/api/v1/pm/tasks", { ...codeBody, context_version: 2 })).statusCode).toBe(201);
    expect((await post("/api/v1/pm/tasks", { ...codeBody, service: "billing" })).statusCode).toBe(201);
    t.runs.setStatus("CodeRun", name, { phase: "Failed" });
    expect((await post("/api/v1/pm/tasks", codeBody)).statusCode).toBe(201);
  });

  it("serializes concurrent identical submissions: exactly one is created", async () => {
    t = buildTestApp();
    t.runs.delayMs = 5;
    const results = await Promise.all(Array.from({ length: 5 }, () => post("/api/v1/pm/tasks", codeBody)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers a repeated Idempotency-Key with the original 201 (same body, same Location), also after the run finished", async () => {
    t = buildTestApp();
    const key = "5b0e6a4c-0d6f-4d59-9a0f-1c1d6a2f9e11";
    const first = await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": key });
    expect(first.statusCode).toBe(201);
    const name = first.json().data.coderun_name as string;
    const run = t.runs.all()[0]!;
    expect(run.metadata.annotations?.["orchestrator.platform/idempotency-key"]).toBe(key);
    expect(run.metadata.labels?.[Labels.idempotencyKeyHash]).toMatch(/^[0-9a-f]{40}$/);
    const again = await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": key });
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(first.json());
    expect(again.headers.location).toBe(first.headers.location);
    t.runs.setStatus("CodeRun", name, { phase: "Succeeded" });
    const later = await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": key });
    expect([later.statusCode, later.json()]).toEqual([201, first.json()]);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers 422 when an Idempotency-Key is reused for a different request", async () => {
    t = buildTestApp();
    const key = "k-reused";
    expect((await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": key })).statusCode).toBe(201);
    const other = expectProblem(await post("/api/v1/pm/tasks", { ...codeBody, task_id: 7 }, { "idempotency-key": key }), 422);
    expect(other.type).toBe("urn:orchestrator:problem:idempotency-key-reused");
    expect(other.detail).toMatch(/Use a new key/);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("derives the name from the Idempotency-Key deterministically (same key → same name, across app instances)", async () => {
    t = buildTestApp();
    const a = (await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": "k-1" })).json().data.coderun_name;
    await t.close();
    t = buildTestApp();
    const b = (await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": "k-1" })).json().data.coderun_name;
    expect(a).toBe(b);
    expect(a).toMatch(/^code-42-k[0-9a-f]{10}$/);
  });

  it("answers the original 201 when the name from the Idempotency-Key already exists (the lookup raced another replica)", async () => {
    t = buildTestApp();
    const first = await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": "race" });
    t.runs.setStatus("CodeRun", first.json().data.coderun_name, { phase: "Succeeded" });
    // The label lookup misses (as if the other replica's create was not visible yet); the name still collides.
    const list = t.runs.list.bind(t.runs);
    t.runs.list = async (kind, labels) => (labels?.[Labels.idempotencyKeyHash] ? [] : list(kind, labels));
    const res = await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": "race" });
    expect([res.statusCode, res.json()]).toEqual([201, first.json()]);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers 400 for a malformed Idempotency-Key", async () => {
    t = buildTestApp();
    const res = expectProblem(await post("/api/v1/pm/tasks", codeBody, { "idempotency-key": "x".repeat(300) }), 400);
    expect(res.errors).toEqual([expect.objectContaining({ field: "Idempotency-Key" })]);
  });

  it("answers 503 with Retry-After when the Kubernetes API is unreachable", async () => {
    t = buildTestApp();
    t.runs.failWith("Unavailable", "connect ECONNREFUSED 127.0.0.1:6443");
    const res = await post("/api/v1/pm/tasks", codeBody);
    const body = expectProblem(res, 503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(body.detail).toMatch(/unreachable/);
    expect(body.type).toBe("urn:orchestrator:problem:kubernetes-unavailable");
  });

  it("answers 422 with the API server's causes when it rejects the object", async () => {
    t = buildTestApp();
    t.runs.create = async () => {
      throw new RunStoreError("Invalid", 'CodeRun.orchestrator.platform "x" is invalid', [
        { field: "spec.model", message: "Required value" },
      ]);
    };
    const body = expectProblem(await post("/api/v1/pm/tasks", codeBody), 422);
    expect(body.errors).toEqual([{ field: "spec.model", pointer: "#/spec/model", message: "Required value" }]);
  });

  it("answers 500 (not 503) when the orchestrator's own credentials are refused", async () => {
    t = buildTestApp();
    t.runs.failWith("Forbidden", "coderuns is forbidden");
    const body = expectProblem(await post("/api/v1/pm/tasks", codeBody), 500);
    expect(body.detail).toMatch(/RBAC/);
  });
});

describe("POST /api/v1/pm/docs/generate", () => {
  it("creates a DocsRun with the upstream response shape and the default docs model", async () => {
    t = buildTestApp();
    const res = await post("/api/v1/pm/docs/generate", docsBody);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      success: true,
      message: "Documentation generation job submitted successfully",
      data: {
        docsrun_name: expect.stringMatching(/^docs-gen-/),
        namespace: "orchestrator",
        repository_url: docsBody.repository_url,
        model: "claude-opus-4-20250514",
      },
    });
    const run = t.runs.all()[0] as DocsRun;
    expect(run.kind).toBe("DocsRun");
    expect(run.spec).toEqual({
      repositoryUrl: docsBody.repository_url,
      workingDirectory: ".",
      sourceBranch: "main",
      model: "claude-opus-4-20250514",
      githubUser: "pm0-acme",
    });
    expect(run.metadata.labels).toMatchObject({ app: "orchestrator", type: "docs" });
  });

  it("accepts github_app and include_codebase, and validates fields", async () => {
    t = buildTestApp();
    const ok = await post("/api/v1/pm/docs/generate", {
      ...docsBody,
      github_user: undefined,
      github_app: "5DLabs-Morgan",
      include_codebase: true,
      model: "claude-x",
    });
    expect(ok.statusCode).toBe(201);
    expect((t.runs.all()[0] as DocsRun).spec).toMatchObject({ githubApp: "5DLabs-Morgan", includeCodebase: true, model: "claude-x" });
    const bad = expectProblem(await post("/api/v1/pm/docs/generate", { repository_url: "", working_directory: "/abs" }), 422);
    expect([...new Set((bad.errors as { field: string }[]).map((e) => e.field))].sort()).toEqual([
      "repository_url",
      "source_branch",
      "working_directory",
    ]);
  });

  it("answers a repeated Idempotency-Key with the original 201 and 503 when the API is down", async () => {
    t = buildTestApp();
    const first = await post("/api/v1/pm/docs/generate", docsBody, { "idempotency-key": "d1" });
    expect(first.statusCode).toBe(201);
    const again = await post("/api/v1/pm/docs/generate", docsBody, { "idempotency-key": "d1" });
    expect([again.statusCode, again.json(), again.headers.location]).toEqual([201, first.json(), first.headers.location]);
    t.runs.failWith("Unavailable");
    expectProblem(await post("/api/v1/pm/docs/generate", docsBody), 503);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers 401 without credentials", async () => {
    t = buildTestApp();
    const res = await t.app.inject({ method: "POST", url: "/api/v1/pm/docs/generate", payload: docsBody });
    expectProblem(res, 401);
    expect(t.runs.all()).toHaveLength(0);
  });
});

describe("intake authorization (docs/security.md)", () => {
  const rules = `${DEFAULT_CONFIG_YAML}
authorization:
  mountableSecrets: [npm-token]
  rules:
    - requesters: [api-token-1]
      identities: ["user:pm0-acme"]
      repositories: ["acme/*"]
      secrets: [npm-token]
`;
  const body = {
    task_id: 1,
    service: "api",
    repository_url: "acme/api",
    docs_repository_url: "https://github.com/acme/docs",
    github_user: "pm0-acme",
  };
  const post = (app: TestApp, payload: object) => app.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload, headers: authHeader });

  it.each([
    [
      "the controller's own Secret",
      { env_from_secrets: [{ name: "X", secretName: "orchestrator-secrets", secretKey: "GITHUB_WEBHOOK_SECRET" }] },
      403,
      /Secret orchestrator-secrets may not be mounted/,
    ],
    [
      "an identity the token may not use",
      { github_user: "someone-else" },
      403,
      /api-token-1 may not use GitHub identity user:someone-else/,
    ],
    ["a repository the token may not use", { repository_url: "other/api" }, 403, /repository other\/api/],
    [
      "a docs repository on another host",
      { docs_repository_url: "http://evil.example:8080/x/y.git" },
      422,
      /docsRepositoryUrl http:\/\/evil\.example:8080\/x\/y\.git is not allowed/,
    ],
    ["NODE_OPTIONS", { env: { NODE_OPTIONS: "--require /workspace/x.js" } }, 422, /NODE_OPTIONS is reserved/],
  ])("refuses %s and creates nothing", async (_what, over, status, message) => {
    t = buildTestApp({ config: testConfig(rules) });
    const res = await post(t, { ...body, ...over });
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json().detail).toMatch(message);
    expect(t.runs.all()).toEqual([]);
  });

  it("records the requester and what it authorized on the run", async () => {
    t = buildTestApp({ config: testConfig(rules) });
    const res = await post(t, { ...body, env_from_secrets: [{ name: "NPM_TOKEN", secretName: "npm-token", secretKey: "token" }] });
    expect(res.statusCode, res.body).toBe(201);
    const run = t.runs.all()[0]!;
    expect(requesterOf(run)).toBe("api-token-1");
    expect(run.metadata.annotations?.["orchestrator.platform/authorized-spec"]).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe("activeDuplicate", () => {
  const sibling = (contextVersion: number | undefined, phase?: string) =>
    ({
      spec: { contextVersion },
      status: phase ? { phase } : undefined,
      metadata: { name: `r-${contextVersion}-${phase}` },
    }) as unknown as CodeRun;
  it.each([
    { name: "no siblings", siblings: [], version: 1, want: undefined },
    { name: "same version, pending", siblings: [sibling(1)], version: 1, want: "r-1-undefined" },
    { name: "same version (default 1), running", siblings: [sibling(undefined, "Running")], version: 1, want: "r-undefined-Running" },
    { name: "same version, finished", siblings: [sibling(1, "Succeeded"), sibling(1, "Failed")], version: 1, want: undefined },
    { name: "another version, running", siblings: [sibling(2, "Running")], version: 1, want: undefined },
  ])("$name", ({ siblings, version, want }) => {
    expect(activeDuplicate(siblings, version)?.metadata.name).toBe(want);
  });
});
