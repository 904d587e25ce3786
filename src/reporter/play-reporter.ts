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

export async function reportTask(input: ReportInput): Promise<ReportResult> {
  const { gh, repo, view, snapshot, target, log } = input;
  const errors: string[] = [];
  let writes = 0;
  const records: PlayCheckRunRecord[] = [...(input.reported.checkRuns ?? [])];
  let comment = input.reported.comment?.taskId === view.taskId ? input.reported.comment : undefined;
  const pull = view.pull;
  if (!pull) return { reported: input.reported, errors, writes };
  const headOnSnapshot = snapshot.pull?.headSha;
  const upsert = (rec: PlayCheckRunRecord) => {
    const i = records.findIndex((r) => r.key === rec.key);
    if (i >= 0) records[i] = rec;
    else records.push(rec);
  };
  const listOn = async (sha: string) => (sha === headOnSnapshot ? snapshot.checkRuns : gh.listCheckRuns(repo, sha));

  for (const run of view.runs) {
    const rec = records.find((r) => r.key === run.name);
    if (rec && (rec.state === run.check || rec.state.startsWith("completed"))) continue;
    const content = buildCheckRun(view, run, target);
    try {
      let remote: CheckRunInfo | null | undefined;
      if (rec) {
        remote =
          (rec.headSha === headOnSnapshot ? snapshot.checkRuns.find((c) => c.id === rec.id) : undefined) ??
          (await gh.getCheckRun(repo, rec.id));
      } else {
        for (const sha of [...new Set([pull.headSha, ...input.knownShas])]) {
          remote = (await listOn(sha)).find((c) => c.externalId === content.externalId);
          if (remote) break;
        }
      }
      if (remote) {
        const state = checkStateOf(remote);
        if (state === run.check || state.startsWith("completed")) {
          upsert({ key: run.name, id: remote.id, headSha: remote.headSha, state });
          continue;
        }
        await gh.updateCheckRun(repo, remote.id, content);
        writes++;
        upsert({ key: run.name, id: remote.id, headSha: remote.headSha, state: run.check });
        log.info({ checkRun: remote.id, run: run.name, state: run.check }, "Updated check run");
      } else {
        const created = await gh.createCheckRun(repo, pull.headSha, content);
        writes++;
        upsert({ key: run.name, id: created.id, headSha: pull.headSha, state: run.check });
        log.info({ checkRun: created.id, run: run.name, state: run.check, sha: pull.headSha }, "Created check run");
      }
    } catch (e) {
      errors.push(`check run for ${run.name}: ${(e as Error).message}`);
    }
  }

  const body = buildProgressComment(view, target);
  const digest = digestOf(body);
  if (comment?.digest !== digest) {
    try {
      const marker = progressMarker(target.namespace, target.play, view.taskId);
      const remote =
        (comment ? snapshot.comments.find((c) => c.id === comment!.id) : undefined) ??
        [...snapshot.comments].sort((a, b) => a.id - b.id).find((c) => c.body.includes(marker));
      if (remote && normalize(remote.body) === normalize(body)) {
        comment = { taskId: view.taskId, id: remote.id, digest };
      } else if (remote) {
        await gh.updateComment(repo, remote.id, body);
        writes++;
        comment = { taskId: view.taskId, id: remote.id, digest };
        log.info({ comment: remote.id, pull: pull.number }, "Updated progress comment");
      } else {
        const created = await gh.createComment(repo, pull.number, body);
        writes++;
        comment = { taskId: view.taskId, id: created.id, digest };
        log.info({ comment: created.id, pull: pull.number }, "Created progress comment");
      }
    } catch (e) {
      errors.push(`progress comment: ${(e as Error).message}`);
    }
  }
  return { reported: { checkRuns: records, ...(comment ? { comment } : {}) }, errors, writes };
}
