/**
 * Who may use what, against the real kube-apiserver: the CRD refuses malformed and dangerous
 * specs, the chart's admission policy keeps the requester annotations to the controller, the
 * reconciler refuses what a requester may not use (before reading any Secret), and TokenReview
 * accepts only tokens issued for the orchestrator's audience.
 */
import { BatchV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { execa } from "execa";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { buildAuthzAnnotations } from "../../src/authz/authorize.js";
import { createAuthenticator } from "../../src/http/auth.js";
import { createKubeRunStore, createKubeTokenReviewer } from "../../src/kube/run-store.js";
import { applyChartRbac, chartDir } from "../support/chart-rbac.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { codeRun, createAgentSecrets, runsApi, startInProcessController, waitFor } from "../support/controller-harness.js";
import { authHeader, buildTestApp, commentPayload, deliver, runNameOf, signedDelivery, testConfig } from "../support/webhook-fixtures.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length) await stops.pop()?.();
});

const kubectl = (args: string[], input?: string) =>
  execa(inject("kubectl"), ["--kubeconfig", cluster().kubeconfigPath, ...args], { reject: false, input });

describe("the CRD refuses what no requester may ask for", () => {
  it.each([
    [
      "secretName '.' (a GET would become a LIST)",
      { envFromSecrets: [{ name: "X", secretName: ".", secretKey: "k" }] },
      /spec\.envFromSecrets\[0\]\.secretName in body should match/,
    ],
    [
      "NODE_OPTIONS in env",
      { env: { NODE_OPTIONS: "--require /workspace/x.js" } },
      /spec\.env may not set variables the runner, git or Node read/,
    ],
    [
      "https_proxy from a Secret",
      { envFromSecrets: [{ name: "https_proxy", secretName: "npm-token", secretKey: "k" }] },
      /envFromSecrets may not set variables/,
    ],
    [
      "a docs repository over plain HTTP",
      { docsRepositoryUrl: "http://evil.example:8080/x/y.git" },
      /spec\.docsRepositoryUrl in body should match/,
    ],
    [
      "credentials in a repository URL",
      { repositoryUrl: "https://x-access-token:t@github.com/acme/api.git" },
      /spec\.repositoryUrl in body should match/,
    ],
    ["an identity that is not a login", { githubUser: "../x" }, /spec\.githubUser in body should match/],
  ])("%s", async (_what, spec, message) => {
    const ns = await newNamespace("crd");
    const r = await kubectl(["create", "-f", "-"], JSON.stringify(codeRun(ns, "bad", spec as Partial<CodeRun["spec"]>)));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

/** Renders and applies the chart's admission policy for a release in `ns`. */
async function applyAdmissionPolicy(ns: string): Promise<void> {
  const rendered = await execa(inject("helm"), [
    "template",
    "orchestrator",
    chartDir(),
    "--namespace",
    ns,
    "--set",
    "secrets.existingSecret=x",
    "--show-only",
    "templates/admission-policy.yaml",
  ]);
  const applied = await kubectl(["apply", "-f", "-"], rendered.stdout);
  expect(applied.exitCode, applied.stderr).toBe(0);
}

describe("only the controller records who asked for a run", () => {
  it("refuses the requester annotations from anyone else, on create and on update", async () => {
    const cp = cluster();
    const ns = await newNamespace("vap");
    const sa = await applyChartRbac(cp, ns);
    await applyAdmissionPolicy(ns);
    const forged = {
      ...codeRun(ns, "forged"),
      metadata: { name: "forged", namespace: ns, annotations: buildAuthzAnnotations("api-token-1", codeRun(ns, "x").spec) },
    };
    // The policy takes effect within a few seconds of its creation.
    const denied = await waitFor(
      async () => {
        const r = await kubectl(["create", "-f", "-"], JSON.stringify(forged));
        if (r.exitCode === 0) await kubectl(["delete", "coderun", "forged", "-n", ns]);
        return r.exitCode !== 0 && r.stderr;
      },
      30_000,
      "admission policy active",
    );
    expect(denied).toMatch(/Only the orchestrator may set or change the annotations orchestrator\.platform\/requester/);

    const plain = await kubectl(["create", "-f", "-"], JSON.stringify(codeRun(ns, "plain")));
    expect(plain.exitCode, plain.stderr).toBe(0);
    const added = await kubectl(["annotate", "coderun", "plain", "-n", ns, "orchestrator.platform/requester=api-token-1"]);
    expect(added.exitCode).not.toBe(0);
    expect(added.stderr).toMatch(/Only the orchestrator may set or change/);
    // Other annotations and spec.cancel stay editable with kubectl.
    expect((await kubectl(["annotate", "coderun", "plain", "-n", ns, "team=web"])).exitCode).toBe(0);

    // The controller's ServiceAccount (the intake) may set them.
    const asController = runsApi(sa.kubeConfig as KubeConfig);
    await expect(asController.create(forged)).resolves.toMatchObject({ metadata: { name: "forged" } });
  });
});

describe("the reconciler decides again, before reading any Secret", () => {
  const config = `job: {maxRetries: 0}
authorization:
  mountableSecrets: [npm-token]
  rules:
    - requesters: [api-token-1]
      identities: ["user:alice"]
      repositories: ["acme/*"]
      secrets: [npm-token]
`;

  it("refuses the controller's own Secret, kubectl-made runs without a rule, and starts the intake's authorized run", async () => {
    const cp = cluster();
    const ns = await newNamespace("authz");
    await createAgentSecrets(cp.kubeConfig, ns);
    const { manager, started } = startInProcessController(cp.kubeConfig, ns, config);
    await started;
    stops.push(() => manager.stop());
    const runs = runsApi(cp.kubeConfig);
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const statusOf = async (name: string) => ((await runs.get("CodeRun", ns, name)) as CodeRun).status;

    // What an API client with api-token-1 asked for, as the intake records it.
    const authorized = codeRun(ns, "authorized", { envFromSecrets: [{ name: "NPM_TOKEN", secretName: "npm-token", secretKey: "token" }] });
    authorized.metadata.annotations = buildAuthzAnnotations("api-token-1", authorized.spec);
    // The same requester asking for the controller's own Secret (e.g. through a spec edited later).
    const own = codeRun(ns, "own", {
      envFromSecrets: [{ name: "X", secretName: "orchestrator-secrets", secretKey: "GITHUB_WEBHOOK_SECRET" }],
    });
    own.metadata.annotations = buildAuthzAnnotations("api-token-1", own.spec);
    // Made with kubectl: no rule lists `kubernetes`.
    const kubectlMade = codeRun(ns, "kubectl-made");
    await cp.kubeConfig
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({ namespace: ns, body: { metadata: { name: "npm-token" }, stringData: { token: "npm_x" } } });
    for (const r of [authorized, own, kubectlMade]) await runs.create(r);

    const ownStatus = await waitFor(
      async () => ((await statusOf("own"))?.phase === "Failed" ? statusOf("own") : undefined),
      20_000,
      "own Failed",
    );
    expect(ownStatus).toMatchObject({ reason: "NotAuthorized" });
    expect(ownStatus?.message).toContain("Secret orchestrator-secrets may not be mounted into runs");
    const kubectlStatus = await waitFor(
      async () => ((await statusOf("kubectl-made"))?.phase === "Failed" ? statusOf("kubectl-made") : undefined),
      20_000,
      "kubectl-made Failed",
    );
    expect(kubectlStatus?.message).toMatch(/kubernetes may not create runs: no authorization rule lists it/);
    const authorizedStatus = await waitFor(
      async () => ((await statusOf("authorized"))?.jobName ? statusOf("authorized") : undefined),
      20_000,
      "authorized Job",
    ).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify(await statusOf("authorized"))}`);
    });
    expect(authorizedStatus?.phase).toBe("Running");
    const jobs = (await batch.listNamespacedJob({ namespace: ns })).items;
    expect(jobs.map((j) => j.metadata?.name)).toEqual([authorizedStatus?.jobName]);
    expect(
      jobs[0]?.spec?.template.spec?.containers.some((c) =>
        c.env?.some((e) => e.valueFrom?.secretKeyRef?.name === "orchestrator-secrets" && e.name === "X"),
      ),
    ).toBe(false);
  });
});

describe("webhook-created runs are decided for their rule", () => {
  const yaml = (ns: string) => `namespace: ${ns}
job: {maxRetries: 0}
webhook:
  defaults: {githubUser: alice}
  rules:
    - name: agent-run
      event: issue_comment
      commentPattern: '^/agent run\\b(?<prompt>.*)'
authorization:
  rules:
    - requesters: ["webhook:agent-run"]
      identities: ["user:alice"]
      repositories: ["codertocat/hello-world"]
`;

  it("stamps webhook:<rule> at intake; the reconciler starts that run and refuses the same spec made with kubectl", async () => {
    const cp = cluster();
    const ns = await newNamespace("hookauthz");
    await createAgentSecrets(cp.kubeConfig, ns);
    const { manager, started } = startInProcessController(cp.kubeConfig, ns, yaml(ns));
    await started;
    stops.push(() => manager.stop());
    const intake = buildTestApp({
      config: testConfig(yaml(ns)),
      runs: createKubeRunStore({ kubeConfig: cp.kubeConfig, namespace: ns, requestTimeoutMs: 5000 }) as never,
    });
    stops.push(() => intake.close());
    const runs = runsApi(cp.kubeConfig);
    const statusOf = async (name: string) => ((await runs.get("CodeRun", ns, name)) as CodeRun).status;

    const d = await signedDelivery("issue_comment", commentPayload("/agent run fix it"));
    const res = await deliver(intake.app, d);
    expect(res.statusCode, res.body).toBe(201);
    const made = (await runs.get("CodeRun", ns, runNameOf(d))) as CodeRun;
    expect(made.metadata.annotations?.["orchestrator.platform/requester"]).toBe("webhook:agent-run");
    // The same spec created with kubectl is decided for `kubernetes`, which no rule lists.
    await runs.create(codeRun(ns, "copied", made.spec));

    const hookStatus = await waitFor(
      async () => ((await statusOf(runNameOf(d)))?.jobName ? statusOf(runNameOf(d)) : undefined),
      20_000,
      "webhook run Job",
    ).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify(await statusOf(runNameOf(d)))}`);
    });
    expect(hookStatus?.phase).toBe("Running");
    const copied = await waitFor(
      async () => ((await statusOf("copied"))?.phase === "Failed" ? statusOf("copied") : undefined),
      20_000,
      "copy Failed",
    );
    expect(copied).toMatchObject({ reason: "NotAuthorized" });
    expect(copied?.message).toMatch(/kubernetes may not create runs/);
  });
});

describe("Secrets labelled mountable", () => {
  it("the REST intake and the reconciler mount a labelled Secret, never an unlabelled one or the controller's own", async () => {
    const cp = cluster();
    const ns = await newNamespace("labelled");
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    const secret = (name: string, labels: Record<string, string> = {}) =>
      core.createNamespacedSecret({ namespace: ns, body: { metadata: { name, labels }, stringData: { k: "v" } } });
    await secret("team-registry", { "orchestrator.platform/mountable": "true" });
    await secret("plain");
    // The controller's own Secret, labelled by a careless operator.
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: "orchestrator-secrets", labels: { "orchestrator.platform/mountable": "true" } },
        stringData: { ANTHROPIC_API_KEY: "sk-test", k: "v" },
      },
    });
    await createAgentSecrets(cp.kubeConfig, ns);
    const { manager, started } = startInProcessController(cp.kubeConfig, ns, "job: {maxRetries: 0}\n");
    await started;
    stops.push(() => manager.stop());

    // The REST intake, against the same namespace (no authorization config: only labels make Secrets mountable).
    const intake = buildTestApp({
      config: testConfig(`namespace: ${ns}\n`),
      runs: createKubeRunStore({ kubeConfig: cp.kubeConfig, namespace: ns, requestTimeoutMs: 5000 }) as never,
    });
    stops.push(() => intake.close());
    const submit = (id: number, secretName: string) =>
      intake.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        headers: authHeader,
        payload: {
          task_id: id,
          service: "api",
          repository_url: "acme/api",
          docs_repository_url: "acme/docs",
          github_user: "alice",
          env_from_secrets: [{ name: "X", secretName, secretKey: "k" }],
        },
      });
    const ok = await submit(1, "team-registry");
    expect(ok.statusCode, ok.body).toBe(201);
    for (const name of ["plain", "orchestrator-secrets"]) {
      const refused = await submit(2, name);
      expect(refused.statusCode, name).toBe(403);
      expect(refused.json().detail).toContain(`Secret ${name} may not be mounted into runs`);
    }

    // kubectl-made runs, decided by the reconciler from its cache.
    const runs = runsApi(cp.kubeConfig);
    const statusOf = async (name: string) => ((await runs.get("CodeRun", ns, name)) as CodeRun).status;
    const mounting = (name: string, secretName: string, taskId: number) =>
      runs.create(codeRun(ns, name, { taskId, service: `svc-${taskId}`, envFromSecrets: [{ name: "X", secretName, secretKey: "k" }] }));
    await mounting("labelled", "team-registry", 11);
    await mounting("own", "orchestrator-secrets", 12);
    await mounting("unlabelled", "plain", 13);
    const started1 = await waitFor(
      async () => ((await statusOf("labelled"))?.jobName ? statusOf("labelled") : undefined),
      20_000,
      "labelled Job",
    );
    expect(started1?.phase).toBe("Running");
    for (const name of ["own", "unlabelled"]) {
      const st = await waitFor(
        async () => ((await statusOf(name))?.phase === "Failed" ? statusOf(name) : undefined),
        20_000,
        `${name} Failed`,
      );
      expect(st).toMatchObject({ reason: "NotAuthorized" });
    }
    const submitted = ok.json().data.coderun_name as string;
    expect(
      (await waitFor(async () => ((await statusOf(submitted))?.jobName ? statusOf(submitted) : undefined), 20_000, "submitted Job"))?.phase,
    ).toBe("Running");
  });
});

describe("TokenReview", () => {
  it("accepts only ServiceAccount tokens issued for the orchestrator's audience", async () => {
    const cp = cluster();
    const ns = await newNamespace("tr");
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "ci" } } });
    const token = async (audiences: string[]) =>
      (await core.createNamespacedServiceAccountToken({ namespace: ns, name: "ci", body: { spec: { audiences, expirationSeconds: 600 } } }))
        .status?.token ?? "";
    const auth = createAuthenticator({
      tokens: [],
      tokenReview: { reviewer: createKubeTokenReviewer(cp.kubeConfig), allow: [], audiences: ["orchestrator"], namespace: ns },
    });
    expect(await auth.authenticate(`Bearer ${await token(["orchestrator"])}`)).toMatchObject({
      ok: true,
      principal: { name: `system:serviceaccount:${ns}:ci` },
    });
    // A token meant for the Kubernetes API (the default audience) is not one for the orchestrator.
    expect(await auth.authenticate(`Bearer ${await token([])}`)).toMatchObject({
      ok: false,
      status: 401,
      message: expect.stringMatching(/--audience orchestrator/),
    });
  });
});
