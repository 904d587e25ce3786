/**
 * npm run bench:controller, the multi-cluster row — a benchmark, not a test.
 *
 * Three control planes (etcd + kube-apiserver each): the home cluster with the CRDs, where the
 * controller runs (compiled, as in the image, at its default settings) and the runs live, and two
 * execution clusters registered by cluster Secrets. N CodeRuns are created at once, alternately
 * placed in each execution cluster (spec.cluster); measured until every Job exists in its cluster
 * and every run shows Running at home. Every run's service has run before (its workspace claim
 * exists in its cluster).
 *
 * Ceilings: for each execution cluster alone, the minimal writes of a run placed there (ConfigMap
 * and Job in that cluster, the status patch at home) from plain clients with no client-side rate
 * limit, fed by the same run creations at home, at each of the writer concurrencies; the best is
 * that cluster's ceiling. The row compares the controller's runs/s across both clusters with the
 * sum of the two ceilings. Each ceiling was measured alone, while the controller's run shares the
 * home API server (run creates and status patches) between both clusters, so the sum overstates
 * what the three control planes can do at once.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { execa } from "execa";
import { CLUSTER_KUBECONFIG_KEY, GROUP, Labels, VERSION, type CodeRun } from "../src/api/index.js";
import { parseConfig } from "../src/config/config.js";
import { ControlPlane, freePorts } from "../src/controlplane/index.js";
import { buildJob, buildRunConfigMap, buildWorkspacePvc, computeRunParameters, workspacePvcName } from "../src/manifests/index.js";
import { loadTemplates, renderRunFiles } from "../src/templates/index.js";
import { CONTROLLER_ENV, NODE_FLAGS } from "./image-env.js";
import { plainClients } from "./plain-clients.js";

const N = Number(process.env.BENCH_CLUSTER_N ?? "200");
const CEILING_CONCURRENCY = (process.env.BENCH_CEILING_CONCURRENCY ?? "8,32,128").split(",").map(Number);
const CREATE_CONCURRENCY = 16;
const CONFIG_YAML = "concurrency: {perService: 1}\nauthorization: {quotas: {maxActiveRuns: 100000}}\n";
const REPOSITORY_KEY = "acme/api";
const CLUSTERS = ["exec-a", "exec-b"] as const;

type Clusters = { home: ControlPlane; exec: Record<(typeof CLUSTERS)[number], ControlPlane> };

const clusterOf = (i: number) => CLUSTERS[i % CLUSTERS.length] as (typeof CLUSTERS)[number];

function run(ns: string, i: number, cluster: string | undefined): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name: `bench-${i}`, namespace: ns },
    spec: {
      taskId: i + 1,
      service: `svc-${i}`,
      repositoryUrl: "https://github.com/acme/api.git",
      docsRepositoryUrl: "https://github.com/acme/docs.git",
      model: "claude-sonnet-4-20250514",
      githubUser: "alice",
      ...(cluster ? { cluster } : {}),
    },
  };
}

/** The namespace at home, and in an execution cluster with the agent Secrets and the services' claims (indexes `claims`). */
async function prepare(kc: KubeConfig, ns: string, exec: boolean, claims: number[] = []) {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  if (!exec) return;
  for (const [name, data] of [
    ["orchestrator-secrets", { ANTHROPIC_API_KEY: "x" }],
    ["github-token-alice", { token: "x" }],
  ] as const)
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: data } });
  const config = parseConfig(CONFIG_YAML, { KUBERNETES_NAMESPACE: ns });
  const queue = [...claims];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift())
        await core.createNamespacedPersistentVolumeClaim({
          namespace: ns,
          body: buildWorkspacePvc(`svc-${i}`, REPOSITORY_KEY, ns, config),
        });
    }),
  );
}

/** Creates the runs at home (CREATE_CONCURRENCY at once), handing each to `onCreated`. */
async function createRuns(home: KubeConfig, ns: string, indexes: number[], place: boolean, onCreated: (r: CodeRun) => void) {
  const custom = home.makeApiClient(CustomObjectsApi);
  const queue = [...indexes];
  await Promise.all(
    Array.from({ length: CREATE_CONCURRENCY }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const body = run(ns, i, place ? clusterOf(i) : undefined);
        onCreated(
          (await custom.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: ns,
            plural: "coderuns",
            body,
          })) as CodeRun,
        );
      }
    }),
  );
}

/** Polls until `n` runs are Running at home and their Jobs exist in `execs`; the end time. */
async function waitDone(home: KubeConfig, execs: KubeConfig[], ns: string, n: number): Promise<number> {
  const custom = home.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + 900_000;
  for (;;) {
    const [runs, ...jobs] = await Promise.all([
      custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns" }) as Promise<{
        items: CodeRun[];
      }>,
      ...execs.map((kc) => kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns, labelSelector: Labels.runUid })),
    ]);
    const running = runs.items.filter((r) => r.status?.phase === "Running").length;
    const jobCount = jobs.reduce((a, l) => a + l.items.length, 0);
    if (running >= n && jobCount >= n) return performance.now();
    if (Date.now() > deadline) throw new Error(`timed out: ${running} Running, ${jobCount} Jobs of ${n}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One execution cluster's ceiling at `concurrency` writers: runs/s for `n` runs placed there. */
async function ceiling(c: Clusters, cluster: (typeof CLUSTERS)[number], n: number, concurrency: number): Promise<number> {
  const ns = `bench-ceiling-${cluster}-c${concurrency}`;
  const exec = c.exec[cluster].kubeConfig;
  await prepare(c.home.kubeConfig, ns, false);
  await prepare(exec, ns, true);
  const config = parseConfig(CONFIG_YAML, { KUBERNETES_NAMESPACE: ns });
  const { core, batch } = plainClients(exec);
  const { custom } = plainClients(c.home.kubeConfig);
  const templates = loadTemplates();
  const queue: CodeRun[] = [];
  let done = 0;
  const t0 = performance.now();
  const writers = Array.from({ length: concurrency }, async () => {
    while (done < n) {
      const r = queue.shift();
      if (!r) {
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      const params = computeRunParameters(r, 1, config);
      const files = renderRunFiles(templates, { params, permissions: { allow: [...config.permissions.allow], deny: [] } });
      const job = buildJob(r, 1, config, workspacePvcName(r.spec.service, REPOSITORY_KEY));
      const cm = buildRunConfigMap(r, 1, params, files);
      delete job.metadata?.ownerReferences;
      delete cm.metadata?.ownerReferences;
      await core.createNamespacedConfigMap({ namespace: ns, body: cm });
      await batch.createNamespacedJob({ namespace: ns, body: job });
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: "coderuns",
          name: r.metadata.name ?? "",
          body: { status: { phase: "Running", attempts: 1, jobName: job.metadata?.name, cluster } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      done++;
    }
  });
  await createRuns(
    c.home.kubeConfig,
    ns,
    Array.from({ length: n }, (_, i) => i),
    false,
    (r) => queue.push(r),
  );
  await Promise.all(writers);
  const end = await waitDone(c.home.kubeConfig, [exec], ns, n);
  return n / ((end - t0) / 1000);
}

/** The controller process (dist/, defaults) at home; resolves once both execution clusters are reachable. */
async function startController(c: Clusters, ns: string) {
  const dir = mkdtempSync(join(tmpdir(), "bench-clusters-"));
  const port = (await freePorts(1))[0] as number;
  writeFileSync(join(dir, "config.yaml"), `${CONFIG_YAML}server: {host: 127.0.0.1, port: ${port}}\n`);
  const child = execa(process.execPath, [...NODE_FLAGS, "dist/cmd/main.js"], {
    env: {
      ...CONTROLLER_ENV,
      KUBECONFIG: c.home.kubeconfigPath,
      ORCHESTRATOR_CONFIG: join(dir, "config.yaml"),
      KUBERNETES_NAMESPACE: ns,
      LOG_LEVEL: "warn",
    },
    reject: false,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = await fetch(`http://127.0.0.1:${port}/metrics`)
      .then((r) => r.text())
      .catch(() => "");
    if (CLUSTERS.every((name) => text.includes(`orchestrator_cluster_reachable{cluster="${name}"} 1`))) break;
    if (Date.now() > deadline) throw new Error("the controller did not reach both execution clusters");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    stop: async () => {
      child.kill("SIGTERM");
      await child;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The controller's runs/s over N runs spread across both execution clusters. */
async function controllerAcross(c: Clusters): Promise<number> {
  const ns = "bench-clusters";
  const indexes = Array.from({ length: N }, (_, i) => i);
  await prepare(c.home.kubeConfig, ns, false);
  for (const name of CLUSTERS) {
    await prepare(
      c.exec[name].kubeConfig,
      ns,
      true,
      indexes.filter((i) => clusterOf(i) === name),
    );
    await c.home.kubeConfig.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: `cluster-${name}`, labels: { [Labels.cluster]: name } },
        stringData: { [CLUSTER_KUBECONFIG_KEY]: readFileSync(c.exec[name].kubeconfigPath, "utf8") },
      },
    });
  }
  const ctl = await startController(c, ns);
  try {
    const t0 = performance.now();
    await createRuns(c.home.kubeConfig, ns, indexes, true, () => undefined);
    const end = await waitDone(
      c.home.kubeConfig,
      CLUSTERS.map((name) => c.exec[name].kubeConfig),
      ns,
      N,
    );
    return N / ((end - t0) / 1000);
  } finally {
    await ctl.stop();
  }
}

async function main() {
  if (!process.argv.includes("--no-build")) await execa("npm", ["run", "-s", "build"], { stdio: "inherit" });
  const log = (l: string) => console.log(`[control-plane] ${l}`);
  const [home, a, b] = await Promise.all([
    ControlPlane.start({ mode: "minimal", crdPaths: ["infra/charts/orchestrator/crds"], log }),
    ControlPlane.start({ mode: "minimal", log }),
    ControlPlane.start({ mode: "minimal", log }),
  ]);
  const c: Clusters = { home, exec: { "exec-a": a, "exec-b": b } };
  try {
    const best: Record<string, { runsPerSec: number; writers: number }> = {};
    for (const name of CLUSTERS) {
      for (const w of CEILING_CONCURRENCY) {
        const r = await ceiling(c, name, N / CLUSTERS.length, w);
        console.log(`ceiling ${name}, N=${N / CLUSTERS.length}, ${w} writers: ${r.toFixed(1)} runs/s`);
        if (!best[name] || r > best[name].runsPerSec) best[name] = { runsPerSec: r, writers: w };
      }
    }
    const k = await controllerAcross(c);
    const sum = CLUSTERS.reduce((s, name) => s + (best[name]?.runsPerSec ?? 0), 0);
    const row = {
      N,
      clusters: CLUSTERS.length,
      "controller runs/s": +k.toFixed(1),
      ...Object.fromEntries(
        CLUSTERS.map((name) => [`ceiling ${name} runs/s (writers)`, `${best[name]?.runsPerSec.toFixed(1)} (${best[name]?.writers})`]),
      ),
      "sum of ceilings runs/s": +sum.toFixed(1),
      ratio: +(k / sum).toFixed(2),
    };
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    console.log(`\nMulti-cluster row (two execution clusters, controller defaults; load average at the end ${load}):`);
    console.table([row]);
    writeFileSync(
      "bench/results/controller-clusters.json",
      `${JSON.stringify({ date: new Date().toISOString(), loadAverage: load, nodeFlags: NODE_FLAGS, row }, null, 2)}\n`,
    );
  } finally {
    await Promise.all([home.stop(), a.stop(), b.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
