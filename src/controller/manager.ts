/**
 * The controller manager (controller-runtime's Manager): one set of shared informers, and per
 * registered controller a work queue, workers and a resync timer; readiness, liveness and
 * graceful stop for all of them. A controller is a reconcile function plus the keys its
 * informers' events map to.
 *
 * Leader election (controller-runtime's): every replica starts the informers, so caches are warm
 * when it takes over; only the holder of the Lease runs the workers of controllers that need a
 * leader (everything that writes on behalf of runs). The others keep queueing keys, and resync
 * everything when they take over. A leader that cannot renew stops at once (onLeadershipLost:
 * the process exits and restarts as a follower, as controller-runtime does); stop() drains the
 * workers first and then releases the Lease, so the next replica takes over without waiting.
 */
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { InformerSource, Resource, SharedInformer } from "./ports.js";
import { WorkQueue } from "./queue.js";

/** The part of LeaderElector (./leader.ts) the manager uses. */
export interface Election {
  readonly identity: string;
  readonly isLeader: boolean;
  /** The holder as last observed ("" when none). */
  readonly holder: string;
  /** Resolves true once this replica leads; false when stopped first. */
  campaign(): Promise<boolean>;
  /** Resolves when this replica lost the Lease it held. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** What a controller registers. Keys are opaque to the manager. */
export interface ControllerSpec {
  /** Metrics label and log component ("runs", "plays"). */
  name: string;
  workers: number;
  resyncSeconds: number;
  backoff: { baseDelayMs: number; maxDelayMs: number };
  reconcile(key: string): Promise<ReconcileResult>;
  /** The keys a resync enqueues (every object that may need a pass). */
  resyncKeys(): string[];
  /** The informers this controller reads; started only if the controller is enabled. */
  informers: SharedInformer<unknown>[];
  /**
   * Checked once before start: a reason to keep this controller off (its CRD or RBAC is
   * missing), logged and shown in readiness instead of keeping the process unready forever.
   */
  preflight?(): Promise<string | undefined>;
  /** Called every 5 s (gauges). */
  tick?(): void;
  /** False: workers run on every replica (work for the replica's own requests). Default true. */
  needsLeader?: boolean;
}

/** A registered controller: its queue, for the event handlers to enqueue keys. */
export interface RegisteredController {
  readonly queue: WorkQueue;
  enqueue(key: string): void;
  /** Why the controller is off, if its preflight said so. */
  readonly disabled: string | undefined;
  /** Its workers run in this replica (it leads, or the controller needs no leader). */
  readonly active: boolean;
}

class Registration implements RegisteredController {
  readonly queue: WorkQueue;
  disabled: string | undefined;
  crashed: string | undefined;
  workers: Promise<void>[] = [];
  active = false;

  constructor(readonly spec: ControllerSpec) {
    this.queue = new WorkQueue(spec.backoff);
  }

  enqueue(key: string): void {
    if (!this.disabled) this.queue.add(key);
  }
}

export interface ManagerOptions {
  source: InformerSource;
  namespace: string;
  logger: Logger;
  metrics: Metrics;
  /** Without one this replica leads alone (one replica, tests). */
  election?: Election;
  /** A leader that lost its Lease must stop reconciling now; the default exits the process. */
  onLeadershipLost?: () => void;
}

export class Manager {
  private readonly informers = new Map<string, SharedInformer<unknown>>();
  /** Informers of execution clusters, by cluster: started when made (or at start), never gating readiness. */
  private readonly clusterInformers = new Map<string, Map<string, SharedInformer<unknown>>>();
  private readonly controllers: Registration[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private running = false;

  constructor(private readonly opts: ManagerOptions) {}

  /** The shared informer of a collection in the manager's namespace (one per resource + selector). */
  informer<T>(resource: Resource, labelSelector?: string): SharedInformer<T> {
    const key = `${resource}?${labelSelector ?? ""}`;
    let inf = this.informers.get(key);
    if (!inf) this.informers.set(key, (inf = this.opts.source.informer<unknown>(resource, this.opts.namespace, labelSelector)));
    return inf as SharedInformer<T>;
  }

  /**
   * The informer of a collection in an execution cluster (from that cluster's source), in the
   * manager's namespace. It starts at once when the manager runs and retries on its own while the
   * cluster is unreachable: one cluster down must not keep the controller unready.
   */
  clusterInformer<T>(cluster: string, source: InformerSource, resource: Resource, labelSelector?: string): SharedInformer<T> {
    let set = this.clusterInformers.get(cluster);
    if (!set) this.clusterInformers.set(cluster, (set = new Map()));
    const key = `${resource}?${labelSelector ?? ""}`;
    let inf = set.get(key);
    if (!inf) {
      set.set(key, (inf = source.informer<unknown>(resource, this.opts.namespace, labelSelector)));
      if (this.running) void inf.start();
    }
    return inf as SharedInformer<T>;
  }

  /** Stops and forgets a cluster's informers (its Secret was removed or replaced). */
  async dropCluster(cluster: string): Promise<void> {
    const set = this.clusterInformers.get(cluster);
    this.clusterInformers.delete(cluster);
    await Promise.all([...(set?.values() ?? [])].map((i) => i.stop()));
  }

  /** Whether a collection can be listed (for preflights). */
  probe(resource: Resource): ReturnType<InformerSource["probe"]> {
    return this.opts.source.probe(resource, this.opts.namespace);
  }

  add(spec: ControllerSpec): RegisteredController {
    const reg = new Registration(spec);
    this.controllers.push(reg);
    return reg;
  }

  /**
   * Runs preflights, starts the enabled controllers' informers and waits for their caches, then
   * the workers: at once for controllers that need no leader, the others once this replica leads.
   */
  async start(): Promise<void> {
    for (const set of this.clusterInformers.values()) for (const inf of set.values()) void inf.start();
    this.running = true;
    for (const reg of this.controllers) {
      reg.disabled = await reg.spec.preflight?.();
      if (reg.disabled) this.opts.logger.error({ controller: reg.spec.name }, `Controller disabled: ${reg.disabled}`);
    }
    const enabled = this.controllers.filter((r) => !r.disabled);
    await Promise.all([...new Set(enabled.flatMap((r) => r.spec.informers))].map((i) => i.start()));
    for (const reg of enabled.filter((r) => r.spec.needsLeader === false)) this.startController(reg);
    this.timers.push(setInterval(() => this.tick(), 5000));
    this.timers.forEach((t) => t.unref());
    const leaders = enabled.filter((r) => r.spec.needsLeader !== false);
    if (this.opts.election) void this.lead(this.opts.election, leaders);
    else for (const reg of leaders) this.startController(reg);
  }

  /** Campaigns for the Lease; once held, resyncs and starts the leader's controllers. */
  private async lead(election: Election, leaders: Registration[]): Promise<void> {
    const { logger, metrics } = this.opts;
    metrics.leader.set({ identity: election.identity }, 0);
    logger.info({ identity: election.identity }, "Waiting for the leader Lease");
    if (!(await election.campaign()) || !this.running) return;
    metrics.leader.set({ identity: election.identity }, 1);
    logger.info({ identity: election.identity }, "Acquired the leader Lease; starting controllers");
    // Keys queued as a follower are kept; a resync covers whatever the old leader left half done.
    for (const reg of leaders) {
      for (const key of reg.spec.resyncKeys()) reg.queue.add(key);
      this.startController(reg);
    }
    void election.lost.then(() => {
      if (!this.running) return;
      metrics.leader.set({ identity: election.identity }, 0);
      logger.fatal({ identity: election.identity, holder: election.holder }, "Lost the leader Lease; stopping reconciles");
      (this.opts.onLeadershipLost ?? (() => process.exit(1)))();
    });
  }

  /** Drains the workers (each finishes its key), then releases the Lease so the next leader starts now. */
  async stop(): Promise<void> {
    this.running = false;
    this.timers.forEach(clearInterval);
    for (const reg of this.controllers) reg.queue.shutDown();
    const t0 = performance.now();
    await Promise.all(this.controllers.flatMap((r) => r.workers));
    this.opts.logger.info({ ms: Math.round(performance.now() - t0) }, "Drained the controllers' workers");
    const election = this.opts.election;
    if (election) {
      const leading = election.isLeader;
      await election.release();
      this.opts.metrics.leader.set({ identity: election.identity }, 0);
      if (leading) this.opts.logger.info({ identity: election.identity }, "Released the leader Lease");
    }
    const t1 = performance.now();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await Promise.all([...this.clusterInformers.keys()].map((c) => this.dropCluster(c)));
    this.opts.logger.info({ ms: Math.round(performance.now() - t1) }, "Stopped the informers");
  }

  /** Every enabled controller's informers are synced and watching. */
  isReady(): boolean {
    return this.running && this.controllers.every((r) => r.disabled !== undefined || r.spec.informers.every((i) => i.healthy));
  }

  /** No worker has died (for /health): a dead controller must not look healthy. */
  isAlive(): boolean {
    return this.running && this.controllers.every((r) => r.crashed === undefined);
  }

  readinessDetail(): Record<string, boolean | string> {
    const d: Record<string, boolean | string> = { running: this.running };
    const e = this.opts.election;
    if (e) Object.assign(d, { identity: e.identity, leader: e.holder, leading: e.isLeader });
    for (const [key, i] of this.informers) d[`informer:${key.replace(/\?$/, "")}`] = i.healthy || (i.lastError ?? false);
    for (const [cluster, set] of this.clusterInformers)
      for (const [key, i] of set) d[`cluster:${cluster}:${key.replace(/\?.*$/, "")}`] = i.healthy || (i.lastError ?? false);
    for (const r of this.controllers) {
      if (r.disabled) d[`controller:${r.spec.name}`] = `disabled: ${r.disabled}`;
      if (r.crashed) d[`crashed:${r.spec.name}`] = r.crashed;
    }
    return d;
  }

  /** Enqueues every controller's resync keys now (the timer does this every resyncSeconds). */
  resync(): void {
    for (const reg of this.controllers) if (!reg.disabled) for (const key of reg.spec.resyncKeys()) reg.queue.add(key);
  }

  private startController(reg: Registration): void {
    const { spec } = reg;
    reg.active = true;
    for (let i = 0; i < spec.workers; i++) reg.workers.push(this.worker(reg, i));
    const resync = setInterval(() => {
      for (const key of spec.resyncKeys()) reg.queue.add(key);
    }, spec.resyncSeconds * 1000);
    resync.unref();
    this.timers.push(resync);
    this.opts.logger.info(
      { controller: spec.name, namespace: this.opts.namespace, workers: spec.workers, resyncSeconds: spec.resyncSeconds },
      "Started controller",
    );
  }

  private tick(): void {
    for (const reg of this.controllers) {
      this.opts.metrics.queueDepth.set({ controller: reg.spec.name }, reg.queue.length);
      reg.spec.tick?.();
    }
  }

  private async worker(reg: Registration, id: number): Promise<void> {
    const log = this.opts.logger.child({ component: reg.spec.name, worker: id });
    try {
      for (;;) {
        const item = await reg.queue.get();
        // Stopping: finish the key in hand only. What is still queued is left to the next leader,
        // which resyncs everything, so a rollout's handover waits for one reconcile, not a queue.
        if (!item || !this.running) return;
        await this.process(reg, item.key, item.waitedMs, log);
      }
    } catch (e) {
      // Unreachable by design; if it happens, /health reports it so Kubernetes restarts the pod.
      reg.crashed = (e as Error).stack ?? String(e);
      log.error({ err: reg.crashed }, "Worker crashed");
    }
  }

  /** One pass over one key: success forgets its backoff, failure retries it with backoff. */
  private async process(reg: Registration, key: string, waitedMs: number, log: Logger): Promise<void> {
    const { metrics } = this.opts;
    metrics.queueWait.observe({ controller: reg.spec.name }, waitedMs / 1000);
    const t0 = performance.now();
    let outcome = "success";
    try {
      const res = await reg.spec.reconcile(key);
      reg.queue.forget(key);
      if (res.requeueAfterMs !== undefined) reg.queue.addAfter(key, res.requeueAfterMs);
    } catch (e) {
      outcome = "error";
      const delay = reg.queue.addRateLimited(key);
      log.warn({ key, err: (e as Error).message, retryInMs: delay }, "Reconcile failed; will retry");
    } finally {
      metrics.reconcileDuration.observe({ controller: reg.spec.name, result: outcome }, (performance.now() - t0) / 1000);
      reg.queue.done(key);
    }
  }
}
