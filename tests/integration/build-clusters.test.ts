/**
 * Build clusters: the home control plane (runs, status) and two execution clusters, each its own
 * kwok-backed control plane. Runs land where placed (spec.cluster, the service's default) and
 * complete; an unknown cluster fails the run; a cluster's limit holds; an execution cluster whose
 * API server stops mid-burst leaves its runs waiting with a condition naming it, and they
 * complete once it is back, with one Job per attempt and nothing lost.
 */
import { BatchV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { execa } from "execa";
import { parse } from "yaml";
import { CLUSTER_KUBECONFIG_KEY, ConditionTypes, Labels, RunReasons, type CodeRun } from "../../src/api/index.js";
import type { ControlPlane } from "../../src/controlplane/index.js";
import { createKubeRunStore } from "../../src/kube/run-store.js";
import { useControlPlane } from "../support/cluster.js";
import { codeRun, createAgentSecrets, runsApi, startInProcessController, waitFor } from "../support/controller-harness.js";

const CRDS = "infra/charts/orchestrator/crds/platform-crds.yaml";
const home = useControlPlane("minimal", { crdPaths: [CRDS] });
const execA = useControlPlane("full");
const execB = useControlPlane("full");
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length) await stops.pop()?.();
});

const SCRIPT = "infra/scripts/register-cluster.sh";

/**
 * The controller's namespace at home with the chart's API key Secret; the execution clusters
 * get theirs from register-cluster.sh (the namespace, and the key with --copy-api-key).
 */
async function homeNamespace(): Promise<string> {
  const ns = `bc-${randomBytes(3).toString("hex")}`;
  await home()
    .kubeConfig.makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: ns } } });
  await createAgentSecrets(home().kubeConfig, ns);
  return ns;
}

/** The real script, with the execution cluster's and the home cluster's kubeconfig files. */
function registerScript(args: string[], cp: ControlPlane) {
  const kubectlDir = dirname(inject("kubectl"));
  return execa("bash", [SCRIPT, "--kubeconfig", cp.kubeconfigPath, "--home-kubeconfig", home().kubeconfigPath, ...args], {
    reject: false,
    env: { PATH: `${kubectlDir}:${process.env.PATH}` },
  });
}

/**
 * Registers an execution cluster with infra/scripts/register-cluster.sh (so the controller
 * reaches it as the script's ServiceAccount, with only its Role), then creates the agent's
 * GitHub Secret there, as setup-agent-secrets.sh --context would.
 */
async function registerCluster(ns: string, name: string, cp: ControlPlane): Promise<void> {
  const r = await registerScript(["--name", name, "--namespace", ns, "--copy-api-key"], cp);
  expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: ns }).then(() => true), 30_000, "default SA");
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: "github-token-alice" }, stringData: { token: "ghp_test" } },
  });
}

const CONFIG = (extra = "") =>
  `job: {retryBackoffSeconds: 1, retryBackoffMaxSeconds: 2, maxRetries: 0}\ncontroller: {resyncSeconds: 30, clusters: {serviceDefaults: {api-b: exec-b}${extra}}}\n`;

async function setup(configYaml = CONFIG()) {
  const ns = await homeNamespace();
  await registerCluster(ns, "exec-a", execA());
  await registerCluster(ns, "exec-b", execB());
  const ctl = startInProcessController(home().kubeConfig, ns, configYaml);
  await ctl.started;
  stops.push(ctl.stop);
  return { ns, ctl, runs: runsApi(home().kubeConfig) };
}

async function jobsIn(kc: KubeConfig, ns: string) {
  return (await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns })).items;
}

const statusOf = async (runs: ReturnType<typeof runsApi>, ns: string, name: string) =>
  ((await runs.get("CodeRun", ns, name)) as CodeRun).status ?? {};

async function allSucceeded(runs: ReturnType<typeof runsApi>, ns: string, names: string[], timeoutMs: number) {
  await waitFor(
    async () => {
      const phases = await Promise.all(names.map(async (n) => (await statusOf(runs, ns, n)).phase));
      if (phases.some((p) => p === "Failed" || p === "Cancelled")) throw new Error(`a run ended ${JSON.stringify(phases)}`);
      return phases.every((p) => p === "Succeeded");
    },
    timeoutMs,
    `${names.length} runs Succeeded`,
    500,
  );
}

describe("build clusters", () => {
  it("places runs by spec.cluster and the service's default, completes them there, and fails an unknown cluster", async () => {
    const { ns, runs } = await setup();
    await runs.create(codeRun(ns, "on-a", { service: "api-a", cluster: "exec-a" }));
    await runs.create(codeRun(ns, "on-b", { service: "api-b" }));
    await runs.create(codeRun(ns, "nowhere", { service: "api-c", cluster: "nowhere" }));
    await allSucceeded(runs, ns, ["on-a", "on-b"], 90_000);
    const a = await statusOf(runs, ns, "on-a");
    const b = await statusOf(runs, ns, "on-b");
    expect([a.cluster, b.cluster]).toEqual(["exec-a", "exec-b"]);
    const [jobsHome, jobsA, jobsB] = await Promise.all([
      jobsIn(home().kubeConfig, ns),
      jobsIn(execA().kubeConfig, ns),
      jobsIn(execB().kubeConfig, ns),
    ]);
    expect(jobsHome).toEqual([]);
    expect(jobsA.map((j) => j.metadata?.name)).toEqual([a.jobName]);
    expect(jobsB.map((j) => j.metadata?.name)).toEqual([b.jobName]);
    // Nothing in an execution cluster points at an owner it cannot see.
    expect(jobsA[0]?.metadata?.ownerReferences ?? []).toEqual([]);
    const cms = await execA().kubeConfig.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns, labelSelector: Labels.runUid });
    expect(cms.items.map((c) => c.metadata?.name)).toEqual([a.configmapName]);
    expect(a.conditions?.find((c) => c.type === ConditionTypes.ClusterReachable)?.status).toBe("True");
    // The run's log is read in its cluster, as the script's ServiceAccount (pods/log): the pod is
    // found there, and that API server cannot read a kwok pod's log (502 at the REST API); at
    // home there is no pod at all.
    const store = createKubeRunStore({ kubeConfig: home().kubeConfig, namespace: ns });
    await expect(store.openJobLogs(a.jobName!, { follow: false, cluster: "exec-a" })).rejects.toMatchObject({
      reason: "Unavailable",
      message: expect.stringMatching(/^HTTP 5\d\d:/),
    });
    await expect(store.openJobLogs(a.jobName!, { follow: false })).rejects.toMatchObject({ reason: "NotFound" });

    const unknown = await waitFor(
      async () => {
        const s = await statusOf(runs, ns, "nowhere");
        return s.phase === "Failed" ? s : undefined;
      },
      30_000,
      "run on an unknown cluster Failed",
    );
    expect(unknown.reason).toBe(RunReasons.ClusterUnknown);
    expect(unknown.message).toContain('Cluster "nowhere" (from spec.cluster) is not registered');
    expect(unknown.message).toContain("infra/scripts/register-cluster.sh --name nowhere");
  });

  it("keeps a cluster's active runs within controller.clusters.maxActiveRuns", async () => {
    const { ns, runs, ctl } = await setup(CONFIG(", maxActiveRuns: {exec-a: 2}"));
    const names = Array.from({ length: 5 }, (_, i) => `lim-${i}`);
    await Promise.all(
      names.map((n, i) =>
        runs.create(codeRun(ns, n, { service: `svc-${i}`, taskId: i + 1, cluster: "exec-a", env: { KWOK_RUN_DURATION: "3s" } })),
      ),
    );
    let maxActive = 0;
    let sawWaiting = false;
    await waitFor(
      async () => {
        const jobs = await jobsIn(execA().kubeConfig, ns);
        const active = jobs.filter(
          (j) => !j.status?.conditions?.some((c) => c.status === "True" && (c.type === "Complete" || c.type === "Failed")),
        );
        maxActive = Math.max(maxActive, active.length);
        const statuses = await Promise.all(names.map((n) => statusOf(runs, ns, n)));
        sawWaiting ||= statuses.some((s) => s.reason === RunReasons.WaitingForCluster);
        return statuses.every((s) => s.phase === "Succeeded");
      },
      120_000,
      "the limited burst to finish",
      300,
    );
    expect(maxActive).toBeLessThanOrEqual(2);
    expect(sawWaiting).toBe(true);
    const metrics = await ctl.metrics.registry.getSingleMetricAsString("orchestrator_cluster_jobs_created_total");
    expect(metrics).toContain('orchestrator_cluster_jobs_created_total{cluster="exec-a"} 5');
  });

  it(
    "an execution cluster stopped mid-burst: its runs wait, naming it, and complete once it is back; nothing lost or doubled",
    { timeout: 360_000 },
    async () => {
      const { ns, runs } = await setup();
      const onA = Array.from({ length: 4 }, (_, i) => `a-${i}`);
      const onB = Array.from({ length: 4 }, (_, i) => `b-${i}`);
      const create = (name: string, i: number, cluster: string) =>
        runs.create(codeRun(ns, name, { service: `s-${name}`, taskId: i + 1, cluster, env: { KWOK_RUN_DURATION: "4s" } }));
      await Promise.all(onA.slice(0, 2).map((n, i) => create(n, i, "exec-a")));
      await Promise.all(onB.slice(0, 2).map((n, i) => create(n, i, "exec-b")));
      await waitFor(async () => (await jobsIn(execB().kubeConfig, ns)).length >= 2, 30_000, "the first Jobs in exec-b");
      await execB().stopApiServer();
      // The rest of the burst arrives while exec-b is down.
      await Promise.all(onA.slice(2).map((n, i) => create(n, i + 2, "exec-a")));
      await Promise.all(onB.slice(2).map((n, i) => create(n, i + 2, "exec-b")));
      await allSucceeded(runs, ns, onA, 90_000);
      const waiting = await waitFor(
        async () => {
          const ss = await Promise.all(onB.map((n) => statusOf(runs, ns, n)));
          const named = ss.map((s) => s.conditions?.find((c) => c.type === ConditionTypes.ClusterReachable));
          return named.every(
            (c) => c?.status === "False" && c.reason === RunReasons.ClusterUnreachable && c.message.includes("cluster exec-b"),
          )
            ? ss
            : undefined;
        },
        60_000,
        "exec-b's runs to say their cluster is unreachable",
      );
      expect(waiting.map((s) => s.phase)).not.toContain("Failed");
      expect(waiting.slice(2).map((s) => s.reason)).toEqual([RunReasons.ClusterUnreachable, RunReasons.ClusterUnreachable]);
      const t0 = performance.now();
      await execB().startApiServer();
      // The controller's side: every run there sees its cluster again and has its Job.
      await waitFor(
        async () => {
          const ss = await Promise.all(onB.map((n) => statusOf(runs, ns, n)));
          return ss.every(
            (st) => st.jobName && st.conditions?.some((c) => c.type === ConditionTypes.ClusterReachable && c.status === "True"),
          );
        },
        120_000,
        "exec-b's runs to see their cluster again",
        200,
      );
      const seenAgain = Math.round(performance.now() - t0);
      await allSucceeded(runs, ns, onB, 120_000);
      console.log(
        `[build-clusters] exec-b back: its ${onB.length} runs saw it reachable, each with its Job, ${seenAgain} ms and Succeeded ${Math.round(performance.now() - t0)} ms after its API server started`,
      );
      const jobsB = await jobsIn(execB().kubeConfig, ns);
      const jobsA = await jobsIn(execA().kubeConfig, ns);
      // One Job per run, attempt 1, in the run's own cluster.
      for (const [names, jobs] of [
        [onB, jobsB],
        [onA, jobsA],
      ] as const) {
        const byRun = new Map<string, string[]>();
        for (const j of jobs) {
          const uid = j.metadata?.labels?.[Labels.runUid] ?? "";
          byRun.set(uid, [...(byRun.get(uid) ?? []), j.metadata?.labels?.[Labels.attempt] ?? ""]);
        }
        expect(byRun.size).toBe(names.length);
        for (const attempts of byRun.values()) expect(attempts).toEqual(["1"]);
      }
      for (const n of onB) expect((await statusOf(runs, ns, n)).attempts).toBe(1);
    },
  );
});

describe("register-cluster.sh", () => {
  it("registers a cluster idempotently, with a token kubeconfig and the API key copied; bad input gets its own exit code", async () => {
    const ns = await homeNamespace();
    const first = await registerScript(["--name", "exec-a", "--namespace", ns, "--copy-api-key"], execA());
    expect(first.exitCode, first.stderr).toBe(0);
    const again = await registerScript(["--name", "exec-a", "--namespace", ns, "--copy-api-key"], execA());
    expect(again.exitCode, again.stderr).toBe(0);
    const secrets = await home()
      .kubeConfig.makeApiClient(CoreV1Api)
      .listNamespacedSecret({ namespace: ns, labelSelector: `${Labels.cluster}=exec-a` });
    expect(secrets.items.map((s) => s.metadata?.name)).toEqual(["cluster-exec-a"]);
    const kubeconfig = parse(Buffer.from(secrets.items[0]!.data![CLUSTER_KUBECONFIG_KEY]!, "base64").toString());
    // Inline credentials only: a token, the CA as data, the execution cluster's server.
    expect(kubeconfig.users[0].user).toEqual({ token: expect.any(String) });
    expect(kubeconfig.clusters[0].cluster.server).toBe(execA().server);
    expect(kubeconfig.clusters[0].cluster["certificate-authority-data"]).toBeTruthy();
    // The token's secrets never appear in the script's output.
    expect(`${first.stdout}${first.stderr}${again.stdout}`).not.toContain(kubeconfig.users[0].user.token);
    const copied = await execA().kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: ns, name: "orchestrator-secrets" });
    expect(Buffer.from(copied.data!.ANTHROPIC_API_KEY!, "base64").toString()).toBe("sk-test");
    expect(first.stdout).not.toContain("sk-test");

    const cases: Array<[string[], number, string]> = [
      [["--name", "Bad_Name", "--namespace", ns], 4, "must be a DNS label"],
      [["--name", "home", "--namespace", ns], 4, "controller's own cluster"],
      [["--namespace", ns], 3, "missing --name"],
      [["--name", "x", "--namespace", "missing-ns"], 11, "namespace missing-ns"],
      [["--name", "x", "--bogus"], 2, "unknown option"],
    ];
    for (const [args, code, text] of cases) {
      const r = await registerScript(args, execA());
      expect([r.exitCode, r.stderr], args.join(" ")).toEqual([code, expect.stringContaining(text)]);
    }
  });
});
