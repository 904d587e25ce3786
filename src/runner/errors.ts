/** Errors of the agent runner. Each carries a stable `reason` that ends up in the run's status. */

export const Reasons = {
  /** run.json, CLAUDE.md, managed settings, ... missing or malformed in /task-files. */
  AgentFilesInvalid: "AgentFilesInvalid",
  /** Repository URL cannot be mapped to a GitHub owner/repo. */
  InvalidParameters: "InvalidParameters",
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

/** A failure with a stable reason and a message that says what to do next. */
export class RunnerError extends Error {
  override readonly name = "RunnerError";
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
