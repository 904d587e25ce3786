/**
 * The Play reconciler: one pass reads the Play and its CodeRuns (live, not from the cache, so a
 * pass always sees the previous pass's writes), reads GitHub's state of the current task's PR,
 * decides (pure, src/play/decide.ts), converges the runs, reports on GitHub, then writes status
 * with the Play's resourceVersion as a precondition. Every step is idempotent: deterministic run
 * names, AlreadyExists/NotFound as success, and the reporter's read-before-write bookkeeping.
 */
import { Labels, PlayConditionTypes, PlayReasons, type PlayStatus } from "../api/index.js";
import { setCondition } from "../controller/status.js";
import type { Logger } from "../observability/logger.js";
import { currentTask, decidePlay, needsGitHub, type PlayAction } from "./decide.js";
import { repoOf } from "./names.js";
import type { PlayGitHubReader, PlayKube, RepoRef, TaskReporter, TaskSnapshot } from "./ports.js";
import type { PlaySettings } from "./settings.js";
import { readTaskSnapshot } from "./snapshot.js";
import { computeMergePatch } from "../util/json.js";

export interface PlayReconcilerDeps {
  kube: PlayKube;
  github: PlayGitHubReader;
  reporter: TaskReporter;
  settings: PlaySettings;
  logger: Logger;
  now?: () => number;
}

export interface PlayReconcileResult {
  requeueAfterMs?: number;
}

export class PlayReconciler {
  private readonly now: () => number;

  constructor(private readonly deps: PlayReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async reconcile(namespace: string, name: string): Promise<PlayReconcileResult> {
    const { kube, github, settings } = this.deps;
    const play = await kube.getPlay(namespace, name);
    // Deleted: the stage CodeRuns carry owner references and are garbage-collected.
    if (!play || play.metadata.deletionTimestamp) return {};
    const log = this.deps.logger.child({ play: `${namespace}/${name}` });
    const runs = await kube.listPlayRuns(namespace, name);
    const task = currentTask(play);
    const repo = repoOf(play.spec.repositoryUrl);
    let snapshot: TaskSnapshot | null = null;
    if (task && repo && needsGitHub(play, runs))
      snapshot = await readTaskSnapshot(github, repo, task.taskId, settings.play.readyForQaLabel);
    const nowIso = new Date(this.now()).toISOString();
    const decision = decidePlay({ play, settings, runs, snapshot, now: nowIso });
    for (const action of decision.actions) await this.execute(namespace, repo, action, log);

    const prev = play.status ?? {};
    const next: PlayStatus = { ...decision.status };
    const view = decision.view;
    if (view && snapshot && repo) {
      const sameTask = view.taskId === prev.currentTask;
      const result = await this.deps.reporter.reportTask({
        repo,
        view,
        snapshot,
        reported: sameTask ? (prev.reported ?? {}) : {},
        target: { namespace, play: name, publicUrl: settings.play.publicUrl },
        knownShas: sameTask ? [prev.pullRequest?.headSha, prev.task?.qaBaseSha].filter((s): s is string => Boolean(s)) : [],
        log,
      });
      // The records belong to the reported task; a Play that moved on starts the next task empty.
      if (view.taskId === next.currentTask && !decision.advanced) next.reported = result.reported;
      next.conditions = setCondition(
        next.conditions ?? [],
        result.errors.length > 0
          ? {
              type: PlayConditionTypes.Reported,
              status: "False",
              reason: PlayReasons.GitHubWriteFailed,
              message: `Reporting to GitHub failed (retried on the next pass): ${result.errors.join("; ").slice(0, 2000)}`,
            }
          : {
              type: PlayConditionTypes.Reported,
              status: "True",
              reason: PlayReasons.Reported,
              message: "Check runs and the progress comment are up to date.",
            },
        nowIso,
      );
      if (result.errors.length > 0) log.warn({ errors: result.errors }, "Failed to report Play progress to GitHub");
    }
    next.lastUpdate = nowIso;
    const patch = computeMergePatch({ ...prev, lastUpdate: undefined }, { ...next, lastUpdate: undefined } as Record<string, unknown>);
    if (patch) {
      await kube.patchPlayStatus(namespace, name, play.metadata.resourceVersion, { ...patch, lastUpdate: nowIso });
      log.info(
        { phase: next.phase, task: next.currentTask, stage: next.stage, reason: next.reason, iteration: next.iteration },
        "Updated Play status",
      );
    }
    return decision.advanced ? { requeueAfterMs: 0 } : {};
  }

  private async execute(namespace: string, repo: RepoRef | null, action: PlayAction, log: Logger): Promise<void> {
    switch (action.type) {
      case "createRun":
        await this.deps.kube.createRun(action.run);
        log.info(
          { coderun: action.run.metadata.name, stage: action.run.metadata.labels?.[Labels.playStage], task: action.run.spec.taskId },
          "Created stage CodeRun",
        );
        return;
      case "cancelRun":
        await this.deps.kube.cancelRun(namespace, action.name);
        log.info({ coderun: action.name }, "Cancelled stage CodeRun");
        return;
      case "removeLabel":
        if (!repo) return;
        await this.deps.github.removeLabel(repo, action.pullNumber, action.label);
        log.info({ pull: action.pullNumber, label: action.label }, "Removed label from pull request");
        return;
    }
  }
}
