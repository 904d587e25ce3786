/**
 * In-memory ControllerKube + ControllerCache for reconciler unit tests (pure decision logic).
 * The integration suite runs the same reconciler against the real API server.
 */
import type { CoreV1Event, V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { HOME_CLUSTER, Labels, type AnyRun, type Kind } from "../../src/api/index.js";
import type { ClusterTarget, ControllerCache, ControllerKube } from "../../src/controller/ports.js";
import { requesterOf } from "../../src/authz/authorize.js";

export class FakeKube implements ControllerKube, ControllerCache {
  runs = new Map<string, AnyRun>();
  jobs = new Map<string, V1Job>();
  pods = new Map<string, V1Pod[]>();
  pvcs = new Map<string, V1PersistentVolumeClaim>();
  configMaps = new Map<string, V1ConfigMap>();
  secrets = new Map<string, string[]>();
  events = new Map<string, CoreV1Event>();
  calls: string[] = [];
  /** Simulates informer lag: jobs created are invisible to the cache until flushed. */
  cacheLag = false;
  /** Simulates the run informer lagging: status patches reach the cached run (and its resourceVersion) only at flushStatus(). */
  statusLag = false;
  private pendingStatus = new Map<string, Record<string, unknown>>();
  private hidden = new Set<string>();

  addRun(run: AnyRun): AnyRun {
    this.runs.set(`${run.kind}/${run.metadata.namespace}/${run.metadata.name}`, run);
    return run;
  }
  flush(): void {
    this.hidden.clear();
  }
  /** The run informer catches up: patched statuses show, each with a new resourceVersion. */
  flushStatus(): void {
    for (const [key, status] of this.pendingStatus) {
      const run = this.runs.get(key);
      if (!run) continue;
      run.status = structuredClone(status) as never;
      run.metadata.resourceVersion = String(Number(run.metadata.resourceVersion ?? 0) + 1);
    }
    this.pendingStatus.clear();
  }
  /** Hides an existing Job ("ns/name") from the cache, as after a restart before the informer caught up. */
  hideJob(key: string): void {
    this.hidden.add(key);
  }

  // ControllerCache
  getRun(kind: Kind, ns: string, name: string) {
    return this.runs.get(`${kind}/${ns}/${name}`);
  }
  listRuns(kind: Kind, ns: string) {
    return [...this.runs.values()].filter((r) => r.kind === kind && r.metadata.namespace === ns);
  }
  runsOfRequester(ns: string, requester: string) {
    const all = [...this.listRuns("CodeRun", ns), ...this.listRuns("DocsRun", ns)];
    return new Map(all.filter((r) => requesterOf(r) === requester).map((r) => [r.metadata.uid ?? "", r]));
  }
  codeRunsOfService(ns: string, service: string) {
    const all = this.listRuns("CodeRun", ns).filter((r) => r.kind === "CodeRun" && r.spec.service === service);
    return new Map(all.map((r) => [r.metadata.uid ?? "", r]));
  }
  jobsOfRun(uid: string) {
    return [...this.jobs.entries()]
      .filter(([k, j]) => !this.hidden.has(k) && j.metadata?.labels?.[Labels.runUid] === uid)
      .map(([, j]) => j);
  }
  /**
   * Execution clusters besides home, by name: all share this one fake's objects (the reconciler's
   * decisions are what unit tests check); `reachable` false makes one unreachable.
   */
  remote = new Map<string, { reachable: boolean; lastError?: string }>();
  cluster(name: string): ClusterTarget | undefined {
    if (name === HOME_CLUSTER) return { name, kube: this, reachable: true, lastError: undefined };
    const r = this.remote.get(name);
    return r ? { name, kube: this, reachable: r.reachable, lastError: r.lastError } : undefined;
  }
  activeRunsIn(_cluster: string) {
    const active = [...this.jobs.values()].filter((j) => !j.status?.conditions?.some((c) => c.status === "True"));
    return new Set(active.map((j) => j.metadata?.labels?.[Labels.runUid] ?? ""));
  }
  podsOfJob(_cluster: string, ns: string, job: string) {
    return this.pods.get(`${ns}/${job}`) ?? [];
  }

  getPvc(_cluster: string, ns: string, name: string) {
    return this.pvcs.get(`${ns}/${name}`);
  }
  /** The informer's view of the Secrets; `secretCache` simulates one lagging behind `secrets`. */
  secretKeys(_cluster: string, ns: string, name: string) {
    this.calls.push(`secretKeys (cache) ${name}`);
    return (this.secretCache ?? this.secrets).get(`${ns}/${name}`);
  }
  secretCache: Map<string, string[]> | undefined;
  /** Secrets labelled mountable, as "ns/name". */
  labelledSecrets = new Set<string>();
  mountableSecrets(_cluster: string, ns: string) {
    return new Set([...this.labelledSecrets].filter((k) => k.startsWith(`${ns}/`)).map((k) => k.slice(ns.length + 1)));
  }

  // ControllerKube
  async createPvc(p: V1PersistentVolumeClaim) {
    this.calls.push(`createPvc ${p.metadata?.name}`);
    const k = `${p.metadata?.namespace}/${p.metadata?.name}`;
    if (!this.pvcs.has(k)) this.pvcs.set(k, p);
  }
  async createConfigMap(cm: V1ConfigMap) {
    this.calls.push(`createConfigMap ${cm.metadata?.name}`);
    const k = `${cm.metadata?.namespace}/${cm.metadata?.name}`;
    if (!this.configMaps.has(k)) this.configMaps.set(k, cm);
  }
  async createJob(job: V1Job) {
    this.calls.push(`createJob ${job.metadata?.name}`);
    const k = `${job.metadata?.namespace}/${job.metadata?.name}`;
    if (this.jobs.has(k)) return;
    this.jobs.set(k, structuredClone({ ...job, status: {}, metadata: { ...job.metadata, creationTimestamp: new Date() as never } }));
    if (this.cacheLag) this.hidden.add(k);
  }
  async getJob(ns: string, name: string) {
    this.calls.push(`getJob ${name}`);
    return this.jobs.get(`${ns}/${name}`) ?? null;
  }
  async deleteJob(ns: string, name: string) {
    this.calls.push(`deleteJob ${name}`);
    this.jobs.delete(`${ns}/${name}`);
  }
  async getSecretKeys(ns: string, name: string) {
    this.calls.push(`getSecretKeys ${name}`);
    return this.secrets.get(`${ns}/${name}`) ?? null;
  }
  async patchRunStatus(kind: Kind, ns: string, name: string, patch: Record<string, unknown>) {
    this.calls.push(`patchStatus ${name}`);
    const run = this.getRun(kind, ns, name);
    if (!run) throw Object.assign(new Error("not found"), { code: 404 });
    const key = `${kind}/${ns}/${name}`;
    const status = { ...(this.pendingStatus.get(key) ?? run.status ?? {}) } as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete status[k];
      else status[k] = v;
    }
    if (this.statusLag) this.pendingStatus.set(key, structuredClone(status));
    else run.status = structuredClone(status) as never;
  }
  async deleteRunChildren(ns: string, uid: string) {
    this.calls.push(`deleteRunChildren ${uid}`);
    for (const [k, j] of this.jobs) if (k.startsWith(`${ns}/`) && j.metadata?.labels?.[Labels.runUid] === uid) this.jobs.delete(k);
  }
  async createEvent(e: CoreV1Event) {
    this.calls.push(`createEvent ${e.reason}`);
    this.events.set(e.metadata.name ?? "", e);
  }

  // helpers to move Jobs along
  finishJob(name: string, ns: string, ok: boolean, message?: string, at = new Date()) {
    const job = this.jobs.get(`${ns}/${name}`);
    if (!job) throw new Error(`no job ${name}`);
    job.status = {
      startTime: at,
      ...(ok ? { completionTime: at, succeeded: 1 } : { failed: 1 }),
      conditions: [
        { type: ok ? "Complete" : "Failed", status: "True", lastTransitionTime: at, reason: ok ? undefined : "BackoffLimitExceeded" },
      ],
    } as never;
    this.pods.set(`${ns}/${name}`, [
      {
        metadata: { name: `${name}-x`, creationTimestamp: at },
        status: {
          phase: ok ? "Succeeded" : "Failed",
          containerStatuses: [
            {
              name: "c",
              ready: false,
              restartCount: 0,
              image: "",
              imageID: "",
              state: { terminated: { exitCode: ok ? 0 : 1, reason: ok ? "Completed" : "Error", message } },
            },
          ],
        },
      } as never,
    ]);
  }
  runPod(name: string, ns: string) {
    this.pods.set(`${ns}/${name}`, [{ metadata: { name: `${name}-x` }, status: { phase: "Running" } } as never]);
  }
}
