/**
 * The run controller: maps the events of the shared informers (CodeRun, DocsRun, their Jobs and
 * Pods) to run keys for the manager's queue, and serves the reconciler's cache reads. The
 * manager runs the workers; one bad object never stops the others (errors back off per key).
 */
import type { KubernetesObject, V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { HOME_CLUSTER, Kinds, Labels, Phases, RunReasons, isTerminalPhase, type AnyRun, type Kind } from "../api/index.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { ClusterSet } from "./clusters.js";
import type { Manager, RegisteredController } from "./manager.js";
import {
  Resources,
  type ClusterConnector,
  type ClusterTarget,
  type ControllerCache,
  type ControllerKube,
  type SharedInformer,
} from "./ports.js";
import { RunReconciler, isFinished, runKey, type RenderFiles } from "./reconciler.js";
import { RunIndex } from "./run-index.js";

export interface ControllerOptions {
  manager: Manager;
  /** The home cluster's client: status, Events, and the workloads of runs placed at home. */
  kube: ControllerKube;
  /** Connects execution clusters registered by cluster Secrets; without it every run stays home. */
  clusters?: ClusterConnector;
  config: Config;
  renderFiles: RenderFiles;
  logger: Logger;
  metrics: Metrics;
}

const RUN_KINDS: Kind[] = [Kinds.CodeRun, Kinds.DocsRun];
const RUN_RESOURCES = { CodeRun: Resources.CodeRun, DocsRun: Resources.DocsRun } as const;

/** The CodeRun/DocsRun controller: the run reconciler, registered with the manager. */
export class Controller implements ControllerCache {
  readonly reconciler: RunReconciler;
  readonly clusters: ClusterSet;
  private readonly registration: RegisteredController;
  private readonly runInformers = new Map<Kind, SharedInformer<AnyRun>>();
  /** Jobs by run uid, each keyed `cluster/name`: a run's Jobs are in its execution cluster. */
  private readonly jobsByRun = new Map<string, Map<string, V1Job>>();
  /** Pods by `cluster/namespace/job`. */
  private readonly podsByJob = new Map<string, Map<string, V1Pod>>();
  /** Run keys by uid: Jobs in execution clusters have no owner reference to their run. */
  private readonly runByUid = new Map<string, string>();
  private readonly index = new RunIndex();
  private readonly ns: string;

  constructor(private readonly opts: ControllerOptions) {
    const { manager, config, logger } = opts;
    this.ns = config.namespace;
    for (const kind of RUN_KINDS) {
      const inf = manager.informer<AnyRun>(RUN_RESOURCES[kind as keyof typeof RUN_RESOURCES]);
      inf.on("add", (r) => this.onRun(r));
      inf.on("update", (r) => this.onRun(r));
      inf.on("delete", (r) => this.onRunDeleted(r));
      this.runInformers.set(kind, inf);
    }
    this.clusters = new ClusterSet({
      manager,
      homeKube: opts.kube,
      ...(opts.clusters ? { connector: opts.clusters } : {}),
      handlers: {
        onJob: (c, j, deleted) => this.onJob(c, j, deleted),
        onPod: (c, p, deleted) => this.onPod(c, p, deleted),
        onClusterChange: (c, reset) => this.onClusterChange(c, reset),
      },
      logger: logger.child({ component: "clusters" }),
      metrics: opts.metrics,
    });
    this.reconciler = new RunReconciler({
      kube: opts.kube,
      cache: this,
      config,
      renderFiles: opts.renderFiles,
      logger: logger.child({ component: "reconciler" }),
      metrics: opts.metrics,
    });
    this.registration = this.register();
  }

  private register(): RegisteredController {
    const { workers, resyncSeconds } = this.opts.config.controller;
    return this.opts.manager.add({
      name: "runs",
      workers,
      resyncSeconds,
      backoff: { baseDelayMs: 200, maxDelayMs: 300_000 },
      informers: [...this.runInformers.values(), ...this.clusters.homeInformers()] as SharedInformer<unknown>[],
      reconcile: (key) => {
        const [kind, namespace, name] = key.split("/") as [Kind, string, string];
        return this.reconciler.reconcile(kind, namespace, name);
      },
      resyncKeys: () =>
        RUN_KINDS.flatMap((kind) =>
          this.listRuns(kind, this.ns).map((r) => runKey(r.kind, r.metadata.namespace ?? this.ns, r.metadata.name ?? "")),
        ),
      tick: () => this.updateGauges(),
    });
  }

  /** Starts pinging the execution clusters (after the manager started). */
  startClusters(): void {
    this.clusters.startPinging();
  }

  stopClusters(): void {
    this.clusters.stop();
  }

  // ---- ControllerCache -------------------------------------------------------------------
  getRun(kind: Kind, namespace: string, name: string): AnyRun | undefined {
    return this.runInformers.get(kind)?.get(name, namespace);
  }
  listRuns(kind: Kind, namespace: string): readonly AnyRun[] {
    return this.runInformers.get(kind)?.list(namespace) ?? [];
  }
  runsOfRequester(namespace: string, requester: string): ReadonlyMap<string, AnyRun> {
    return this.index.ofRequester(namespace, requester);
  }
  codeRunsOfService(namespace: string, service: string): ReadonlyMap<string, AnyRun> {
    return this.index.codeRunsOfService(namespace, service);
  }
  jobsOfRun(uid: string): V1Job[] {
    return [...(this.jobsByRun.get(uid)?.values() ?? [])];
  }
  podsOfJob(cluster: string, namespace: string, jobName: string): V1Pod[] {
    return [...(this.podsByJob.get(`${cluster}/${namespace}/${jobName}`)?.values() ?? [])];
  }
  getPvc(cluster: string, namespace: string, name: string): V1PersistentVolumeClaim | undefined {
    return this.clusters.get(cluster)?.pvcs.get(name, namespace);
  }
  mountableSecrets(cluster: string, namespace: string): ReadonlySet<string> {
    const secrets = this.clusters.get(cluster)?.secrets.list(namespace) ?? [];
    const labelled = secrets.filter((s) => s.metadata?.labels?.[Labels.mountable] === "true");
    return new Set(labelled.map((s) => s.metadata?.name ?? ""));
  }
  secretKeys(cluster: string, namespace: string, name: string): string[] | undefined {
    const s = this.clusters.get(cluster)?.secrets.get(name, namespace);
    return s ? Object.keys(s.data ?? {}) : undefined;
  }
  cluster(name: string): ClusterTarget | undefined {
    return this.clusters.target(name);
  }
  clusterProblem(name: string): string | undefined {
    return this.clusters.problem(name);
  }
  activeRunsIn(cluster: string): ReadonlySet<string> {
    const jobs = this.clusters.get(cluster)?.jobs.list() ?? [];
    return new Set(jobs.filter((j) => !isFinished(j)).map((j) => j.metadata?.labels?.[Labels.runUid] ?? ""));
  }

  // ---- event handlers ----------------------------------------------------------------------
  private onRun(r: AnyRun): void {
    this.index.upsert(r);
    this.enqueueRun(r);
  }

  private enqueueRun(r: AnyRun): void {
    if (!r.metadata?.name || !r.metadata.namespace) return;
    const key = runKey(r.kind, r.metadata.namespace, r.metadata.name);
    if (r.metadata.uid) this.runByUid.set(r.metadata.uid, key);
    this.registration.enqueue(key);
  }

  private onRunDeleted(r: AnyRun): void {
    const uid = r.metadata.uid ?? "";
    this.index.remove(r);
    this.runByUid.delete(uid);
    // At home its children are garbage-collected through owner references; in an execution
    // cluster nothing points at the run, so the controller deletes them (best effort: a run
    // deleted while the controller is down leaves its Job to the Job's deadline and TTL).
    const placed = this.clusters.target(r.status?.cluster ?? HOME_CLUSTER);
    if (placed && placed.name !== HOME_CLUSTER)
      placed.kube.deleteRunChildren(r.metadata.namespace ?? "", uid).catch((e: unknown) => {
        this.opts.logger.warn(
          { run: r.metadata.name, cluster: placed.name, err: (e as Error).message },
          "Failed to delete a deleted run's Jobs",
        );
      });
    // Waiting runs of the service may start.
    if (r.kind === Kinds.CodeRun) this.enqueueServiceWaiters(r.metadata.namespace ?? "", r.spec.service);
  }

  /** The run a child belongs to: its owner reference at home, its run-uid label anywhere. */
  private ownerKey(obj: KubernetesObject): { kind: Kind; name: string; namespace: string } | undefined {
    const owner = obj.metadata?.ownerReferences?.find((o) => o.controller && (o.kind === Kinds.CodeRun || o.kind === Kinds.DocsRun));
    if (owner) return { kind: owner.kind as Kind, name: owner.name, namespace: obj.metadata?.namespace ?? "" };
    const key = this.runByUid.get(obj.metadata?.labels?.[Labels.runUid] ?? "");
    if (!key) return undefined;
    const [kind, namespace, name] = key.split("/") as [Kind, string, string];
    return { kind, namespace, name };
  }

  private onJob(cluster: string, job: V1Job, deleted: boolean): void {
    const uid = job.metadata?.labels?.[Labels.runUid] ?? "";
    const name = `${cluster}/${job.metadata?.name ?? ""}`;
    if (deleted) {
      this.jobsByRun.get(uid)?.delete(name);
      if (this.jobsByRun.get(uid)?.size === 0) this.jobsByRun.delete(uid);
    } else {
      let m = this.jobsByRun.get(uid);
      if (!m) this.jobsByRun.set(uid, (m = new Map()));
      m.set(name, job);
      this.reconciler.observedJob(cluster, job);
    }
    const owner = this.ownerKey(job);
    if (owner) this.registration.enqueue(runKey(owner.kind, owner.namespace, owner.name));
    if (!(deleted || isFinished(job))) return;
    const service = job.metadata?.labels?.[Labels.service];
    if (service && owner?.kind === Kinds.CodeRun) this.enqueueServiceWaiters(owner.namespace, service);
    this.enqueueWaiting(RunReasons.WaitingForCluster);
  }

  private onPod(cluster: string, pod: V1Pod, deleted: boolean): void {
    const jobName = pod.metadata?.labels?.["batch.kubernetes.io/job-name"] ?? pod.metadata?.labels?.["job-name"];
    if (!jobName) return;
    const key = `${cluster}/${pod.metadata?.namespace}/${jobName}`;
    if (deleted) {
      this.podsByJob.get(key)?.delete(pod.metadata?.name ?? "");
      if (this.podsByJob.get(key)?.size === 0) this.podsByJob.delete(key);
    } else {
      let m = this.podsByJob.get(key);
      if (!m) this.podsByJob.set(key, (m = new Map()));
      m.set(pod.metadata?.name ?? "", pod);
    }
    const job = this.clusters.get(cluster)?.jobs.get(jobName, pod.metadata?.namespace);
    const owner = job ? this.ownerKey(job) : undefined;
    if (owner) this.registration.enqueue(runKey(owner.kind, owner.namespace, owner.name));
  }

  /** A cluster came or went: forget its cached objects if it was replaced, and wake its runs. */
  private onClusterChange(cluster: string, reset: boolean): void {
    if (reset) {
      for (const [uid, jobs] of this.jobsByRun) {
        for (const k of jobs.keys()) if (k.startsWith(`${cluster}/`)) jobs.delete(k);
        if (jobs.size === 0) this.jobsByRun.delete(uid);
      }
      for (const k of this.podsByJob.keys()) if (k.startsWith(`${cluster}/`)) this.podsByJob.delete(k);
    }
    for (const kind of RUN_KINDS) for (const r of this.listRuns(kind, this.ns)) if (!isTerminalPhase(r.status?.phase)) this.enqueueRun(r);
  }

  /** A slot of the service may have freed: wake the runs waiting for it. */
  private enqueueServiceWaiters(namespace: string, service: string): void {
    for (const r of this.index.codeRunsOfService(namespace, service).values()) {
      if (!isTerminalPhase(r.status?.phase) && r.status?.phase !== Phases.Running) this.enqueueRun(r);
    }
  }

  /** Wakes the runs waiting for this reason (a cluster's slot may have freed). */
  private enqueueWaiting(reason: string): void {
    for (const kind of RUN_KINDS)
      for (const r of this.listRuns(kind, this.ns))
        if (r.status?.phase === Phases.Pending && r.status.reason === reason) this.enqueueRun(r);
  }

  private updateGauges(): void {
    const m = this.opts.metrics;
    for (const kind of RUN_KINDS) {
      const counts = new Map<string, number>(Object.values(Phases).map((p) => [p, 0]));
      for (const r of this.listRuns(kind, this.ns)) {
        const p = r.status?.phase ?? Phases.Pending;
        counts.set(p, (counts.get(p) ?? 0) + 1);
      }
      for (const [phase, n] of counts) m.runsByPhase.set({ kind, phase }, n);
    }
    for (const c of this.clusters.all()) m.clusterActiveRuns.set({ cluster: c.name }, this.activeRunsIn(c.name).size);
  }
}
