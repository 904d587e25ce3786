/**
 * What the Play controller needs from Kubernetes and GitHub, declared here by the consumer.
 * Adapters: src/kube/play-kube.ts (Kubernetes) and src/github/octokit.ts (GitHub); tests use
 * the real API server and the OpenAPI-checked GitHub test server.
 */
import type { CodeRun, Play, PlayReported } from "../api/index.js";
import type { Logger } from "../observability/logger.js";
import type { TaskView } from "./decide.js";

export interface PlayKube {
  /** A live read (not the cache): the reconciler must see its own last status write. */
  getPlay(namespace: string, name: string): Promise<Play | null>;
  /** A live list of the CodeRuns labelled with this Play's name. */
  listPlayRuns(namespace: string, play: string): Promise<CodeRun[]>;
  /** AlreadyExists is success (names are deterministic). */
  createRun(run: CodeRun): Promise<void>;
  /** Sets spec.cancel=true; the CodeRun controller stops the Job. NotFound is success. */
  cancelRun(namespace: string, name: string): Promise<void>;
  /** Merge-patches the status subresource, failing with 409 when the Play changed since `resourceVersion`. */
  patchPlayStatus(namespace: string, name: string, resourceVersion: string | undefined, patch: Record<string, unknown>): Promise<void>;
  /** Merge-patches metadata.annotations (intent from the webhook intake). */
  annotatePlay(namespace: string, name: string, annotations: Record<string, string>): Promise<void>;
}

export interface RepoRef {
  owner: string;
  repo: string;
}

export interface PullState {
  number: number;
  url: string;
  state: "open" | "closed";
  merged: boolean;
  mergedAt?: string;
  headSha: string;
  headRef: string;
  baseRef: string;
  labels: string[];
  author: string;
  title: string;
}

export interface CommitInfo {
  sha: string;
  /** GitHub logins linked to the commit's author / committer (null when unlinked). */
  author: string | null;
  committer: string | null;
}

export interface ReviewInfo {
  id: number;
  login: string;
  /** APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING */
  state: string;
  commitId: string | null;
  body: string;
  association?: string;
  url?: string;
}

export interface CommentInfo {
  id: number;
  login: string;
  body: string;
  association?: string;
  url?: string;
}

export interface ReviewCommentInfo extends CommentInfo {
  path?: string;
  line?: number | null;
}

export interface LabelEventInfo {
  id: number;
  event: "labeled" | "unlabeled";
  label: string;
  actor: string;
}

export interface CheckRunInfo {
  id: number;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  externalId: string | null;
  app?: string;
  url?: string;
  title?: string;
}

/** Reads of a task's pull request (one REST call each). */
export interface PlayGitHubReader {
  /** Numbers of pull requests (any state) carrying `label`. */
  findPullNumbers(repo: RepoRef, label: string): Promise<number[]>;
  getPull(repo: RepoRef, number: number): Promise<PullState | null>;
  listPullCommits(repo: RepoRef, number: number): Promise<CommitInfo[]>;
  listReviews(repo: RepoRef, number: number): Promise<ReviewInfo[]>;
  listReviewComments(repo: RepoRef, number: number): Promise<ReviewCommentInfo[]>;
  listIssueComments(repo: RepoRef, number: number): Promise<CommentInfo[]>;
  listLabelEvents(repo: RepoRef, number: number): Promise<LabelEventInfo[]>;
  listCheckRuns(repo: RepoRef, sha: string): Promise<CheckRunInfo[]>;
  /** The one write the decision makes itself: a restarted QA round takes the ready-for-qa label off. 404 is success. */
  removeLabel(repo: RepoRef, number: number, label: string): Promise<void>;
}

/** Everything the reconciler knows about the current task's PR, read at the start of a pass. */
export interface TaskSnapshot {
  pull: PullState | null;
  commits: CommitInfo[];
  reviews: ReviewInfo[];
  reviewComments: ReviewCommentInfo[];
  comments: CommentInfo[];
  labelEvents: LabelEventInfo[];
  /** Check runs on the PR's head commit. */
  checkRuns: CheckRunInfo[];
}

/** Where a Play's reports link to. */
export interface ReportTarget {
  namespace: string;
  play: string;
  /** External URL of the orchestrator (config play.publicUrl); empty = no log links. */
  publicUrl: string;
}

/** One pass's report of the current task: the decision's view and what was reported before. */
export interface TaskReport {
  repo: RepoRef;
  view: TaskView;
  snapshot: TaskSnapshot;
  reported: PlayReported;
  target: ReportTarget;
  /** Other commits a check run of this task may sit on (earlier heads known to status). */
  knownShas: string[];
  log: Logger;
}

/**
 * Writes a task's progress to GitHub (src/reporter). Injected, so the Play controller decides
 * and the reporter alone writes check runs and comments.
 */
export interface TaskReporter {
  reportTask(report: TaskReport): Promise<{ reported: PlayReported; errors: string[] }>;
}
