/**
 * Which Plays a GitHub webhook delivery affects (pure). A delivery only wakes Plays up: the
 * reconciler then reads GitHub itself, so a delivery that never arrives is caught up by the
 * periodic resync and a duplicate one costs one extra read.
 *
 * A Play is affected when the delivery is for its repository and names its current PR (number),
 * its current task (label task-N, branch …task-N…), a commit it is tracking (head SHA), or one
 * of its check runs (external_id).
 */
import { isActive, type Play } from "../api/index.js";
import { RERUN_ACTION, parseExternalId, repoKey, repoOf } from "./names.js";

/** Events that can concern a Play (the webhook receiver parses only these when no rule wants them). */
export const PLAY_DELIVERY_EVENTS: readonly string[] = [
  "pull_request",
  "pull_request_review",
  "pull_request_review_comment",
  "pull_request_review_thread",
  "issue_comment",
  "issues",
  "push",
  "check_run",
  "check_suite",
  "status",
  "workflow_run",
];

export interface DeliveryRefs {
  /** Lowercase owner/repo. */
  repo?: string;
  prNumbers: number[];
  taskIds: number[];
  shas: string[];
  externalIds: string[];
  /** check_run requested_action "rerun" on a Play's check run. */
  rerunOf?: { namespace: string; play: string; run: string };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) ? v : undefined);

const TASK_IN_TEXT = /(?:^|[^a-z0-9])task-([1-9][0-9]{0,9})(?![0-9])/i;

function taskFromLabels(labels: unknown): number[] {
  if (!Array.isArray(labels)) return [];
  return labels
    .map((l) => /^task-([1-9][0-9]{0,9})$/i.exec(str(obj(l)?.name) ?? str(l) ?? "")?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
}

/** References to PRs, tasks, commits and check runs in a delivery's payload. */
export function deliveryRefs(event: string, payload: unknown): DeliveryRefs {
  const p = obj(payload) ?? {};
  const repository = obj(p.repository);
  const refs: DeliveryRefs = { repo: str(repository?.full_name)?.toLowerCase(), prNumbers: [], taskIds: [], shas: [], externalIds: [] };
  const addPull = (pr: Json | undefined) => {
    if (!pr) return;
    const n = num(pr.number);
    if (n !== undefined) refs.prNumbers.push(n);
    refs.taskIds.push(...taskFromLabels(pr.labels));
    const head = obj(pr.head);
    if (str(head?.sha)) refs.shas.push(str(head?.sha)!);
    const branch = TASK_IN_TEXT.exec(str(head?.ref) ?? "")?.[1];
    if (branch) refs.taskIds.push(Number(branch));
  };
  addPull(obj(p.pull_request));
  const issue = obj(p.issue);
  if (issue) {
    const n = num(issue.number);
    if (n !== undefined) refs.prNumbers.push(n);
    refs.taskIds.push(...taskFromLabels(issue.labels));
  }
  if (event === "push") {
    const branch = TASK_IN_TEXT.exec(str(p.ref) ?? "")?.[1];
    if (branch) refs.taskIds.push(Number(branch));
    for (const k of ["after", "before"]) if (str(p[k])) refs.shas.push(str(p[k])!);
  }
  for (const key of ["check_run", "check_suite", "workflow_run"]) {
    const c = obj(p[key]);
    if (!c) continue;
    if (str(c.head_sha)) refs.shas.push(str(c.head_sha)!);
    if (str(c.external_id)) refs.externalIds.push(str(c.external_id)!);
    if (Array.isArray(c.pull_requests)) for (const pr of c.pull_requests) addPull(obj(pr));
  }
  if (event === "status" && str(p.sha)) refs.shas.push(str(p.sha)!);
  if (event === "check_run" && str(p.action) === "requested_action" && str(obj(p.requested_action)?.identifier) === RERUN_ACTION) {
    const ext = parseExternalId(str(obj(p.check_run)?.external_id));
    if (ext) refs.rerunOf = ext;
  }
  return refs;
}

export function playMatches(play: Play, refs: DeliveryRefs): boolean {
  // Only active Plays wait on GitHub; stopped ones (even if resumable by a spec change) are not woken.
  if (!isActive(play) || !refs.repo) return false;
  const repo = repoOf(play.spec.repositoryUrl);
  if (!repo || repoKey(repo) !== refs.repo) return false;
  const st = play.status ?? {};
  const task = st.currentTask ?? play.spec.tasks[0];
  if (st.pullRequest && refs.prNumbers.includes(st.pullRequest.number)) return true;
  if (task !== undefined && refs.taskIds.includes(task)) return true;
  const shas = [st.pullRequest?.headSha, st.task?.qaBaseSha].filter(Boolean);
  if (refs.shas.some((s) => shas.includes(s))) return true;
  return refs.externalIds.some((e) => {
    const ext = parseExternalId(e);
    return ext?.namespace === play.metadata.namespace && ext?.play === play.metadata.name;
  });
}
