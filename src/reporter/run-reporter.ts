/**
 * Reports webhook-started runs on GitHub: a 👀 reaction on the asking comment and a tracking
 * comment as soon as the run exists, the comment kept up to date as the run goes, a check run on
 * the PR head when the run works on a pull request, and a short reply to refused requests.
 *
 * Exactly once, also across restarts: the run's githubReport annotation records the reaction, the
 * comment id with the digest of the body last written, and the check run id with its last state.
 * A write happens only when the desired state differs from the record, and then only after
 * reading GitHub: the comment is found by id or by its marker line, the check run by external_id
 * on the PR head. If GitHub already shows the desired state (a previous process wrote it and
 * stopped before recording it), the record is adopted and nothing is written. A completed check
 * run is final. A refusal reply carries the delivery id in a marker and is written only when no
 * comment of the issue has that marker yet.
 */
import type { CodeRun } from "../api/types.js";
import type { Logger } from "../observability/logger.js";
import type { CheckRunInfo, CommentInfo, PullState, RepoRef } from "../play/ports.js";
import type { CheckRunContent } from "./progress.js";
import { digestOf } from "./progress.js";
import {
  buildRefusalReply,
  buildRunCheckRun,
  buildTrackingComment,
  refusalMarker,
  runCheckState,
  runMarker,
  type Refusal,
  type RunOrigin,
  type RunReportRecord,
} from "./run-report.js";

/** The GitHub calls the run reporter makes (one REST call each). */
export interface RunReporterGitHub {
  /** Idempotent on GitHub: the same reaction twice is one reaction. */
  addReaction(repo: RepoRef, target: { commentId?: number; issueNumber: number }, content: "eyes"): Promise<void>;
  listIssueComments(repo: RepoRef, issueNumber: number): Promise<CommentInfo[]>;
  createComment(repo: RepoRef, issueNumber: number, body: string): Promise<CommentInfo>;
  updateComment(repo: RepoRef, id: number, body: string): Promise<void>;
  getPull(repo: RepoRef, number: number): Promise<PullState | null>;
  listCheckRuns(repo: RepoRef, sha: string): Promise<CheckRunInfo[]>;
  getCheckRun(repo: RepoRef, id: number): Promise<CheckRunInfo | null>;
  createCheckRun(repo: RepoRef, headSha: string, content: CheckRunContent): Promise<CheckRunInfo>;
  updateCheckRun(repo: RepoRef, id: number, content: CheckRunContent): Promise<void>;
}

const normalize = (s: string) => s.replace(/\r\n/g, "\n").trim();
const stateOf = (c: Pick<CheckRunInfo, "status" | "conclusion">) =>
  c.status === "completed" ? `completed:${c.conclusion ?? "neutral"}` : c.status;

export interface RunReportInput {
  gh: RunReporterGitHub;
  run: CodeRun;
  origin: RunOrigin;
  record: RunReportRecord;
  publicUrl: string;
  log: Logger;
}

/** Converges GitHub to the run's state; returns the new record and the writes that failed. */
export async function reportRun(input: RunReportInput): Promise<{ record: RunReportRecord; errors: string[]; writes: number }> {
  const { gh, origin, log } = input;
  const record: RunReportRecord = { ...input.record };
  const errors: string[] = [];
  let writes = 0;
  const step = async (what: string, fn: () => Promise<number>) => {
    try {
      writes += await fn();
    } catch (e) {
      errors.push(`${what}: ${(e as Error).message}`);
    }
  };
  if (!record.reacted) {
    await step("reaction", async () => {
      await gh.addReaction(
        origin.repo,
        { issueNumber: origin.issue, ...(origin.commentId ? { commentId: origin.commentId } : {}) },
        "eyes",
      );
      record.reacted = true;
      return 1;
    });
  }
  await step("tracking comment", () => ensureComment(input, record));
  if (origin.pullRequest) await step("check run", () => ensureCheckRun(input, record));
  if (writes > 0) log.info({ writes, errors: errors.length }, "Reported run on GitHub");
  return { record, errors, writes };
}

async function ensureComment(input: RunReportInput, record: RunReportRecord): Promise<number> {
  const { gh, run, origin } = input;
  const body = buildTrackingComment(run, input.publicUrl);
  const digest = digestOf(body);
  if (record.comment?.digest === digest) return 0;
  const marker = runMarker(run.metadata.namespace ?? "", run.metadata.name ?? "");
  const comments = await gh.listIssueComments(origin.repo, origin.issue);
  const remote = comments.find((c) => c.id === record.comment?.id) ?? comments.find((c) => c.body.startsWith(marker));
  if (remote && normalize(remote.body) === normalize(body)) {
    record.comment = { id: remote.id, digest };
    return 0;
  }
  if (remote) {
    await gh.updateComment(origin.repo, remote.id, body);
    record.comment = { id: remote.id, digest };
    input.log.info({ comment: remote.id, phase: run.status?.phase ?? "Pending" }, "Updated tracking comment");
    return 1;
  }
  const created = await gh.createComment(origin.repo, origin.issue, body);
  record.comment = { id: created.id, digest };
  input.log.info({ comment: created.id, issue: origin.issue }, "Created tracking comment");
  return 1;
}

async function ensureCheckRun(input: RunReportInput, record: RunReportRecord): Promise<number> {
  const { gh, run, origin } = input;
  const want = runCheckState(run);
  const rec = record.checkRun;
  if (rec && (rec.state === want || rec.state.startsWith("completed"))) return 0;
  const content = buildRunCheckRun(run, input.publicUrl);
  let remote: CheckRunInfo | null | undefined;
  let headSha = rec?.headSha;
  if (rec) {
    remote = await gh.getCheckRun(origin.repo, rec.id);
  } else {
    const pull = await gh.getPull(origin.repo, origin.issue);
    if (!pull) return 0;
    headSha = pull.headSha;
    remote = (await gh.listCheckRuns(origin.repo, headSha)).find((c) => c.externalId === content.externalId);
  }
  if (remote) {
    const state = stateOf(remote);
    record.checkRun = { id: remote.id, headSha: remote.headSha, state };
    if (state === want || state.startsWith("completed")) return 0;
    await gh.updateCheckRun(origin.repo, remote.id, content);
    record.checkRun = { id: remote.id, headSha: remote.headSha, state: want };
    return 1;
  }
  const created = await gh.createCheckRun(origin.repo, headSha!, content);
  record.checkRun = { id: created.id, headSha: headSha!, state: want };
  input.log.info({ checkRun: created.id, sha: headSha, state: want }, "Created check run");
  return 1;
}

/** Writes the refusal reply unless a comment of the issue already carries its marker. */
export async function replyRefusal(gh: RunReporterGitHub, r: Refusal, log: Logger): Promise<boolean> {
  const marker = refusalMarker(r.delivery);
  const comments = await gh.listIssueComments(r.repo, r.issue);
  if (comments.some((c) => c.body.startsWith(marker))) return false;
  const created = await gh.createComment(r.repo, r.issue, buildRefusalReply(r));
  log.info({ comment: created.id, delivery: r.delivery, reason: r.reason }, "Replied to refused request");
  return true;
}
