/**
 * TypeScript shape of the Play custom resource (orchestrator.platform/v1, short name `play`):
 * one task or an ordered list of tasks for one service and repository, each walked through
 * implementation → quality review → testing → merge by roster agents, every stage a CodeRun.
 * The CRD schema in infra/charts/orchestrator/crds/platform-crds.yaml is the source of truth;
 * tests/unit/crd-drift.test.ts keeps it and these types in sync. docs/play.md explains the flow.
 */
import type { Phase } from "./constants.js";
import type { Condition, ObjectMeta, ServiceTarget } from "./types.js";

/** Agent roles of a Play; each names the roster agent that runs that stage. */
export const PlayRoles = { implementation: "implementation", quality: "quality", testing: "testing" } as const;
export type PlayRole = (typeof PlayRoles)[keyof typeof PlayRoles];

/**
 * Where the current task stands. `remediation` is the implementation agent answering feedback;
 * `merge` waits for a human (or merge bot) to merge the approved PR; `complete` = all tasks merged.
 */
export const PlayStages = {
  implementation: "implementation",
  remediation: "remediation",
  quality: "quality",
  testing: "testing",
  merge: "merge",
  complete: "complete",
} as const;
export type PlayStage = (typeof PlayStages)[keyof typeof PlayStages];

/** Condition types of a Play (besides Ready). */
export const PlayConditionTypes = {
  Ready: "Ready",
  /** False while a GitHub write of the reporter fails (it is retried every pass). */
  Reported: "Reported",
} as const;

/** Roster agent names per role; missing roles use the config's `play` defaults. */
export interface PlayAgents {
  implementation?: string;
  quality?: string;
  testing?: string;
}

/** Model overrides per role (over the roster agent's model, over models.defaultCodeModel). */
export type PlayModels = PlayAgents;

/** Extra environment variables per role, over `env`. */
export interface PlayStageEnv {
  implementation?: Record<string, string>;
  quality?: Record<string, string>;
  testing?: Record<string, string>;
}

/** `repositoryUrl` is the repository the agents change; the task PRs are opened there. */
export interface PlaySpec extends ServiceTarget {
  /** Task ids, walked in order; each is merged before the next starts. */
  tasks: number[];
  agents?: PlayAgents;
  models?: PlayModels;
  /** Remediation runs per task before the Play stops (default: config play.maxRemediationIterations). */
  maxRemediationIterations?: number;
  /** Extra environment variables for every stage CodeRun. */
  env?: Record<string, string>;
  stageEnv?: PlayStageEnv;
  /** Set true to stop: in-flight stage runs are cancelled and the Play ends Cancelled. */
  cancel?: boolean;
  /** Execution cluster of every stage run (their spec.cluster); default: the service's, else home. */
  cluster?: string;
}

export interface PlayPullRequest {
  number: number;
  url: string;
  headSha: string;
}

/** One finished stage run, or a merged task. */
export interface PlayHistoryEntry {
  taskId: number;
  stage: PlayStage;
  /** Roster agent of the run. */
  agent?: string;
  /** The stage CodeRun. */
  run?: string;
  /** Remediation iteration (implementation) or QA round (quality/testing). */
  iteration?: number;
  /** Succeeded | Failed | Cancelled for runs; Merged for a task. */
  outcome: string;
  pullRequest?: number;
  headSha?: string;
  time: string;
  message?: string;
}

/** Per-task bookkeeping the decision needs and GitHub cannot tell: reset when a task completes. */
export interface PlayTaskState {
  /** QA round: quality/testing runs are named by it; a new round restarts QA. */
  round: number;
  /** Head SHA when the round started; new commits by the implementation agent after it restart QA. */
  qaBaseSha?: string;
  /** Remediation iteration the round started at; a finished remediation starts a new round. */
  qaIteration?: number;
  /** Testing approvals count only from reviews newer than this id (set by a testing re-run). */
  testingAfterReviewId?: number;
  /** Feedback ids already taken into a remediation (or older than the Play's first sight of the PR). */
  seen?: PlayFeedbackWatermarks;
  /** The last handled re-run request (annotation value). */
  rerun?: string;
}

export interface PlayFeedbackWatermarks {
  comment: number;
  review: number;
  reviewComment: number;
  checkRun: number;
}

/** A check run this Play created, and the state last written to GitHub. */
export interface PlayCheckRunRecord {
  /** The stage CodeRun's name (also the check run's external_id suffix). */
  key: string;
  id: number;
  headSha: string;
  /** "in_progress" or "completed:<conclusion>". */
  state: string;
}

/** What was reported to GitHub, so each state change is written exactly once (see src/reporter). */
export interface PlayReported {
  checkRuns?: PlayCheckRunRecord[];
  /** The progress comment of the current task's PR and a digest of the body last written. */
  comment?: { taskId: number; id: number; digest: string };
}

export interface PlayStatus {
  phase?: Phase;
  reason?: string;
  message?: string;
  lastUpdate?: string;
  startTime?: string;
  completionTime?: string;
  observedGeneration?: number;
  conditions?: Condition[];
  currentTaskIndex?: number;
  currentTask?: number;
  stage?: PlayStage;
  /** Roster agent of the current stage. */
  agent?: string;
  pullRequest?: PlayPullRequest;
  /** Remediation iterations of the current task. */
  iteration?: number;
  /** The stage CodeRun the Play is waiting on. */
  activeRun?: string;
  task?: PlayTaskState;
  history?: PlayHistoryEntry[];
  reported?: PlayReported;
}

export interface Play {
  apiVersion: "orchestrator.platform/v1";
  kind: "Play";
  metadata: ObjectMeta;
  spec: PlaySpec;
  status?: PlayStatus;
}
