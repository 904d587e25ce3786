/**
 * The run controller: maps the events of the shared informers (CodeRun, DocsRun, their Jobs and
 * Pods) to run keys for the manager's queue, and serves the reconciler's cache reads. The
 * manager runs the workers; one bad object never stops the others (errors back off per key).
 */
import type { KubernetesObject, V1Job, V1PersistentVolumeClaim, V1Pod, V1Secret } from "@kubernetes/client-node";
import { Kinds, Labels, MANAGED_BY, Phases, isTerminalPhase, type AnyRun, type Kind } from "../api/index.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Manager, RegisteredController } from "./manager.js";
import { Resources, type ControllerCache, type ControllerKube, type SharedInformer } from "./ports.js";
import { RunReconciler, runKey, type RenderFiles } from "./reconciler.js";

export interface ControllerOptions {
  manager: Manager;
  kube: ControllerKube;
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
  private readonly registration: RegisteredController;
  private readonly runInformers = new Map<Kind, SharedInformer<AnyRun>>();
  private readonly jobInformer: SharedInformer<V1Job>;
  private readonly podInformer: SharedInformer<V1Pod>;
  /** Secrets and claims of the namespace, read from the cache (Secrets without their values). */
  private readonly secretInformer: SharedInformer<V1Secret>;
  private readonly pvcInformer: SharedInformer<V1PersistentVolumeClaim>;
  private readonly jobsByRun = new Map<string, Map<string, V1Job>>();
  private readonly podsByJob = new Map<string, Map<string, V1Pod>>();
  private readonly ns: string;

  constructor(private readonly opts: ControllerOptions) {
    const { manager, config, logger } = opts;
    this.ns = config.namespace;
    for (const kind of RUN_KINDS) {
      const inf = manager.informer<AnyRun>(RUN_RESOURCES[kind as keyof typeof RUN_RESOURCES]);
      inf.on("add", (r) => this.enqueueRun(r));
      inf.on("update", (r) => this.enqueueRun(r));
      inf.on("delete", (r) => this.onRunDeleted(r));
      this.runInformers.set(kind, inf);
    }
    const selector = `${Labels.managedBy}=${MANAGED_BY}`;
    this.jobInformer = manager.informer<V1Job>(Resources.Job, selector);
    this.podInformer = manager.informer<V1Pod>(Resources.Pod, selector);
    this.secretInformer = manager.informer<V1Secret>(Resources.Secret);
    this.pvcInformer = manager.informer<V1PersistentVolumeClaim>(Resources.PersistentVolumeClaim);
    this.jobInformer.on("add", (j) => this.onJob(j, false));
    this.jobInformer.on("update", (j) => this.onJob(j, false));
    this.jobInformer.on("delete", (j) => this.onJob(j, true));
    this.podInformer.on("add", (p) => this.onPod(p, false));
    this.podInformer.on("update", (p) => this.onPod(p, false));
    this.podInformer.on("delete", (p) => this.onPod(p, true));
    this.reconciler = new RunReconciler({
      kube: opts.kube,
      cache: this,
      config,
      renderFiles: opts.renderFiles,
      logger: logger.child({ component: "reconciler" }),
      metrics: opts.metrics,
    });
    const { workers, resyncSeconds } = config.controller;
    this.registration = manager.add({
      name: "runs",
      workers,
      resyncSeconds,
      backoff: { baseDelayMs: 200, maxDelayMs: 300_000 },
      informers: [
        ...this.runInformers.values(),
        this.jobInformer,
        this.podInformer,
        this.secretInformer,
        this.pvcInformer,
      ] as SharedInformer<unknown>[],
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

  // ---- ControllerCache -------------------------------------------------------------------
  getRun(kind: Kind, namespace: string, name: string): AnyRun | undefined {
    return this.runInformers.get(kind)?.get(name, namespace);
  }
  listRuns(kind: Kind, namespace: string): readonly AnyRun[] {
    return this.runInformers.get(kind)?.list(namespace) ?? [];
  }
  jobsOfRun(uid: string): V1Job[] {
    return [...(this.jobsByRun.get(uid)?.values() ?? [])];
  }
  podsOfJob(namespace: string, jobName: string): V1Pod[] {
    return [...(this.podsByJob.get(`${namespace}/${jobName}`)?.values() ?? [])];
  }
  getPvc(namespace: string, name: string): V1PersistentVolumeClaim | undefined {
    return this.pvcInformer.get(name, namespace);
  }
  mountableSecrets(namespace: string): ReadonlySet<string> {
    const labelled = this.secretInformer.list(namespace).filter((s) => s.metadata?.labels?.[Labels.mountable] === "true");
    return new Set(labelled.map((s) => s.metadata?.name ?? ""));
  }
  secretKeys(namespace: string, name: string): string[] | undefined {
    const s = this.secretInformer.get(name, namespace);
    return s ? Object.keys(s.data ?? {}) : undefined;
  }

  // ---- event handlers ----------------------------------------------------------------------
  private enqueueRun(r: AnyRun): void {
    if (!r.metadata?.name || !r.metadata.namespace) return;
    this.registration.enqueue(runKey(r.kind, r.metadata.namespace, r.metadata.name));
  }

  private onRunDeleted(r: AnyRun): void {
    // Its Jobs are garbage-collected through owner references; waiting runs of the service may start.
    if (r.kind === Kinds.CodeRun) this.enqueueServiceWaiters(r.metadata.namespace ?? "", r.spec.service);
  }

  private ownerKey(obj: KubernetesObject): { kind: Kind; name: string; namespace: string } | undefined {
    const owner = obj.metadata?.ownerReferences?.find((o) => o.controller && (o.kind === Kinds.CodeRun || o.kind === Kinds.DocsRun));
    if (!owner) return undefined;
    return { kind: owner.kind as Kind, name: owner.name, namespace: obj.metadata?.namespace ?? "" };
  }

  private onJob(job: V1Job, deleted: boolean): void {
    const uid = job.metadata?.labels?.[Labels.runUid] ?? "";
    const name = job.metadata?.name ?? "";
    if (deleted) {
      this.jobsByRun.get(uid)?.delete(name);
      if (this.jobsByRun.get(uid)?.size === 0) this.jobsByRun.delete(uid);
    } else {
      let m = this.jobsByRun.get(uid);
      if (!m) this.jobsByRun.set(uid, (m = new Map()));
      m.set(name, job);
      this.reconciler.observedJob(job);
    }
    const owner = this.ownerKey(job);
    if (owner) this.registration.enqueue(runKey(owner.kind, owner.namespace, owner.name));
    const finished = deleted || job.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    const service = job.metadata?.labels?.[Labels.service];
    if (finished && service && owner?.kind === Kinds.CodeRun) this.enqueueServiceWaiters(owner.namespace, service);
  }

  private onPod(pod: V1Pod, deleted: boolean): void {
    const jobName = pod.metadata?.labels?.["batch.kubernetes.io/job-name"] ?? pod.metadata?.labels?.["job-name"];
    if (!jobName) return;
    const key = `${pod.metadata?.namespace}/${jobName}`;
    if (deleted) {
      this.podsByJob.get(key)?.delete(pod.metadata?.name ?? "");
      if (this.podsByJob.get(key)?.size === 0) this.podsByJob.delete(key);
    } else {
      let m = this.podsByJob.get(key);
      if (!m) this.podsByJob.set(key, (m = new Map()));
      m.set(pod.metadata?.name ?? "", pod);
    }
    const job = this.jobInformer.get(jobName, pod.metadata?.namespace);
    const owner = job ? this.ownerKey(job) : undefined;
    if (owner) this.registration.enqueue(runKey(owner.kind, owner.namespace, owner.name));
  }

  /** A slot of the service may have freed: wake the runs waiting for it. */
  private enqueueServiceWaiters(namespace: string, service: string): void {
    for (const r of this.listRuns(Kinds.CodeRun, namespace)) {
      if (r.kind === Kinds.CodeRun && r.spec.service === service && !isTerminalPhase(r.status?.phase) && r.status?.phase !== Phases.Running)
        this.enqueueRun(r);
    }
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
  }
}
