/**
 * Wires informers (CodeRun, DocsRun, their Jobs and Pods) to a work queue and N workers running
 * the run reconciler. One bad object never stops the others: errors back off per key.
 */
import type { KubernetesObject, V1Job, V1Pod } from "@kubernetes/client-node";
import { GROUP, Kinds, Labels, MANAGED_BY, Phases, Plurals, VERSION, isTerminalPhase, type AnyRun, type Kind } from "../api/index.js";
import type { Config } from "../config/schema.js";
import type { KubeClients } from "../kube/clients.js";
import { createInformer, type ResilientInformer } from "../kube/informer.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { ControllerCache, ControllerKube } from "./ports.js";
import { WorkQueue } from "./queue.js";
import { RunReconciler, runKey, type RenderFiles } from "./reconciler.js";

export interface ControllerOptions {
  clients: KubeClients;
  kube: ControllerKube;
  config: Config;
  renderFiles: RenderFiles;
  logger: Logger;
  metrics: Metrics;
}

const RUN_KINDS: Kind[] = [Kinds.CodeRun, Kinds.DocsRun];

export class Controller implements ControllerCache {
  readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 300_000 });
  readonly reconciler: RunReconciler;
  private readonly runInformers = new Map<Kind, ResilientInformer<AnyRun & KubernetesObject>>();
  private readonly jobInformer: ResilientInformer<V1Job>;
  private readonly podInformer: ResilientInformer<V1Pod>;
  private readonly jobsByRun = new Map<string, Map<string, V1Job>>();
  private readonly podsByJob = new Map<string, Map<string, V1Pod>>();
  private readonly ns: string;
  private workers: Promise<void>[] = [];
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private crashed: string | undefined;

  constructor(private readonly opts: ControllerOptions) {
    const { clients, config, logger } = opts;
    this.ns = config.namespace;
    const log = logger.child({ component: "controller" });
    for (const kind of RUN_KINDS) {
      const plural = Plurals[kind];
      const inf = createInformer<AnyRun & KubernetesObject>(
        clients.kc,
        `/apis/${GROUP}/${VERSION}/namespaces/${this.ns}/${plural}`,
        () => clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: this.ns, plural }) as never,
        undefined,
        log,
      );
      inf.on("add", (r) => this.enqueueRun(r));
      inf.on("update", (r) => this.enqueueRun(r));
      inf.on("delete", (r) => this.onRunDeleted(r));
      this.runInformers.set(kind, inf);
    }
    const selector = `${Labels.managedBy}=${MANAGED_BY}`;
    this.jobInformer = createInformer<V1Job>(clients.kc, `/apis/batch/v1/namespaces/${this.ns}/jobs`, () => clients.batch.listNamespacedJob({ namespace: this.ns, labelSelector: selector }), selector, log);
    this.podInformer = createInformer<V1Pod>(clients.kc, `/api/v1/namespaces/${this.ns}/pods`, () => clients.core.listNamespacedPod({ namespace: this.ns, labelSelector: selector }), selector, log);
    this.jobInformer.on("add", (j) => this.onJob(j, false));
    this.jobInformer.on("update", (j) => this.onJob(j, false));
    this.jobInformer.on("delete", (j) => this.onJob(j, true));
    this.podInformer.on("add", (p) => this.onPod(p, false));
    this.podInformer.on("update", (p) => this.onPod(p, false));
    this.podInformer.on("delete", (p) => this.onPod(p, true));
    this.reconciler = new RunReconciler({ kube: opts.kube, cache: this, config, renderFiles: opts.renderFiles, logger: logger.child({ component: "reconciler" }), metrics: opts.metrics });
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

  /** The informer of a run kind, shared with the dashboard's live feed. */
  runInformer(kind: Kind): ResilientInformer<AnyRun & KubernetesObject> | undefined {
    return this.runInformers.get(kind);
  }

  // ---- lifecycle ---------------------------------------------------------------------------
  /** Starts informers, waits until their caches are synced, then starts the workers. */
  async start(): Promise<void> {
    this.running = true;
    await Promise.all([this.jobInformer.start(), this.podInformer.start()]);
    await Promise.all([...this.runInformers.values()].map((i) => i.start()));
    const { workers, resyncSeconds } = this.opts.config.controller;
    for (let i = 0; i < workers; i++) this.workers.push(this.worker(i));
    this.timers.push(setInterval(() => this.resync(), resyncSeconds * 1000));
    this.timers.push(setInterval(() => this.updateGauges(), 5000));
    this.timers.forEach((t) => t.unref());
    this.opts.logger.info({ namespace: this.ns, workers }, "Started controller");
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timers.forEach(clearInterval);
    this.queue.shutDown();
    await Promise.all([...this.runInformers.values(), this.jobInformer, this.podInformer].map((i) => i.stop()));
    await Promise.all(this.workers);
  }

  /** Informers synced and watching. */
  isReady(): boolean {
    return this.running && [...this.runInformers.values(), this.jobInformer, this.podInformer].every((i) => i.healthy);
  }

  /** The workers are alive (for /health): a dead controller must not look healthy. */
  isAlive(): boolean {
    return this.running && this.crashed === undefined;
  }

  readinessDetail(): Record<string, boolean | string> {
    const d: Record<string, boolean | string> = { running: this.running };
    for (const [k, i] of this.runInformers) d[`informer:${k}`] = i.healthy || (i.lastError ?? false);
    d["informer:Job"] = this.jobInformer.healthy || (this.jobInformer.lastError ?? false);
    d["informer:Pod"] = this.podInformer.healthy || (this.podInformer.lastError ?? false);
    if (this.crashed) d.crashed = this.crashed;
    return d;
  }

  resync(): void {
    for (const kind of RUN_KINDS) for (const r of this.listRuns(kind, this.ns)) this.enqueueRun(r);
  }

  // ---- event handlers ----------------------------------------------------------------------
  private enqueueRun(r: AnyRun): void {
    if (!r.metadata?.name || !r.metadata.namespace) return;
    this.queue.add(runKey(r.kind, r.metadata.namespace, r.metadata.name));
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
    if (owner) this.queue.add(runKey(owner.kind, owner.namespace, owner.name));
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
    if (owner) this.queue.add(runKey(owner.kind, owner.namespace, owner.name));
  }

  /** A slot of the service may have freed: wake the runs waiting for it. */
  private enqueueServiceWaiters(namespace: string, service: string): void {
    for (const r of this.listRuns(Kinds.CodeRun, namespace)) {
      if (r.kind === Kinds.CodeRun && r.spec.service === service && !isTerminalPhase(r.status?.phase) && r.status?.phase !== Phases.Running) this.enqueueRun(r);
    }
  }

  private updateGauges(): void {
    const m = this.opts.metrics;
    m.queueDepth.set({ controller: "runs" }, this.queue.length);
    for (const kind of RUN_KINDS) {
      const counts = new Map<string, number>(Object.values(Phases).map((p) => [p, 0]));
      for (const r of this.listRuns(kind, this.ns)) {
        const p = r.status?.phase ?? Phases.Pending;
        counts.set(p, (counts.get(p) ?? 0) + 1);
      }
      for (const [phase, n] of counts) m.runsByPhase.set({ kind, phase }, n);
    }
  }

  private async worker(id: number): Promise<void> {
    const log = this.opts.logger.child({ component: "worker", worker: id });
    try {
      for (;;) {
        const item = await this.queue.get();
        if (!item) return;
        const { key, waitedMs } = item;
        this.opts.metrics.queueWait.observe({ controller: "runs" }, waitedMs / 1000);
        const [kind, namespace, name] = key.split("/") as [Kind, string, string];
        const t0 = performance.now();
        let outcome = "success";
        try {
          const res = await this.reconciler.reconcile(kind, namespace, name);
          this.queue.forget(key);
          if (res.requeueAfterMs !== undefined) this.queue.addAfter(key, res.requeueAfterMs);
        } catch (e) {
          outcome = "error";
          const delay = this.queue.addRateLimited(key);
          log.warn({ run: `${namespace}/${name}`, kind, err: (e as Error).message, retryInMs: delay }, "Reconcile failed; will retry");
        } finally {
          this.opts.metrics.reconcileDuration.observe({ controller: kind, result: outcome }, (performance.now() - t0) / 1000);
          this.queue.done(key);
        }
      }
    } catch (e) {
      // Unreachable by design; if it happens, /health reports it so Kubernetes restarts the pod.
      this.crashed = (e as Error).stack ?? String(e);
      log.error({ err: this.crashed }, "Worker crashed");
    }
  }
}
