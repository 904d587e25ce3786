/**
 * The Play controller: an informer for Plays, one for the CodeRuns Plays own (label
 * orchestrator.platform/play), a work queue and workers running the Play reconciler. Three
 * things wake a Play: its own or its runs' changes, a webhook delivery about its PR
 * (enqueueForDelivery), and the periodic resync (config play.resyncSeconds), which re-reads
 * GitHub for every active Play so a delivery that never arrived only delays work.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { Annotations, GROUP, Labels, Plurals, VERSION, type CodeRun, type Play } from "../api/index.js";
import type { Config } from "../config/schema.js";
import { WorkQueue } from "../controller/queue.js";
import type { KubeClients } from "../kube/clients.js";
import { statusCode } from "../kube/errors.js";
import { createInformer, type ResilientInformer } from "../kube/informer.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { deliveryRefs, playMatches } from "./deliveries.js";
import { playKey } from "./names.js";
import type { PlayGitHubReader, PlayKube, TaskReporter } from "./ports.js";
import { PlayReconciler } from "./reconciler.js";
import { stageOfRun } from "./runs.js";
import { compilePlaySettings } from "./settings.js";

export interface PlayControllerOptions {
  clients: KubeClients;
  kube: PlayKube;
  github: PlayGitHubReader;
  /** Writes check runs and progress comments (src/reporter). */
  reporter: TaskReporter;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
}

export class PlayController {
  readonly queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 300_000 });
  readonly reconciler: PlayReconciler;
  private readonly plays: ResilientInformer<Play & KubernetesObject>;
  private readonly runs: ResilientInformer<CodeRun & KubernetesObject>;
  private readonly ns: string;
  private readonly log: Logger;
  private workers: Promise<void>[] = [];
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private crashed: string | undefined;
  /** Why Plays are off (CRD or RBAC missing), or undefined. */
  private unavailable: string | undefined;
  /** Last seen relevant fields per object, to skip updates that change nothing a Play reads. */
  private readonly fingerprints = new Map<string, string>();

  constructor(private readonly opts: PlayControllerOptions) {
    const { clients, config } = opts;
    this.ns = config.namespace;
    this.log = opts.logger.child({ component: "play-controller" });
    this.plays = createInformer<Play & KubernetesObject>(
      clients.kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${this.ns}/${Plurals.Play}`,
      () => clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: this.ns, plural: Plurals.Play }) as never,
      undefined,
      this.log,
    );
    this.plays.on("add", (p) => {
      this.changed(`play/${p.metadata?.name}`, [p.metadata?.generation, p.metadata?.annotations, p.metadata?.deletionTimestamp]);
      this.enqueuePlay(p);
    });
    this.plays.on("update", (p) => {
      // The Play's own status writes need no new pass (each write would cost a GitHub re-read):
      // only spec (generation), annotations (re-run requests) and deletion wake it.
      if (this.changed(`play/${p.metadata?.name}`, [p.metadata?.generation, p.metadata?.annotations, p.metadata?.deletionTimestamp])) this.enqueuePlay(p);
    });
    this.plays.on("delete", (p) => this.fingerprints.delete(`play/${p.metadata?.name}`));
    const selector = Labels.play;
    this.runs = createInformer<CodeRun & KubernetesObject>(
      clients.kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${this.ns}/${Plurals.CodeRun}`,
      () => clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: this.ns, plural: Plurals.CodeRun, labelSelector: selector }) as never,
      selector,
      this.log,
    );
    this.runs.on("add", (r) => {
      this.changed(`run/${r.metadata?.name}`, [r.status?.phase, r.spec?.cancel]);
      this.enqueueOwner(r);
    });
    // Runs report progress often (JobCreated, AgentRunning, ...); a Play only cares about phase and cancel.
    this.runs.on("update", (r) => {
      if (this.changed(`run/${r.metadata?.name}`, [r.status?.phase, r.spec?.cancel])) this.enqueueOwner(r);
    });
    this.runs.on("delete", (r) => {
      this.fingerprints.delete(`run/${r.metadata?.name}`);
      this.enqueueOwner(r);
    });
    this.reconciler = new PlayReconciler({ kube: opts.kube, github: opts.github, reporter: opts.reporter, settings: compilePlaySettings(config), logger: opts.logger.child({ component: "play-reconciler" }), now: opts.now });
  }

  /** The Play informer, shared with the dashboard's live feed. */
  get playInformer(): ResilientInformer<Play & KubernetesObject> {
    return this.plays;
  }

  /**
   * Starts the informers, waits for their caches, then the workers and the resync timer. When
   * the Play CRD (or RBAC for it) is missing, as after a Helm upgrade (Helm never upgrades CRDs),
   * Plays stay off with a logged reason instead of keeping the whole process unready.
   */
  async start(): Promise<void> {
    this.running = true;
    const { clients } = this.opts;
    try {
      await clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: this.ns, plural: Plurals.Play, limit: 1 });
    } catch (e) {
      const code = statusCode(e);
      if (code === 404 || code === 403) {
        this.unavailable = code === 404
          ? "The Play CRD (plays.orchestrator.platform) is not installed: kubectl apply -f infra/charts/orchestrator/crds/platform-crds.yaml (Helm does not upgrade CRDs), then restart."
          : `The controller may not list Plays in ${this.ns} (403): upgrade the chart's RBAC (plays, plays/status), then restart.`;
        this.log.error({ namespace: this.ns }, `Plays disabled: ${this.unavailable}`);
        return;
      }
      // Anything else (API server unreachable, ...) is retried by the informers below.
    }
    await Promise.all([this.plays.start(), this.runs.start()]);
    const { workers, resyncSeconds } = this.opts.config.play;
    for (let i = 0; i < workers; i++) this.workers.push(this.worker(i));
    this.timers.push(setInterval(() => this.resync(), resyncSeconds * 1000));
    this.timers.push(setInterval(() => this.opts.metrics.queueDepth.set({ controller: "plays" }, this.queue.length), 5000));
    this.timers.forEach((t) => t.unref());
    this.log.info({ namespace: this.ns, workers, resyncSeconds }, "Started Play controller");
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timers.forEach(clearInterval);
    this.queue.shutDown();
    await Promise.all([this.plays.stop(), this.runs.stop()]);
    await Promise.all(this.workers);
  }

  isReady(): boolean {
    return this.running && (this.unavailable !== undefined || (this.plays.healthy && this.runs.healthy));
  }

  isAlive(): boolean {
    return this.running && this.crashed === undefined;
  }

  readinessDetail(): Record<string, boolean | string> {
    if (this.unavailable) return { plays: `disabled: ${this.unavailable}` };
    const d: Record<string, boolean | string> = {
      "informer:Play": this.plays.healthy || (this.plays.lastError ?? false),
      "informer:PlayCodeRun": this.runs.healthy || (this.runs.lastError ?? false),
    };
    if (this.crashed) d.playCrashed = this.crashed;
    return d;
  }

  /** Enqueues every Play that is not finished; each pass re-reads GitHub. */
  resync(): void {
    for (const p of this.plays.list(this.ns)) {
      const phase = p.status?.phase;
      if (phase !== "Succeeded" && phase !== "Cancelled" && !(phase === "Failed" && p.status?.observedGeneration === p.metadata.generation)) this.enqueuePlay(p);
    }
  }

  /**
   * Routes a verified webhook delivery: enqueues only the Plays it affects, and turns a check
   * run's "Re-run stage" (requested_action) into intent on the Play (an annotation the
   * reconciler handles once). Returns the keys enqueued.
   */
  readonly enqueueForDelivery = async (event: string, payload: unknown, delivery?: string): Promise<string[]> => {
    if (this.unavailable) return [];
    const refs = deliveryRefs(event, payload);
    if (refs.rerunOf && refs.rerunOf.namespace === this.ns) await this.requestRerun(refs.rerunOf.play, refs.rerunOf.run, delivery ?? `${Date.now()}`);
    const keys: string[] = [];
    for (const p of this.plays.list(this.ns)) {
      if (!playMatches(p, refs)) continue;
      const key = playKey(this.ns, p.metadata.name ?? "");
      this.queue.add(key);
      keys.push(key);
    }
    if (keys.length > 0) this.log.debug({ event, delivery, plays: keys }, "Enqueued Plays for webhook delivery");
    return keys;
  };

  private async requestRerun(play: string, run: string, delivery: string): Promise<void> {
    const cr = this.runs.get(run, this.ns);
    const stage = cr ? stageOfRun(cr) : undefined;
    if (!cr || !stage || cr.metadata.labels?.[Labels.play] === undefined) {
      this.log.info({ play, run }, "Ignored re-run request for an unknown stage run");
      return;
    }
    const value = `${cr.spec.taskId}/${stage.stage}/${delivery}`;
    await this.opts.kube.annotatePlay(this.ns, play, { [Annotations.rerun]: value });
    this.log.info({ play, run, stage: stage.stage, task: cr.spec.taskId }, "Recorded re-run request on Play");
  }

  private changed(key: string, fields: unknown[]): boolean {
    const fp = JSON.stringify(fields);
    if (this.fingerprints.get(key) === fp) return false;
    this.fingerprints.set(key, fp);
    return true;
  }

  private enqueuePlay(p: Play): void {
    if (p.metadata?.name) this.queue.add(playKey(this.ns, p.metadata.name));
  }

  private enqueueOwner(r: CodeRun): void {
    const owner = r.metadata?.ownerReferences?.find((o) => o.kind === "Play" && o.controller);
    if (owner) this.queue.add(playKey(r.metadata.namespace ?? this.ns, owner.name));
  }

  private async worker(id: number): Promise<void> {
    const log = this.log.child({ worker: id });
    try {
      for (;;) {
        const item = await this.queue.get();
        if (!item) return;
        const { key } = item;
        this.opts.metrics.queueWait.observe({ controller: "plays" }, item.waitedMs / 1000);
        const [namespace, name] = key.split("/") as [string, string];
        const t0 = performance.now();
        let outcome = "success";
        try {
          const res = await this.reconciler.reconcile(namespace, name);
          this.queue.forget(key);
          if (res.requeueAfterMs !== undefined) this.queue.addAfter(key, res.requeueAfterMs);
        } catch (e) {
          outcome = "error";
          const delay = this.queue.addRateLimited(key);
          log.warn({ play: key, err: (e as Error).message, retryInMs: delay }, "Play reconcile failed; will retry");
        } finally {
          this.opts.metrics.reconcileDuration.observe({ controller: "Play", result: outcome }, (performance.now() - t0) / 1000);
          this.queue.done(key);
        }
      }
    } catch (e) {
      this.crashed = (e as Error).stack ?? String(e);
      log.error({ err: this.crashed }, "Play worker crashed");
    }
  }
}
