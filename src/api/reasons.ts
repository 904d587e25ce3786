/**
 * Every `reason` the orchestrator writes into status, conditions and Events: the agent runner's
 * outcomes, the run controller's and the Play controller's. Defined once here; dashboards and
 * clients match on these strings.
 */

import { GitHubTools } from "./runner-contract.js";

/** Why the agent runner ended a run: its result's `reason`, copied into the run's status. */
export const Reasons = {
  /** run.json, CLAUDE.md, managed settings, ... missing or malformed in /task-files. */
  AgentFilesInvalid: "AgentFilesInvalid",
  /** A repository URL is not on the configured GitHub host (or uses another scheme): refused before any network call. */
  RepositoryNotAllowed: "RepositoryNotAllowed",
  /** The workspace holds a clone of another repository: refused, never moved aside. */
  WorkspaceInUse: "WorkspaceInUse",
  /** No usable credentials, or GitHub rejected them. */
  AuthFailed: "AuthFailed",
  /** git could not reach the target or docs repository. */
  RepoUnreachable: "RepoUnreachable",
  /** The base branch (or docs branch) does not exist on the remote. */
  BranchNotFound: "BranchNotFound",
  /** Merging the base branch into the work branch conflicts. */
  MergeConflict: "MergeConflict",
  /** task.md / prompt.md (or tasks.json for DocsRuns) missing. */
  TaskDocsMissing: "TaskDocsMissing",
  /** The workspace could not be prepared (git failure other than the above). */
  WorkspaceFailed: "WorkspaceFailed",
  /** Claude Code exited with an error or produced no result. */
  AgentFailed: "AgentFailed",
  /** The wall-clock budget ran out; work in progress was pushed. */
  BudgetExceeded: "BudgetExceeded",
  /** The model proxy metered the run's dollar budget (maxCostUsd); work in progress was pushed. */
  CostBudgetExceeded: "CostBudgetExceeded",
  /** The agent used all its turns; work in progress was pushed. */
  MaxTurnsReached: "MaxTurnsReached",
  /** The runner was asked to stop (SIGTERM: cancel or Job deadline). */
  Terminated: "Terminated",
  PushFailed: "PushFailed",
  PullRequestFailed: "PullRequestFailed",
  /** Success reasons. */
  PullRequestOpened: "PullRequestOpened",
  PullRequestUpdated: "PullRequestUpdated",
  NoChanges: "NoChanges",
  /** A bug or an unexpected failure in the runner itself. */
  InternalError: "InternalError",
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

/**
 * Runner outcomes another attempt cannot change: the request, the repositories or the workspace
 * must change first (the message says how). The run fails at once instead of retrying.
 */
export const FINAL_REASONS: ReadonlySet<string> = new Set<Reason>([
  Reasons.AgentFilesInvalid,
  Reasons.RepositoryNotAllowed,
  Reasons.WorkspaceInUse,
  Reasons.BranchNotFound,
  Reasons.TaskDocsMissing,
]);

/** Reasons the run controller writes (status.reason, conditions, Events). */
export const RunReasons = {
  JobCreated: "JobCreated",
  /** Another run of the same service holds the workspace; this one waits for a slot. */
  WaitingForSlot: "WaitingForSlot",
  /** Its requester has authorization.quotas.maxActiveRuns older unfinished runs; this one waits for one to finish. */
  WaitingForQuota: "WaitingForQuota",
  RetryBackoff: "RetryBackoff",
  Retrying: "Retrying",
  AttemptFailed: "AttemptFailed",
  /** The Job failed without a runner result. */
  JobFailed: "JobFailed",
  JobDeleted: "JobDeleted",
  Started: "Started",
  AgentRunning: "AgentRunning",
  Running: "Running",
  Finished: "Finished",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Cancelled: "Cancelled",
  /** Terminal configuration problems: recorded, not retried until the run changes. */
  SecretMissing: "SecretMissing",
  SecretKeyMissing: "SecretKeyMissing",
  TemplateError: "TemplateError",
  /** spec.cluster (or the service's default) names no registered execution cluster: terminal. */
  ClusterUnknown: "ClusterUnknown",
  /** The run's execution cluster does not answer; the run waits (nothing is created) until it does. */
  ClusterUnreachable: "ClusterUnreachable",
  ClusterReachable: "ClusterReachable",
  /** The execution cluster has controller.clusters.maxActiveRuns active runs; this one waits. */
  WaitingForCluster: "WaitingForCluster",
} as const;

/**
 * Event reasons of the GitHub actions the channel performed for the agent (done) or refused
 * (out of scope, or GitHub failed it), by tool; a tool not listed here gets `other`.
 */
export const GitHubActionReasons = {
  [GitHubTools.comment]: { done: "GitHubCommented", refused: "GitHubCommentRefused" },
  [GitHubTools.addLabel]: { done: "GitHubLabelAdded", refused: "GitHubLabelRefused" },
  [GitHubTools.removeLabel]: { done: "GitHubLabelRemoved", refused: "GitHubLabelRefused" },
  [GitHubTools.review]: { done: "GitHubReviewSubmitted", refused: "GitHubReviewRefused" },
  other: { done: "GitHubAction", refused: "GitHubActionRefused" },
} as const;

/** Reasons the Play controller writes. */
export const PlayReasons = {
  StageStarted: "StageStarted",
  AgentRunning: "AgentRunning",
  AgentNotFound: "AgentNotFound",
  InvalidRepository: "InvalidRepository",
  ImplementationFailed: "ImplementationFailed",
  NoChanges: "NoChanges",
  WaitingForPullRequest: "WaitingForPullRequest",
  PullRequestClosed: "PullRequestClosed",
  MaxRemediationIterations: "MaxRemediationIterations",
  RemediationStarted: "RemediationStarted",
  WaitingForRun: "WaitingForRun",
  StageNotPassed: "StageNotPassed",
  WaitingForMerge: "WaitingForMerge",
  TaskMerged: "TaskMerged",
  AllTasksMerged: "AllTasksMerged",
  Reported: "Reported",
  GitHubWriteFailed: "GitHubWriteFailed",
} as const;
