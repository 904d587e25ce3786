/**
 * Remediation triggers, derived from the task PR's state on GitHub (pure): PR comments matching a
 * remediation pattern (including `/remediate`), changes-requested reviews, inline review comments
 * and failing check runs on the head commit. Only items newer than the task's watermarks count,
 * so each piece of feedback starts at most one remediation; a re-read after a restart finds the
 * same items and the same watermarks.
 */
import type { PlayFeedbackWatermarks } from "../api/index.js";
import { markUntrusted } from "../webhook/rules.js";
import { EXTERNAL_ID_PREFIX } from "./names.js";
import type { TaskSnapshot } from "./ports.js";
import type { PlaySettings } from "./settings.js";

export const FeedbackTypes = {
  comment: "comment",
  review: "review",
  reviewComment: "review_comment",
  checkRun: "check_run",
  rerun: "rerun",
} as const;
export type FeedbackType = (typeof FeedbackTypes)[keyof typeof FeedbackTypes];

export interface FeedbackItem {
  type: FeedbackType;
  id: number | string;
  author: string;
  body: string;
  association?: string;
  url?: string;
  /** Review comments: file and line. */
  where?: string;
}

export interface Feedback {
  items: FeedbackItem[];
  /** Watermarks after these items (max id seen per kind). */
  watermarks: PlayFeedbackWatermarks;
}

const FAILING_CONCLUSIONS = new Set(["failure", "action_required", "timed_out"]);

/** Watermarks at the Play's first sight of a PR: older comments and reviews are not feedback for it; failing checks on the head are. */
export function initialWatermarks(s: TaskSnapshot): PlayFeedbackWatermarks {
  const max = (ids: number[]) => ids.reduce((a, b) => Math.max(a, b), 0);
  return {
    comment: max(s.comments.map((c) => c.id)),
    review: max(s.reviews.map((r) => r.id)),
    reviewComment: max(s.reviewComments.map((c) => c.id)),
    checkRun: 0,
  };
}

export interface FeedbackContext {
  settings: PlaySettings;
  /** Lowercase logins: the implementation agent (never its own feedback) and the other roles (always trusted). */
  implementationLogin: string;
  trustedLogins: string[];
  /** Comments carrying this marker are the Play's own progress comment. */
  ownMarker: string;
}

/** May this author's text start an agent run? The other Play agents, allowlisted users, or write access. */
export function isAuthorizedAuthor(login: string, association: string | undefined, ctx: FeedbackContext): boolean {
  const l = login.toLowerCase();
  if (l === ctx.implementationLogin) return false;
  if (ctx.trustedLogins.includes(l)) return true;
  if (ctx.settings.allowUsers.some((u) => u.toLowerCase() === l)) return true;
  // Bots only through the allowlist (or as Play agents): their text is whatever their trigger said.
  if (l.endsWith("[bot]")) return false;
  return association !== undefined && ctx.settings.allowedAssociations.includes(association);
}

function matchesPattern(text: string, ctx: FeedbackContext): boolean {
  return ctx.settings.remediationPatterns.some((re) => re.test(text));
}

/** New feedback since `seen`, oldest first within each kind. */
export function collectFeedback(s: TaskSnapshot, seen: PlayFeedbackWatermarks, ctx: FeedbackContext): Feedback {
  const items: FeedbackItem[] = [];
  const wm: PlayFeedbackWatermarks = { ...seen };
  for (const c of [...s.comments].sort((a, b) => a.id - b.id)) {
    if (c.id <= seen.comment) continue;
    wm.comment = Math.max(wm.comment, c.id);
    if (c.body.includes(ctx.ownMarker) || !isAuthorizedAuthor(c.login, c.association, ctx) || !matchesPattern(c.body, ctx)) continue;
    items.push({ type: FeedbackTypes.comment, id: c.id, author: c.login, body: c.body, association: c.association, url: c.url });
  }
  for (const r of [...s.reviews].sort((a, b) => a.id - b.id)) {
    if (r.id <= seen.review) continue;
    wm.review = Math.max(wm.review, r.id);
    if (!isAuthorizedAuthor(r.login, r.association, ctx)) continue;
    const requested = r.state === "CHANGES_REQUESTED" || (r.state === "COMMENTED" && r.body !== "" && matchesPattern(r.body, ctx));
    if (!requested) continue;
    items.push({
      type: FeedbackTypes.review,
      id: r.id,
      author: r.login,
      body: r.body || "(changes requested, see the review comments)",
      association: r.association,
      url: r.url,
    });
  }
  for (const c of [...s.reviewComments].sort((a, b) => a.id - b.id)) {
    if (c.id <= seen.reviewComment) continue;
    wm.reviewComment = Math.max(wm.reviewComment, c.id);
    if (!isAuthorizedAuthor(c.login, c.association, ctx)) continue;
    items.push({
      type: FeedbackTypes.reviewComment,
      id: c.id,
      author: c.login,
      body: c.body,
      association: c.association,
      url: c.url,
      where: c.path ? `${c.path}${c.line ? `:${c.line}` : ""}` : undefined,
    });
  }
  const head = s.pull?.headSha;
  // The Play's own check runs are reports, not feedback.
  const checks = s.checkRuns
    .filter((cr) => cr.headSha === head && !(cr.externalId ?? "").startsWith(EXTERNAL_ID_PREFIX))
    .sort((a, b) => a.id - b.id);
  for (const cr of checks) {
    if (cr.id <= seen.checkRun) continue;
    // The watermark stops before the first check still running: it is looked at again when it
    // completes, and nothing after it is taken now (that would move the watermark past it).
    if (cr.status !== "completed") break;
    wm.checkRun = Math.max(wm.checkRun, cr.id);
    if (!FAILING_CONCLUSIONS.has(cr.conclusion ?? "")) continue;
    items.push({
      type: FeedbackTypes.checkRun,
      id: cr.id,
      author: cr.app ?? "checks",
      body: `Check run "${cr.name}" concluded ${cr.conclusion}${cr.title ? `: ${cr.title}` : ""}.`,
      url: cr.url,
    });
  }
  return { items, watermarks: wm };
}

/** The remediation prompt: what to do, then each feedback item fenced as untrusted text. */
export function buildRemediationPrompt(p: {
  items: FeedbackItem[];
  iteration: number;
  maxIterations: number;
  pullNumber: number;
  pullUrl: string;
  branch: string;
  maxBytes: number;
}): string {
  const lines = [
    `Remediation ${p.iteration} of ${p.maxIterations} for pull request #${p.pullNumber} (${p.pullUrl}).`,
    `Address the feedback below on the existing branch ${p.branch} and push to it; do not open a new pull request.`,
    "Reviewers will look at the PR again after your push.",
    "",
  ];
  for (const item of p.items) {
    const where = {
      comment: "in a comment on the pull request",
      review: "in a pull request review",
      review_comment: `in a review comment${item.where ? ` on ${item.where}` : ""}`,
      check_run: "as a failing check",
      rerun: "as a re-run request",
    }[item.type];
    lines.push(
      `### Feedback ${item.type} ${item.id}`,
      markUntrusted(item.body, { login: item.author, association: item.association, where, url: item.url }, p.maxBytes),
      "",
    );
  }
  return lines.join("\n");
}
