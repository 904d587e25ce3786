/**
 * The intake (REST API + GitHub webhook) against a real kube-apiserver with the CRDs installed:
 * what it creates must pass the API server's schema validation, deduplication must hold with the
 * API server as the source of truth, and an unreachable API server must answer 503.
 */
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GROUP, VERSION } from "../../src/api/constants.js";
import type { CodeRun } from "../../src/api/types.js";
import { createAuthenticator } from "../../src/http/app.js";
import { RunStoreError } from "../../src/intake/store.js";
import { createKubeRunStore, createKubeTokenReviewer } from "../../src/kube/run-store.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import {
  API_TOKEN,
  DEFAULT_CONFIG_YAML,
  authHeader,
  buildTestApp,
  commentPayload,
  deliver,
  runNameOf,
  signedDelivery,
  testConfig,
  withNewDeliveryId,
  type TestApp,
} from "../support/webhook-fixtures.js";

const CRDS = "infra/charts/orchestrator/crds/platform-crds.yaml";
const cluster = useControlPlane("minimal");

// The CRDs are applied with kubectl, as an operator would: kubectl keeps every schema keyword
// (defaults, x-kubernetes-validations), so the API server validates exactly like in production.
beforeAll(async () => {
  const cp = cluster();
  const kubectl = (args: string[]) => execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, ...args], { reject: false });
  const applied = await kubectl(["apply", "-f", CRDS]);
  expect(applied.exitCode, applied.stderr).toBe(0);
  const est = await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/coderuns.orchestrator.platform",
    "crd/docsruns.orchestrator.platform",
  ]);
  expect(est.exitCode, est.stderr).toBe(0);
  const custom = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  for (let i = 0; ; i++) {
    try {
      await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "coderuns" });
      await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "docsruns" });
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

const apps: TestApp[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
});

const SECOND_TOKEN = "second-api-token-0123456789abcdef";

async function setup(opts: { namespace?: string; quotas?: string } = {}) {
  const cp = cluster();
  const ns = opts.namespace ?? (await newNamespace("intake"));
  // The submissions below mount Secret "db" through env_from_secrets: it must be mountable.
  const config = testConfig(
    `${DEFAULT_CONFIG_YAML.replace("namespace: orchestrator", `namespace: ${ns}`)}\nauthorization: {mountableSecrets: [db]${opts.quotas ? `, quotas: ${opts.quotas}` : ""}}\n`,
    { ORCHESTRATOR_API_TOKENS: `${API_TOKEN},${SECOND_TOKEN}` },
  );
  const runs = createKubeRunStore({ kubeConfig: cp.kubeConfig, namespace: ns, requestTimeoutMs: 5000 });
  const t = buildTestApp({ config, runs: runs as never });
  apps.push(t);
  const custom = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  const listCodeRuns = async () =>
    (
      (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns" })) as {
        items: CodeRun[];
      }
    ).items;
  const setStatus = (plural: string, name: string, status: Record<string, unknown>) =>
    custom.patchNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural,
      name,
      body: [{ op: "add", path: "/status", value: status }],
    });
  return { cp, ns, t, runs, custom, listCodeRuns, setStatus };
}

describe("webhook intake on a real API server", () => {
  it("creates exactly one CodeRun for a signed comment from a collaborator, accepted by the CRD schema", async () => {
    const { t, listCodeRuns } = await setup();
    const d = await signedDelivery(
      "issue_comment",
      commentPayload("/agent run make the build green", { association: "COLLABORATOR", login: "octo-dev" }),
    );
    const res = await deliver(t.app, d);
    expect(res.statusCode, res.body).toBe(201);
    const items = await listCodeRuns();
    expect(items).toHaveLength(1);
    const run = items[0]!;
    expect(run.metadata.name).toBe(runNameOf(d));
    expect(run.metadata.uid).toBeTruthy();
    // CRD defaults were applied by the API server: the object went through its schema.
    expect(run.spec).toMatchObject({
      taskId: 1,
      service: "hello-world",
      githubApp: "5DLabs-Rex",
      docsBranch: "main",
      continueSession: false,
      overwriteMemory: false,
      contextVersion: 1,
    });
    expect(run.spec.promptModification).toContain("make the build green");
    expect(run.metadata.annotations?.["orchestrator.platform/github-delivery"]).toBe(d.id);
    expect(run.metadata.labels).toMatchObject({ app: "orchestrator", "task-id": "1", service: "hello-world" });
  });

  it("creates one CodeRun for a delivery sent twice, also from a second replica with an empty cache", async () => {
    const { ns, t, listCodeRuns } = await setup();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run twice"));
    expect((await deliver(t.app, d)).statusCode).toBe(201);
    expect((await deliver(t.app, d)).json().data.outcome).toBe("duplicate");
    const replica = (await setup({ namespace: ns })).t;
    const [a, b] = await Promise.all([deliver(replica.app, d, "/webhook"), deliver(replica.app, d)]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(a.json().data.outcome).toBe("duplicate");
    expect(await listCodeRuns()).toHaveLength(1);
  });

  it("creates exactly one CodeRun for one captured signed body sent 3 times with new delivery ids, also through a second replica", async () => {
    const { ns, t, listCodeRuns } = await setup();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run replay me"));
    const replica = (await setup({ namespace: ns })).t;
    const answers = [await deliver(t.app, d), await deliver(t.app, withNewDeliveryId(d)), await deliver(replica.app, withNewDeliveryId(d))];
    expect(answers.map((r) => r.statusCode)).toEqual([201, 200, 200]);
    for (const r of answers.slice(1)) expect(r.json().data).toMatchObject({ outcome: "duplicate", coderun_name: runNameOf(d) });
    const items = await listCodeRuns();
    expect(items.map((r) => r.metadata.name)).toEqual([runNameOf(d)]);
    expect(items[0]!.metadata.annotations?.["orchestrator.platform/github-delivery"]).toBe(d.id);
  });

  it("creates nothing for a forged signature or a comment from a user without write access", async () => {
    const { t, listCodeRuns } = await setup();
    const forged = await signedDelivery("issue_comment", commentPayload("/agent run evil"), { secret: "guessed-secret" });
    expect((await deliver(t.app, forged)).statusCode).toBe(401);
    const outsider = await signedDelivery("issue_comment", commentPayload("/agent run please", { association: "NONE", login: "drive-by" }));
    const res = await deliver(t.app, outsider);
    expect(res.statusCode).toBe(202);
    expect(res.json().data.outcome).toBe("forbidden");
    const contributor = await signedDelivery(
      "issue_comment",
      commentPayload("/agent run please", { association: "CONTRIBUTOR", login: "past-contributor" }),
    );
    expect((await deliver(t.app, contributor)).statusCode).toBe(202);
    expect(await listCodeRuns()).toHaveLength(0);
  });
});

describe("REST intake on a real API server", () => {
  const body = {
    task_id: 12,
    service: "payments",
    repository_url: "https://github.com/acme/payments.git",
    docs_repository_url: "acme/docs",
    github_user: "swe-1",
    env: { LOG_LEVEL: "debug" },
    env_from_secrets: [{ name: "DB_URL", secretName: "db", secretKey: "url" }],
  };

  it("creates a CodeRun the API server accepts, lists, gets, cancels (merge patch) and retries it", async () => {
    const { t, custom, ns, setStatus } = await setup();
    const res = await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: body, headers: authHeader });
    expect(res.statusCode, res.body).toBe(201);
    const name = res.json().data.coderun_name as string;
    const stored = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "coderuns",
      name,
    })) as CodeRun;
    expect(stored.spec).toMatchObject({
      taskId: 12,
      service: "payments",
      githubUser: "swe-1",
      model: "claude-sonnet-4-20250514",
      envFromSecrets: body.env_from_secrets,
      env: body.env,
    });

    const list = await t.app.inject({ method: "GET", url: "/api/v1/runs?kind=coderun&task=12&service=payments", headers: authHeader });
    expect(list.json().data.items.map((i: CodeRun) => i.metadata.name)).toEqual([name]);
    const none = await t.app.inject({ method: "GET", url: "/api/v1/runs?task=99", headers: authHeader });
    expect(none.statusCode, none.body).toBe(200);
    expect(none.json().data.items).toEqual([]);
    expect((await t.app.inject({ method: "GET", url: `/api/v1/runs/coderun/${name}`, headers: authHeader })).json().data.metadata.uid).toBe(
      stored.metadata.uid,
    );

    // Active duplicate → 409 (status written through the status subresource, like the controller).
    await setStatus("coderuns", name, { phase: "Running", jobName: `${name}-job` });
    expect((await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: body, headers: authHeader })).statusCode).toBe(409);

    // Logs: the Job has no pod on this control plane.
    const logs = await t.app.inject({ method: "GET", url: `/api/v1/runs/coderun/${name}/logs`, headers: authHeader });
    expect(logs.statusCode).toBe(404);
    expect(logs.json().detail).toMatch(/has no pod yet/);

    const cancel = await t.app.inject({ method: "POST", url: `/api/v1/runs/coderun/${name}/cancel`, headers: authHeader });
    expect(cancel.statusCode, cancel.body).toBe(202);
    expect(
      ((await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns", name })) as CodeRun)
        .spec.cancel,
    ).toBe(true);

    await setStatus("coderuns", name, { phase: "Cancelled" });
    const retry = await t.app.inject({
      method: "POST",
      url: `/api/v1/runs/coderun/${name}/retry`,
      payload: { prompt_modification: "Try again." },
      headers: authHeader,
    });
    expect(retry.statusCode, retry.body).toBe(201);
    const retried = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "coderuns",
      name: retry.json().data.coderun_name,
    })) as CodeRun;
    expect(retried.spec).toMatchObject({ contextVersion: 2, continueSession: true, promptModification: "Try again." });
    expect(retried.spec.cancel).toBeUndefined();
  });

  it("answers a repeated Idempotency-Key with the original 201, and 422 for its reuse on another request, through the real label selector", async () => {
    const { t, listCodeRuns } = await setup();
    const headers = { ...authHeader, "idempotency-key": "0f8fad5b-d9cb-469f-a165-70867728950e" };
    const first = await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: body, headers });
    expect(first.statusCode).toBe(201);
    const repeat = await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: body, headers });
    expect(repeat.statusCode).toBe(201);
    expect(repeat.json()).toEqual(first.json());
    expect(repeat.headers.location).toBe(first.headers.location);
    expect((await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: { ...body, task_id: 13 }, headers })).statusCode).toBe(
      422,
    );
    expect(await listCodeRuns()).toHaveLength(1);
  });

  it("creates a DocsRun the API server accepts", async () => {
    const { t, custom, ns } = await setup();
    const res = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/docs/generate",
      payload: {
        repository_url: "acme/docs",
        working_directory: ".",
        source_branch: "main",
        github_app: "5DLabs-Morgan",
        include_codebase: true,
      },
      headers: authHeader,
    });
    expect(res.statusCode, res.body).toBe(201);
    const dr = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "docsruns",
      name: res.json().data.docsrun_name,
    })) as { spec: Record<string, unknown> };
    expect(dr.spec).toMatchObject({ githubApp: "5DLabs-Morgan", includeCodebase: true, model: "claude-opus-4-20250514" });
  });
});

describe("per-requester quotas on a real API server", () => {
  const task = (id: number, extra: Record<string, unknown> = {}) => ({
    task_id: id,
    service: "quota",
    repository_url: "acme/quota",
    docs_repository_url: "acme/docs",
    github_user: "swe-1",
    ...extra,
  });

  it("refuses a requester's run past authorization.quotas.maxActiveRuns with 429, counting only its unfinished runs", async () => {
    const { t, setStatus, listCodeRuns } = await setup({ quotas: "{maxActiveRuns: 2}" });
    const submit = (id: number, headers: Record<string, string> = authHeader) =>
      t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: task(id), headers });
    const first = await submit(1);
    expect(first.statusCode, first.body).toBe(201);
    expect((await submit(2)).statusCode).toBe(201);
    const third = await submit(3);
    expect(third.statusCode).toBe(429);
    expect((await listCodeRuns()).map((r) => r.spec.taskId).sort()).toEqual([1, 2]);
    expect(third.headers["retry-after"]).toBe("60");
    expect(third.json()).toMatchObject({
      reason: "QuotaExceeded",
      detail: expect.stringMatching(
        /api-token-1 has 2 runs that have not finished; authorization\.quotas\.maxActiveRuns allows 2\. Wait for one to finish or cancel one/,
      ),
    });
    const docs = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/docs/generate",
      payload: { repository_url: "acme/quota", working_directory: ".", source_branch: "main", github_user: "swe-1" },
      headers: authHeader,
    });
    expect(docs.statusCode).toBe(429);
    // Another requester has its own quota.
    expect((await submit(5, { authorization: `Bearer ${SECOND_TOKEN}` })).statusCode).toBe(201);
    // A finished run no longer counts.
    await setStatus("coderuns", first.json().data.coderun_name as string, { phase: "Succeeded" });
    const after = await submit(3);
    expect(after.statusCode, after.body).toBe(201);
  });

  it("holds a webhook rule to its active-run quota too (202 quota, nothing created)", async () => {
    const { t, listCodeRuns } = await setup({ quotas: "{maxActiveRuns: 1}" });
    const on = (issue: number) => {
      const p = commentPayload(`/agent run issue ${issue}`) as { issue: Record<string, unknown> };
      p.issue = { ...p.issue, number: issue };
      return signedDelivery("issue_comment", p);
    };
    expect((await deliver(t.app, await on(21))).statusCode).toBe(201);
    const second = await deliver(t.app, await on(22));
    expect(second.statusCode).toBe(202);
    expect(second.json().data.outcome).toBe("quota");
    expect((await listCodeRuns()).map((r) => r.spec.taskId)).toEqual([21]);
  });

  it("refuses a spec over authorization.quotas.maxSpecBytes with 413 and creates nothing", async () => {
    const { t, listCodeRuns } = await setup({ quotas: "{maxSpecBytes: 8192}" });
    const big = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/tasks",
      payload: task(4, { prompt_modification: "x".repeat(9000) }),
      headers: authHeader,
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().detail).toMatch(/authorization\.quotas\.maxSpecBytes allows 8192\. Shorten the prompt/);
    expect(await listCodeRuns()).toEqual([]);
    expect(
      (
        await t.app.inject({
          method: "POST",
          url: "/api/v1/pm/tasks",
          payload: task(4, { prompt_modification: "short" }),
          headers: authHeader,
        })
      ).statusCode,
    ).toBe(201);
  });
});

describe("kube RunStore adapter", () => {
  it("maps the API server's answers: AlreadyExists, NotFound, Invalid with causes", async () => {
    const { runs } = await setup();
    const run: CodeRun = {
      apiVersion: "orchestrator.platform/v1",
      kind: "CodeRun",
      metadata: { name: "adapter-1" },
      spec: { taskId: 1, service: "s", repositoryUrl: "a/b", docsRepositoryUrl: "a/c", model: "m", githubUser: "u" },
    };
    await runs.create(run);
    await expect(runs.create(run)).rejects.toMatchObject({ reason: "AlreadyExists" });
    await expect(runs.get("CodeRun", "missing")).rejects.toMatchObject({ reason: "NotFound" });
    await expect(runs.patchSpec("DocsRun", "missing", { cancel: true })).rejects.toMatchObject({ reason: "NotFound" });
    const invalid = { ...run, metadata: { name: "adapter-2" }, spec: { ...run.spec, taskId: 0, githubApp: "both" } };
    const err = (await runs.create(invalid).catch((e: unknown) => e)) as RunStoreError;
    expect(err).toBeInstanceOf(RunStoreError);
    expect(err.reason).toBe("Invalid");
    expect(err.causes.map((c) => c.field)).toEqual(expect.arrayContaining(["spec.taskId"]));
    // CEL rules run once the OpenAPI schema passes.
    const both = { ...run, metadata: { name: "adapter-3" }, spec: { ...run.spec, githubApp: "both" } };
    await expect(runs.create(both)).rejects.toMatchObject({
      reason: "Invalid",
      message: expect.stringMatching(/set exactly one of spec.githubUser or spec.githubApp/),
    });
    expect((await runs.list("CodeRun", { app: "nothing" })).length).toBe(0);
  });

  it("authenticates ServiceAccount tokens with a real TokenReview", async () => {
    const { cp, ns } = await setup();
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "ci" } } });
    const tr = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: "ci",
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token ?? "";
    const config = testConfig(DEFAULT_CONFIG_YAML.replace("namespace: orchestrator", `namespace: ${ns}`), { ORCHESTRATOR_API_TOKENS: "" });
    const auth = createAuthenticator({
      tokens: [],
      tokenReview: { reviewer: createKubeTokenReviewer(cp.kubeConfig), allow: [], audiences: [], namespace: ns },
    });
    const t = buildTestApp({ config, auth, runs: createKubeRunStore({ kubeConfig: cp.kubeConfig, namespace: ns }) as never });
    apps.push(t);
    const ok = await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: `Bearer ${token}` } });
    expect(ok.statusCode, ok.body).toBe(200);
    const forged = await t.app.inject({
      method: "GET",
      url: "/api/v1/runs",
      headers: { authorization: `Bearer ${token.slice(0, -4)}AAAA` },
    });
    expect(forged.statusCode).toBe(401);
  });
});

describe("API server down", () => {
  it("answers 503 for submissions and webhook deliveries, and creates nothing", async () => {
    const { cp, t } = await setup();
    await cp.stop();
    const res = await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/tasks",
      payload: { task_id: 1, service: "s", repository_url: "a/b", docs_repository_url: "a/c", github_user: "u" },
      headers: authHeader,
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.headers["content-type"]).toMatch(/problem\+json/);
    expect(res.json()).toMatchObject({ success: false, type: "urn:orchestrator:problem:kubernetes-unavailable" });
    const list = await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: authHeader });
    expect(list.statusCode).toBe(503);
    const d = await signedDelivery("issue_comment", commentPayload("/agent run while down"));
    const hook = await deliver(t.app, d);
    expect(hook.statusCode).toBe(503);
    expect(hook.json().detail).toMatch(/Redeliver/);
  });
});
