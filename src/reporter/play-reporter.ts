/**
 * Reports a Play's task on GitHub: one check run per stage run on the PR head (in progress, then
 * completed with a conclusion) and one progress comment per task PR, each state written exactly
 * once, even across controller restarts.
 *
 * Exactly once: Play status `reported` records, per check run, its id and the state last written;
 * per task, the comment id and a digest of the body last written. A write happens only when the
 * desired state differs from the record, and then only after reading GitHub: a check run is
 * looked up by id (or, with no record, by external_id on the commits it may be on) and a comment
 * by id or by its marker. If GitHub already shows the desired state (a previous process wrote it
 * and died before recording it), the record is adopted and nothing is written. Records are
 * written to status after the GitHub write, in the same pass. A completed check run is final.
 */
import type { PlayCheckRunRecord, PlayReported } from "../api/index.js";
import { progressMarker } from "../play/names.js";
import type { CheckRunInfo, CommentInfo, RepoRef, TaskReport, TaskReporter } from "../play/ports.js";
import { buildCheckRun, buildProgressComment, digestOf, type CheckRunContent } from "./progress.js";

/** The GitHub calls the reporter makes (one REST call each). */
export interface ReporterGitHub {
  listCheckRuns(repo: RepoRef, sha: string): Promise<CheckRunInfo[]>;
  getCheckRun(repo: RepoRef, id: number): Promise<CheckRunInfo | null>;
  createCheckRun(repo: RepoRef, headSha: string, content: CheckRunContent): Promise<CheckRunInfo>;
  updateCheckRun(repo: RepoRef, id: number, content: CheckRunContent): Promise<void>;
  createComment(repo: RepoRef, issueNumber: number, body: string): Promise<CommentInfo>;
  updateComment(repo: RepoRef, id: number, body: string): Promise<void>;
}

/** "in_progress" / "queued" / "completed:<conclusion>": the comparable state of a check run. */
export function checkStateOf(c: Pick<CheckRunInfo, "status" | "conclusion">): string {
  return c.status === "completed" ? `completed:${c.conclusion ?? "neutral"}` : c.status;
}

const normalize = (s: string) => s.replace(/\r\n/g, "\n").trim();

export interface ReportInput extends TaskReport {
  gh: ReporterGitHub;
}

export interface ReportResult {
  reported: PlayReported;
  /** Writes that failed; they are tried again on the next pass. */
  errors: string[];
  writes: number;
}

/** The Play controller's TaskReporter port over one GitHub adapter. */
export function createTaskReporter(gh: ReporterGitHub): TaskReporter {
  return { reportTask: (report) => reportTask({ ...report, gh }) };
}

/** What a report pass changed so far. */
interface Tally {
  errors: string[];
  writes: number;
}

/** The check run a stage run already has on GitHub: the recorded one, or one found by its external id. */
async function findCheckRun(
  input: ReportInput,
  rec: PlayCheckRunRecord | undefined,
  externalId: string,
): Promise<CheckRunInfo | null | undefined> {
  const { gh, repo, snapshot } = input;
  const headOnSnapshot = snapshot.pull?.headSha;
  if (rec)
    return (
      (rec.headSha === headOnSnapshot ? snapshot.checkRuns.find((c) => c.id === rec.id) : undefined) ?? (await gh.getCheckRun(repo, rec.id))
    );
  for (const sha of [...new Set([input.view.pull!.headSha, ...input.knownShas])]) {
    const listed = sha === headOnSnapshot ? snapshot.checkRuns : await gh.listCheckRuns(repo, sha);
    const remote = listed.find((c) => c.externalId === externalId);
    if (remote) return remote;
  }
  return undefined;
}

/** Brings one stage run's check run to its state: found and current, updated, or created; returns its record. */
async function reportCheckRun(
  input: ReportInput,
  run: ReportInput["view"]["runs"][number],
  rec: PlayCheckRunRecord | undefined,
  tally: Tally,
): Promise<PlayCheckRunRecord> {
  const { gh, repo, view, target, log } = input;
  const content = buildCheckRun(view, run, target);
  const remote = await findCheckRun(input, rec, content.externalId);
  if (remote) {
    const state = checkStateOf(remote);
    if (state === run.check || state.startsWith("completed")) return { key: run.name, id: remote.id, headSha: remote.headSha, state };
    await gh.updateCheckRun(repo, remote.id, content);
    tally.writes++;
    log.info({ checkRun: remote.id, run: run.name, state: run.check }, "Updated check run");
    return { key: run.name, id: remote.id, headSha: remote.headSha, state: run.check };
  }
  const headSha = view.pull!.headSha;
  const created = await gh.createCheckRun(repo, headSha, content);
  tally.writes++;
  log.info({ checkRun: created.id, run: run.name, state: run.check, sha: headSha }, "Created check run");
  return { key: run.name, id: created.id, headSha, state: run.check };
}

/** The task's progress comment, updated only when its text changed; returns its record. */
async function reportComment(input: ReportInput, tally: Tally): Promise<PlayReported["comment"]> {
  const { gh, repo, view, snapshot, target, log } = input;
  const pull = view.pull!;
  const comment = input.reported.comment?.taskId === view.taskId ? input.reported.comment : undefined;
  const body = buildProgressComment(view, target);
  const digest = digestOf(body);
  if (comment?.digest === digest) return comment;
  try {
    const marker = progressMarker(target.namespace, target.play, view.taskId);
    const remote =
      (comment ? snapshot.comments.find((c) => c.id === comment.id) : undefined) ??
      [...snapshot.comments].sort((a, b) => a.id - b.id).find((c) => c.body.includes(marker));
    if (remote && normalize(remote.body) === normalize(body)) return { taskId: view.taskId, id: remote.id, digest };
    if (remote) {
      await gh.updateComment(repo, remote.id, body);
      tally.writes++;
      log.info({ comment: remote.id, pull: pull.number }, "Updated progress comment");
      return { taskId: view.taskId, id: remote.id, digest };
    }
    const created = await gh.createComment(repo, pull.number, body);
    tally.writes++;
    log.info({ comment: created.id, pull: pull.number }, "Created progress comment");
    return { taskId: view.taskId, id: created.id, digest };
  } catch (e) {
    tally.errors.push(`progress comment: ${(e as Error).message}`);
    return comment;
  }
}

/** Brings the task's check runs and progress comment on GitHub to what the view shows; failed writes are retried next pass. */
export async function reportTask(input: ReportInput): Promise<ReportResult> {
  const { view } = input;
  const tally: Tally = { errors: [], writes: 0 };
  if (!view.pull) return { reported: input.reported, ...tally };
  const records: PlayCheckRunRecord[] = [...(input.reported.checkRuns ?? [])];
  for (const run of view.runs) {
    const i = records.findIndex((r) => r.key === run.name);
    const rec = records[i];
    if (rec && (rec.state === run.check || rec.state.startsWith("completed"))) continue;
    try {
      const next = await reportCheckRun(input, run, rec, tally);
      if (i >= 0) records[i] = next;
      else records.push(next);
    } catch (e) {
      tally.errors.push(`check run for ${run.name}: ${(e as Error).message}`);
    }
  }
  const comment = await reportComment(input, tally);
  return { reported: { checkRuns: records, ...(comment ? { comment } : {}) }, ...tally };
}
