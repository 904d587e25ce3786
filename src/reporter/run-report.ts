/**
 * Pure builders of what a webhook-started run shows on GitHub: the tracking comment on the issue
 * or pull request (phase, attempt, turns, cost, logs link, then the PR link or the failure reason
 * with what to do), the check run on the PR head, and the short reply to a refused request. All
 * derive from the run alone (no clock), so a restarted reporter computes byte-identical content
 * and the exactly-once bookkeeping can compare digests.
 */
import { Annotations } from "../api/constants.js";
import type { CodeRun } from "../api/types.js";
import type { RepoRef } from "../play/ports.js";
import { logsUrl, type CheckRunContent } from "./progress.js";

/** What was written to GitHub for a run (the run's githubReport annotation, JSON). */
export interface RunReportRecord {
  reacted?: boolean;
  comment?: { id: number; digest: string };
  checkRun?: { id: number; headSha: string; state: string };
}

/** Where a webhook-started run reports: its repository, issue or PR, and the asking comment. */
export interface RunOrigin {
  repo: RepoRef;
  issue: number;
  commentId?: number;
  pullRequest: boolean;
}

export function parseRecord(run: CodeRun): RunReportRecord {
  const raw = run.metadata.annotations?.[Annotations.githubReport];
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as RunReportRecord;
    return v && typeof v === "object" ? v : {};
  } catch {
    return {};
  }
}

/** The run's origin on GitHub, or null for runs that did not come from a webhook delivery. */
export function originOf(run: CodeRun): RunOrigin | null {
  const a = run.metadata.annotations ?? {};
  const full = a[Annotations.githubRepository];
  const issue = Number(a[Annotations.githubIssue]);
  const [owner, repo] = (full ?? "").split("/");
  if (!owner || !repo || !Number.isSafeInteger(issue) || issue < 1) return null;
  const comment = Number(a[Annotations.githubComment]);
  return {
    repo: { owner, repo },
    issue,
    ...(Number.isSafeInteger(comment) && comment > 0 ? { commentId: comment } : {}),
    pullRequest: a[Annotations.githubPullRequest] === "true",
  };
}

/** The first line of the tracking comment: how a restarted reporter finds it. */
export function runMarker(namespace: string, name: string): string {
  return `<!-- orchestrator-run:${namespace}/${name} -->`;
}

export function refusalMarker(delivery: string): string {
  return `<!-- orchestrator-refusal:${delivery} -->`;
}

export function runCheckExternalId(namespace: string, name: string): string {
  return `run:${namespace}/${name}`;
}

const PHASE_ICON: Record<string, string> = { Pending: "⏳", Running: "🔄", Succeeded: "✅", Failed: "❌", Cancelled: "⏹️" };

function money(usd: number | undefined): string | undefined {
  return usd === undefined ? undefined : `$${usd.toFixed(4)}`;
}

/** What to do after a failure: retry through the API or the CLI, look at the logs. */
function nextSteps(run: CodeRun, logs: string | undefined): string {
  const name = run.metadata.name ?? "";
  const steps = [`comment again to start a new run, or retry this one: \`orchestrator runs retry coderun/${name}\``];
  if (logs) steps.push(`read the [logs](${logs})`);
  if (run.status?.reason === "SecretMissing") steps.unshift("an operator must create the missing Secret (see the message above)");
  return `**What to do:** ${steps.join("; ")}.`;
}

export function buildTrackingComment(run: CodeRun, publicUrl: string): string {
  const ns = run.metadata.namespace ?? "";
  const name = run.metadata.name ?? "";
  const s = run.status ?? {};
  const phase = s.phase ?? "Pending";
  const logs = s.jobName ? logsUrl(publicUrl, name) : undefined;
  const rows: [string, string | undefined][] = [
    ["Phase", `${PHASE_ICON[phase] ?? ""} ${phase}${s.reason ? ` (${s.reason})` : ""}`.trim()],
    ["Attempt", s.attempts !== undefined ? String(s.attempts) : undefined],
    ["Turns", s.result?.turns !== undefined ? String(s.result.turns) : undefined],
    ["Tools used", s.result?.toolCalls !== undefined ? String(s.result.toolCalls) : undefined],
    ["Cost", money(s.result?.costUsd)],
    ["Logs", logs ? `[${name}](${logs})` : undefined],
  ];
  const lines = [
    runMarker(ns, name),
    `👀 On it: task ${run.spec.taskId} of \`${run.spec.service}\` runs as CodeRun \`${name}\` (namespace \`${ns}\`, model \`${run.spec.model}\`).`,
    "",
    "| | |",
    "| --- | --- |",
    ...rows.filter((r): r is [string, string] => r[1] !== undefined).map(([k, v]) => `| ${k} | ${v} |`),
    "",
  ];
  if (s.pullRequestUrl) lines.push(`**Pull request:** ${s.pullRequestUrl}`);
  if (phase === "Succeeded" && !s.pullRequestUrl) lines.push(`**Done:** ${s.message ?? "the run finished"}; no pull request was opened.`);
  if (phase === "Failed") lines.push(`**Failed:** ${s.message ?? s.reason ?? "the run failed"}`, "", nextSteps(run, logs));
  if (phase === "Cancelled") lines.push("**Cancelled.** Comment again to start a new run.");
  if (phase === "Pending" || phase === "Running") lines.push("This comment is updated as the run goes.");
  return lines.join("\n").trimEnd();
}

/** "in_progress" or "completed:<conclusion>" (the comparable state, as for Play check runs). */
export function runCheckState(run: CodeRun): string {
  const phase = run.status?.phase ?? "Pending";
  if (phase === "Succeeded") return "completed:success";
  if (phase === "Failed") return "completed:failure";
  if (phase === "Cancelled") return "completed:cancelled";
  return "in_progress";
}

export function buildRunCheckRun(run: CodeRun, publicUrl: string): CheckRunContent {
  const ns = run.metadata.namespace ?? "";
  const name = run.metadata.name ?? "";
  const state = runCheckState(run);
  const conclusion = state.startsWith("completed:") ? state.slice("completed:".length) : undefined;
  const logs = logsUrl(publicUrl, name);
  const phase = run.status?.phase ?? "Pending";
  return {
    name: "orchestrator: agent run",
    externalId: runCheckExternalId(ns, name),
    status: conclusion ? "completed" : "in_progress",
    ...(conclusion ? { conclusion } : {}),
    ...(run.status?.startTime ? { startedAt: run.status.startTime } : {}),
    ...(conclusion && run.status?.completionTime ? { completedAt: run.status.completionTime } : {}),
    ...(logs ? { detailsUrl: logs } : {}),
    title: `Task ${run.spec.taskId}: ${phase}`,
    summary: buildTrackingComment(run, publicUrl).split("\n").slice(1).join("\n"),
    actions: [],
  };
}

/** A delivery the intake refused: who asked, where, and why. */
export interface Refusal {
  delivery: string;
  repo: RepoRef;
  issue: number;
  login: string;
  /** not-authorized: the webhook rule may not use the run's identity or repository (authorization.rules). */
  reason: "not-allowed" | "already-running" | "not-authorized" | "over-quota";
  /** The intake's explanation (e.g. the author association and what is allowed). */
  detail: string;
  /** The active run, for already-running. */
  run?: string;
}

export function buildRefusalReply(r: Refusal): string {
  const why =
    r.reason === "already-running"
      ? `this task already has an active run${r.run ? ` (CodeRun \`${r.run}\`)` : ""}. Wait for it to finish, or cancel it (\`orchestrator runs cancel coderun/${r.run ?? "NAME"}\`) and ask again.`
      : r.reason === "over-quota"
        ? `${r.detail}. Wait for one of them to finish, then ask again.`
        : r.reason === "not-authorized"
          ? `${r.detail.replace(/\.$/, "")}. This is the orchestrator's configuration, not your permission: ask its administrator.`
          : `${r.detail}. Ask a maintainer to run it, or to add you to the orchestrator's \`webhook.allowUsers\`.`;
  return [refusalMarker(r.delivery), `@${r.login} I did not start an agent: ${why}`].join("\n");
}
