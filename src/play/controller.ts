/**
 * The Play controller: the Play reconciler registered with the manager, fed by the shared Play
 * and CodeRun informers (runs labelled orchestrator.platform/play wake their Play). Three
 * things wake a Play: its own or its runs' changes, a webhook delivery about its PR
 * (enqueueForDelivery; on a replica that does not lead, through an annotation on the Play that
 * the leader's informer sees), and the periodic resync (config play.resyncSeconds), which re-reads
 * GitHub for every active Play so a delivery that never arrived only delays work.
 */
import { Annotations, Labels, isActive, type CodeRun, type Play } from "../api/index.js";
import type { Config } from "../config/schema.js";
import type { Manager, RegisteredController } from "../controller/manager.js";
import { Resources, type SharedInformer } from "../controller/ports.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { deliveryRefs, playMatches } from "./deliveries.js";
import { playKey } from "./names.js";
import type { PlayGitHubReader, PlayKube, TaskReporter } from "./ports.js";
import { PlayReconciler } from "./reconciler.js";
import { stageOfRun } from "./runs.js";
import { compilePlaySettings } from "./settings.js";

export interface PlayControllerOptions {
  manager: Manager;
  kube: PlayKube;
  github: PlayGitHubReader;
  /** Writes check runs and progress comments (src/reporter). */
  reporter: TaskReporter;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
}

const isPlayRun = (r: CodeRun): boolean => r.metadata?.labels?.[Labels.play] !== undefined;

/** The Play controller, registered with the manager. */
export class PlayController {
  readonly reconciler: PlayReconciler;
  private readonly registration: RegisteredController;
  private readonly plays: SharedInformer<Play>;
  private readonly runs: SharedInformer<CodeRun>;
  private readonly ns: string;
  private readonly log: Logger;
  /** Last seen relevant fields per object, to skip updates that change nothing a Play reads. */
  private readonly fingerprints = new Map<string, string>();

  constructor(private readonly opts: PlayControllerOptions) {
    const { manager, config } = opts;
    this.ns = config.namespace;
    this.log = opts.logger.child({ component: "play-controller" });
    this.plays = manager.informer<Play>(Resources.Play);
    // The run controller's CodeRun informer, shared: only runs labelled with a Play matter here.
    this.runs = manager.informer<CodeRun>(Resources.CodeRun);
    this.watchPlays();
    this.watchRuns();
    this.reconciler = new PlayReconciler({
      kube: opts.kube,
      github: opts.github,
      reporter: opts.reporter,
      settings: compilePlaySettings(config),
      logger: opts.logger.child({ component: "play-reconciler" }),
      now: opts.now,
    });
    const { workers, resyncSeconds } = config.play;
    this.registration = manager.add({
      name: "plays",
      workers,
      resyncSeconds,
      backoff: { baseDelayMs: 500, maxDelayMs: 300_000 },
      informers: [this.plays, this.runs] as SharedInformer<unknown>[],
      reconcile: (key) => {
        const [namespace, name] = key.split("/") as [string, string];
        return this.reconciler.reconcile(namespace, name);
      },
      // Every Play that is not finished; each pass re-reads GitHub. A Failed Play whose spec
      // changed since is resumable.
      resyncKeys: () =>
        this.plays
          .list(this.ns)
          .filter((p) => isActive(p) || (p.status?.phase === "Failed" && p.status.observedGeneration !== p.metadata.generation))
          .map((p) => playKey(this.ns, p.metadata.name ?? "")),
      // When the Play CRD (or RBAC for it) is missing, as after a Helm upgrade (Helm never
      // upgrades CRDs), Plays stay off with the reason instead of keeping the process unready.
      preflight: async () => {
        const access = await manager.probe(Resources.Play);
        if (access === "missing")
          return "The Play CRD (plays.orchestrator.platform) is not installed: kubectl apply -f infra/charts/orchestrator/crds/platform-crds.yaml (Helm does not upgrade CRDs), then restart.";
        if (access === "forbidden")
          return `The controller may not list Plays in ${this.ns} (403): upgrade the chart's RBAC (plays, plays/status), then restart.`;
        return undefined;
      },
    });
  }

  private watchPlays(): void {
    const fields = (p: Play) => [p.metadata?.generation, p.metadata?.annotations, p.metadata?.deletionTimestamp];
    this.plays.on("add", (p) => {
      this.changed(`play/${p.metadata?.name}`, fields(p));
      this.enqueuePlay(p);
    });
    // The Play's own status writes need no new pass (each write would cost a GitHub re-read):
    // only spec (generation), annotations (re-run requests) and deletion wake it.
    this.plays.on("update", (p) => {
      if (this.changed(`play/${p.metadata?.name}`, fields(p))) this.enqueuePlay(p);
    });
    this.plays.on("delete", (p) => this.fingerprints.delete(`play/${p.metadata?.name}`));
  }

  /** Runs report progress often (JobCreated, AgentRunning, ...); a Play only cares about phase and cancel. */
  private watchRuns(): void {
    const fields = (r: CodeRun) => [r.status?.phase, r.spec?.cancel];
    this.runs.on("add", (r) => {
      if (!isPlayRun(r)) return;
      this.changed(`run/${r.metadata?.name}`, fields(r));
      this.enqueueOwner(r);
    });
    this.runs.on("update", (r) => {
      if (isPlayRun(r) && this.changed(`run/${r.metadata?.name}`, fields(r))) this.enqueueOwner(r);
    });
    this.runs.on("delete", (r) => {
      if (!isPlayRun(r)) return;
      this.fingerprints.delete(`run/${r.metadata?.name}`);
      this.enqueueOwner(r);
    });
  }

  /**
   * Routes a verified webhook delivery: enqueues only the Plays it affects, and turns a check
   * run's "Re-run stage" (requested_action) into intent on the Play (an annotation the
   * reconciler handles once). Returns the keys enqueued.
   */
  readonly enqueueForDelivery = async (event: string, payload: unknown, delivery?: string): Promise<string[]> => {
    if (this.registration.disabled) return [];
    const refs = deliveryRefs(event, payload);
    if (refs.rerunOf && refs.rerunOf.namespace === this.ns)
      await this.requestRerun(refs.rerunOf.play, refs.rerunOf.run, delivery ?? `${Date.now()}`);
    const keys: string[] = [];
    for (const p of this.plays.list(this.ns)) {
      if (!playMatches(p, refs)) continue;
      const key = playKey(this.ns, p.metadata.name ?? "");
      this.registration.enqueue(key);
      // Another replica reconciles: the wake-up must go through the cluster to reach it.
      if (!this.registration.active)
        await this.opts.kube.annotatePlay(this.ns, p.metadata.name ?? "", { [Annotations.wake]: delivery ?? "" });
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
    if (p.metadata?.name) this.registration.enqueue(playKey(this.ns, p.metadata.name));
  }

  private enqueueOwner(r: CodeRun): void {
    const owner = r.metadata?.ownerReferences?.find((o) => o.kind === "Play" && o.controller);
    if (owner) this.registration.enqueue(playKey(r.metadata.namespace ?? this.ns, owner.name));
  }
}
