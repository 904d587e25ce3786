/**
 * npm run bench:controller — a benchmark, not a test.
 *
 * Creates N CodeRuns at once (N = 100, 500, 1000 by default; BENCH_SIZES=100,500 to change) on
 * an idle real control plane (etcd + kube-apiserver, "minimal" mode) and measures the time
 * until every Job exists and every run shows Running, with the controller running as its own
 * process (the built dist/, as in the image, with the image's environment: Node flags, allocator)
 * at its default settings (workers, QPS, burst).
 * Every run's service has run before: its workspace claim exists (created before the timed part).
 *
 * The ceiling is the API server's own limit: the minimal writes a run needs (ConfigMap create,
 * Job create, status patch) from plain clients with no client-side rate limit, fed by the same
 * run creations, at each of CEILING_CONCURRENCY concurrent writers; the best is the ceiling.
 * Reported: runs/s, ratio to the ceiling, p50/p99 create-to-Job latency (client clock: the
 * create call returning → the Job ADDED event on a watch), the controller's API calls per run
 * (from the API server's own apiserver_request_total, lists and watches excluded), its CPU time
 * per run (user + system from /proc, the burst and the 2 s after it) and its peak RSS (VmHWM).
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, Watch, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { execa } from "execa";
import { GROUP, VERSION, type CodeRun } from "../src/api/index.js";
import { parseConfig } from "../src/config/config.js";
import { ControlPlane, ensureKubeTools, freePorts } from "../src/controlplane/index.js";
import { buildJob, buildRunConfigMap, buildWorkspacePvc, computeRunParameters, workspacePvcName } from "../src/manifests/index.js";
import { loadTemplates, renderRunFiles } from "../src/templates/index.js";
import { CONTROLLER_ENV, NODE_FLAGS } from "./image-env.js";
import { plainClients } from "./plain-clients.js";
import { processCpuMs } from "./proc.js";

const SIZES = (process.env.BENCH_SIZES ?? "100,500,1000").split(",").map(Number);
/** Concurrent writers of the ceiling; the best of them is the API server's limit. "0": no ceiling (profiling the controller alone). */
const CEILING_CONCURRENCY = (process.env.BENCH_CEILING_CONCURRENCY ?? "8,32,128")
  .split(",")
  .map(Number)
  .filter((c) => c > 0);
const CREATE_CONCURRENCY = 16;
const IDLE_SAMPLES = 30;
/** The controller's settings: the defaults. */
// The bench's runs are created directly (requester `kubernetes`): its quota must not hold them back.
const CONFIG_YAML = "concurrency: {perService: 1}\nauthorization: {quotas: {maxActiveRuns: 100000}}\n";
const REPOSITORY_KEY = "acme/api";

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : NaN;
};

function run(ns: string, i: number): CodeRun {
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
    },
  };
}

async function prepareNamespace(kc: KubeConfig, ns: string, workspaces = 0) {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: "orchestrator-secrets" }, stringData: { ANTHROPIC_API_KEY: "x" } },
  });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "github-token-alice" }, stringData: { token: "x" } } });
  // The services have run before: their workspace claims exist.
  const config = parseConfig(CONFIG_YAML, { KUBERNETES_NAMESPACE: ns });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < workspaces) {
        const i = next++;
        await core.createNamespacedPersistentVolumeClaim({
          namespace: ns,
          body: buildWorkspacePvc(`svc-${i}`, REPOSITORY_KEY, ns, config),
        });
      }
    }),
  );
}

/** The API server's own count of the requests that are not lists or watches, per verb and resource. */
async function apiServerCalls(kubeconfigPath: string): Promise<Map<string, number>> {
  const { kubectl } = await ensureKubeTools();
  const { stdout } = await execa(kubectl, ["--kubeconfig", kubeconfigPath, "get", "--raw", "/metrics"]);
  const out = new Map<string, number>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (["LIST", "WATCH", "WATCHLIST"].includes(labels.verb ?? "") || !RUN_RESOURCES.has(labels.resource ?? "")) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ""}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}
const RUN_RESOURCES = new Set(["configmaps", "jobs", "events", "coderuns", "secrets", "persistentvolumeclaims", "pods"]);

/** Requests between two apiServerCalls() samples. */
function callsBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) d[k] = v - (before.get(k) ?? 0);
  return d;
}

/**
 * Watches Jobs (and CodeRun phases) in a namespace, recording when each appears. A watch that
 * ends is restarted; a 1 s list poll backs it up so a lost event cannot hang the benchmark
 * (a run first seen by the poll gets the poll's time, which can only make latency look worse).
 */
async function observe(kc: KubeConfig, ns: string) {
  const jobSeen = new Map<string, number>(); // run name → ms
  const running = new Set<string>();
  const w = new Watch(kc);
  const batch = kc.makeApiClient(BatchV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  let stopped = false;
  const reqs: Array<{ abort(): void }> = [];
  const onJob = (obj: { metadata?: { ownerReferences?: { name: string }[] } }) => {
    const owner = obj.metadata?.ownerReferences?.[0]?.name;
    if (owner && !jobSeen.has(owner)) jobSeen.set(owner, performance.now());
  };
  const onRun = (obj: CodeRun) => {
    if (obj.status?.phase === "Running") running.add(obj.metadata.name ?? "");
  };
  const watch = async (path: string, fn: (o: never) => void): Promise<void> => {
    if (stopped) return;
    reqs.push(
      await w.watch(
        path,
        {},
        (_t, obj) => fn(obj as never),
        () => void setTimeout(() => void watch(path, fn).catch(() => undefined), 200),
      ),
    );
  };
  await watch(`/apis/batch/v1/namespaces/${ns}/jobs`, onJob);
  await watch(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/coderuns`, onRun);
  const poll = setInterval(() => {
    void batch
      .listNamespacedJob({ namespace: ns })
      .then((l) => l.items.forEach((j) => onJob(j as never)))
      .catch(() => undefined);
    void custom
      .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns" })
      .then((l) => (l as { items: CodeRun[] }).items.forEach(onRun))
      .catch(() => undefined);
  }, 1000);
  return {
    jobSeen,
    running,
    stop: () => {
      stopped = true;
      clearInterval(poll);
      reqs.forEach((r) => r.abort());
    },
  };
}

async function createRuns(
  kc: KubeConfig,
  ns: string,
  n: number,
  onCreated: (run: CodeRun) => void,
  first = 0,
): Promise<Map<string, number>> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const createdAt = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CREATE_CONCURRENCY }, async () => {
      while (next < n) {
        const i = first + next++;
        const created = (await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: "coderuns",
          body: run(ns, i),
        })) as CodeRun;
        createdAt.set(created.metadata.name ?? "", performance.now());
        onCreated(created);
      }
    }),
  );
  return createdAt;
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Result {
  runsPerSec: number;
  seconds: number;
  p50: number;
  p99: number;
  peakRssMb?: number;
  idleRssMb?: number;
  idleP50?: number;
  idleP99?: number;
  /** kube-apiserver's CPU time (user + system) over the burst, per run. */
  apiServerCpuMsPerRun: number;
}

function summarize(n: number, t0: number, createdAt: Map<string, number>, jobSeen: Map<string, number>, end: number): Result {
  const lat = [...createdAt].map(([name, t]) => (jobSeen.get(name) ?? NaN) - t).filter((x) => !Number.isNaN(x));
  return {
    runsPerSec: n / ((end - t0) / 1000),
    seconds: (end - t0) / 1000,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    apiServerCpuMsPerRun: NaN,
  };
}

/** The minimal writes of a run (ConfigMap, Job, status) from plain clients without a client-side limit. */
async function ceiling(cp: ControlPlane, ns: string, n: number, concurrency: number): Promise<Result> {
  const kc = cp.kubeConfig;
  await prepareNamespace(kc, ns);
  const config = parseConfig(CONFIG_YAML, { KUBERNETES_NAMESPACE: ns });
  const { core, batch, custom } = plainClients(kc);
  const templates = loadTemplates();
  const obs = await observe(kc, ns);
  const queue: CodeRun[] = [];
  let done = 0;
  const apiCpu0 = processCpuMs(cp.pid("kube-apiserver"));
  const t0 = performance.now();
  const workers = Array.from({ length: concurrency }, async () => {
    while (done < n) {
      const r = queue.shift();
      if (!r) {
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      const params = computeRunParameters(r, 1, config);
      const files = renderRunFiles(templates, { params, permissions: { allow: [...config.permissions.allow], deny: [] } });
      const job = buildJob(r, 1, config, workspacePvcName(r.spec.service, REPOSITORY_KEY));
      await core.createNamespacedConfigMap({ namespace: ns, body: buildRunConfigMap(r, 1, params, files) });
      await batch.createNamespacedJob({ namespace: ns, body: job });
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: "coderuns",
          name: r.metadata.name ?? "",
          body: { status: { phase: "Running", attempts: 1, jobName: job.metadata?.name } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      done++;
    }
  });
  const createdAt = await createRuns(kc, ns, n, (created) => queue.push(created));
  await Promise.all(workers);
  await waitUntil(() => obs.jobSeen.size >= n && obs.running.size >= n, 600_000, "ceiling jobs");
  const end = performance.now();
  const apiServerCpuMsPerRun = (processCpuMs(cp.pid("kube-apiserver")) - apiCpu0) / n;
  obs.stop();
  return { ...summarize(n, t0, createdAt, obs.jobSeen, end), apiServerCpuMsPerRun };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function controller(
  cp: ControlPlane,
  ns: string,
  n: number,
): Promise<Result & { callsPerRun: number; calls: Record<string, number>; cpuMsPerRun: number }> {
  const kc = cp.kubeConfig;
  await prepareNamespace(kc, ns, n);
  const dir = mkdtempSync(join(tmpdir(), "bench-ctl-"));
  const port = (await freePorts(1))[0] as number;
  writeFileSync(join(dir, "config.yaml"), `${CONFIG_YAML}server: {host: 127.0.0.1, port: ${port}}\n`);
  const child = execa(process.execPath, [...NODE_FLAGS, "dist/cmd/main.js"], {
    env: {
      ...CONTROLLER_ENV,
      KUBECONFIG: cp.kubeconfigPath,
      ORCHESTRATOR_CONFIG: join(dir, "config.yaml"),
      KUBERNETES_NAMESPACE: ns,
      LOG_LEVEL: "warn",
      ORCHESTRATOR_API_TOKENS: "x",
    },
    reject: false,
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    const end0 = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      if (r?.status === 200) break;
      if (Date.now() > end0) throw new Error("controller did not become ready");
      await new Promise((res) => setTimeout(res, 100));
    }
    const idleRss = peakRssMb(child.pid ?? 0);
    const obs = await observe(kc, ns);
    const before = await apiServerCalls(cp.kubeconfigPath);
    const cpu0 = processCpuMs(child.pid);
    const apiCpu0 = processCpuMs(cp.pid("kube-apiserver"));
    const t0 = performance.now();
    const createdAt = await createRuns(kc, ns, n, () => undefined);
    await waitUntil(() => obs.jobSeen.size >= n && obs.running.size >= n, 600_000, "controller jobs");
    const end = performance.now();
    const apiServerCpuMsPerRun = (processCpuMs(cp.pid("kube-apiserver")) - apiCpu0) / n;
    // Settled: the passes that follow the status write (they should write nothing).
    await new Promise((res) => setTimeout(res, 2000));
    const cpuMsPerRun = (processCpuMs(child.pid) - cpu0) / n;
    const calls = callsBetween(before, await apiServerCalls(cp.kubeconfigPath));
    // The benchmark's own creates are not the controller's.
    calls["POST coderuns"] = (calls["POST coderuns"] ?? 0) - n;
    if (calls["POST coderuns"] === 0) delete calls["POST coderuns"];
    const rss = peakRssMb(child.pid ?? 0);
    // Idle latency: one run at a time on the now quiet control plane.
    const idle: number[] = [];
    for (let i = 0; i < IDLE_SAMPLES; i++) {
      const created = await createRuns(kc, ns, 1, () => undefined, n + i);
      const [name, t] = [...created][0] as [string, number];
      await waitUntil(() => obs.jobSeen.has(name), 30_000, "idle job");
      idle.push((obs.jobSeen.get(name) ?? NaN) - t);
    }
    obs.stop();
    return {
      ...summarize(n, t0, createdAt, obs.jobSeen, end),
      calls,
      callsPerRun: Object.values(calls).reduce((a, b) => a + b, 0) / n,
      cpuMsPerRun,
      apiServerCpuMsPerRun,
      peakRssMb: rss,
      idleRssMb: idleRss,
      idleP50: pct(idle, 50),
      idleP99: pct(idle, 99),
    };
  } finally {
    child.kill("SIGTERM");
    await child;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The best ceiling over the writer concurrencies, each in its own namespace. */
async function bestCeiling(cp: ControlPlane, n: number): Promise<Result & { concurrency: number }> {
  let best: (Result & { concurrency: number }) | undefined;
  if (CEILING_CONCURRENCY.length === 0)
    return { runsPerSec: NaN, seconds: NaN, p50: NaN, p99: NaN, apiServerCpuMsPerRun: NaN, concurrency: 0 };
  for (const c of CEILING_CONCURRENCY) {
    const r = await ceiling(cp, `bench-ceiling-${n}-c${c}`, n, c);
    console.log(`ceiling N=${n}, ${c} writers: ${r.runsPerSec.toFixed(1)} runs/s`);
    if (!best || r.runsPerSec > best.runsPerSec) best = { ...r, concurrency: c };
  }
  return best!;
}

async function main() {
  console.log("Building dist/ (the controller runs compiled, as in the image)...");
  await execa("npm", ["run", "-s", "build"], { stdio: "inherit" });
  const cp = await ControlPlane.start({
    mode: "minimal",
    crdPaths: ["infra/charts/orchestrator/crds"],
    log: (l) => console.log(`[control-plane] ${l}`),
  });
  const settings = parseConfig(CONFIG_YAML, {}).controller;
  const rows: Array<Record<string, number | string>> = [];
  try {
    for (const n of SIZES) {
      const c = await bestCeiling(cp, n);
      const k = await controller(cp, `bench-controller-${n}`, n);
      console.log(`controller N=${n}: API calls ${JSON.stringify(k.calls)}`);
      const row = {
        N: n,
        "controller runs/s": +k.runsPerSec.toFixed(1),
        "ceiling runs/s": +c.runsPerSec.toFixed(1),
        "ceiling writers": c.concurrency,
        ratio: +(k.runsPerSec / c.runsPerSec).toFixed(2),
        "calls/run": +k.callsPerRun.toFixed(2),
        "controller CPU ms/run": +k.cpuMsPerRun.toFixed(1),
        "apiserver CPU ms/run": +k.apiServerCpuMsPerRun.toFixed(1),
        "ceiling apiserver CPU ms/run": +c.apiServerCpuMsPerRun.toFixed(1),
        "idle p50 ms": Math.round(k.idleP50 ?? NaN),
        "idle p99 ms": Math.round(k.idleP99 ?? NaN),
        "p50 ms": Math.round(k.p50),
        "p99 ms": Math.round(k.p99),
        "ceiling p50 ms": Math.round(c.p50),
        "ceiling p99 ms": Math.round(c.p99),
        "peak RSS MB": Math.round(k.peakRssMb ?? NaN),
        "idle RSS MB": Math.round(k.idleRssMb ?? NaN),
      };
      rows.push(row);
      console.table([row]);
    }
  } finally {
    await cp.stop();
  }
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(
    `\nController benchmark (defaults: workers ${settings.workers}, QPS ${settings.qps}, burst ${settings.burst}; ${CREATE_CONCURRENCY} concurrent creators; node ${NODE_FLAGS.join(" ")}; env ${JSON.stringify(CONTROLLER_ENV)}; load average at the end ${load}):`,
  );
  console.log("p50/p99: create-to-Job latency with all N created at once (queueing included); idle p50/p99: one run at a time afterwards.");
  console.table(rows);
  writeFileSync(
    "bench/results/controller.json",
    `${JSON.stringify({ date: new Date().toISOString(), controller: settings, loadAverage: load, nodeFlags: NODE_FLAGS, env: CONTROLLER_ENV, rows }, null, 2)}\n`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
