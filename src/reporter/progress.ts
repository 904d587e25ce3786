/**
 * Pure builders of what a Play shows on GitHub: one check run per stage run and one progress
 * comment per task PR. Both derive only from the decision's TaskView (no clock), so a restarted
 * controller computes byte-identical content and the exactly-once bookkeeping can compare it.
 */
import { createHash } from "node:crypto";
import type { CheckState, StageRunView, TaskView } from "../play/decide.js";
import { RERUN_ACTION, checkRunExternalId, progressMarker } from "../play/names.js";
import type { ReportTarget } from "../play/ports.js";

export interface CheckRunContent {
  name: string;
  externalId: string;
  status: "in_progress" | "completed";
  conclusion?: string;
  startedAt?: string;
  completedAt?: string;
  detailsUrl?: string;
  title: string;
  summary: string;
  actions: { label: string; description: string; identifier: string }[];
}

const STAGE_LABEL: Record<string, string> = {
  implementation: "implementation",
  remediation: "remediation",
  quality: "quality review",
  testing: "testing",
  merge: "merge",
  complete: "complete",
};

const RESULT_WORD: Record<CheckState, string> = {
  in_progress: "running",
  "completed:success": "passed",
  "completed:failure": "failed",
  "completed:cancelled": "cancelled",
};

export function logsUrl(publicUrl: string, run: string): string | undefined {
  return publicUrl ? `${publicUrl.replace(/\/+$/, "")}/api/v1/runs/CodeRun/${encodeURIComponent(run)}/logs` : undefined;
}

export function buildCheckRun(view: TaskView, run: StageRunView, target: ReportTarget): CheckRunContent {
  const [status, conclusion] =
    run.check === "in_progress" ? (["in_progress"] as const) : (["completed", run.check.slice("completed:".length)] as const);
  const label = STAGE_LABEL[run.stage] ?? run.stage;
  const logs = logsUrl(target.publicUrl, run.name);
  const counter =
    run.stage === "quality" || run.stage === "testing"
      ? `QA round ${run.index}`
      : run.stage === "remediation"
        ? `remediation ${run.index} of ${view.maxIterations}`
        : "first implementation";
  const summary = [
    `**Task ${view.taskId}**${view.pull ? ` · PR #${view.pull.number}` : ""} · ${label} by **${run.agent ?? "?"}** · ${counter}`,
    "",
    run.note,
    "",
    `Run: \`${run.name}\` (Play \`${target.namespace}/${target.play}\`)${logs ? ` · [logs](${logs})` : ""}`,
  ].join("\n");
  return {
    name: `Play: ${label}`,
    externalId: checkRunExternalId(target.namespace, target.play, run.name),
    status,
    ...(conclusion ? { conclusion } : {}),
    ...(run.startedAt ? { startedAt: run.startedAt } : {}),
    ...(conclusion && run.completedAt ? { completedAt: run.completedAt } : {}),
    ...(logs ? { detailsUrl: logs } : {}),
    title: `${label[0]!.toUpperCase()}${label.slice(1)} by ${run.agent ?? "?"}: ${RESULT_WORD[run.check]}`,
    summary,
    actions: [{ label: "Re-run stage", description: "Run this Play stage again", identifier: RERUN_ACTION }],
  };
}

const ROWS = [
  { key: "implementation", label: "Implementation", role: "implementation" },
  { key: "quality", label: "Quality review", role: "quality" },
  { key: "testing", label: "Testing", role: "testing" },
  { key: "merge", label: "Merge", role: undefined },
] as const;

const RUNNING_REASONS = new Set(["StageStarted", "AgentRunning", "WaitingForRun", "RemediationStarted"]);

function rowIndex(view: TaskView): number {
  if (view.merged) return ROWS.length;
  const stage = view.stage === "remediation" ? "implementation" : view.stage;
  const i = ROWS.findIndex((r) => r.key === stage);
  return i < 0 ? ROWS.length : i;
}

/** What the Play is doing now, in words that change only when the stage or outcome changes. */
function nowLine(view: TaskView): string {
  if (view.merged) return view.message;
  if (view.phase === "Failed" || view.phase === "Cancelled" || view.phase === "Succeeded") return `**${view.phase}:** ${view.message}`;
  if (RUNNING_REASONS.has(view.reason)) {
    const what =
      view.stage === "remediation" ? `remediation ${view.iteration} of ${view.maxIterations}` : (STAGE_LABEL[view.stage] ?? view.stage);
    return `${what[0]!.toUpperCase()}${what.slice(1)} by **${view.agent ?? "?"}** is in progress.`;
  }
  return view.message;
}

function cell(view: TaskView, i: number): string {
  const current = rowIndex(view);
  if (i < current) return "✅ done";
  if (i > current) return "⏳ pending";
  if (view.phase === "Failed") return "❌ stopped";
  if (view.phase === "Cancelled") return "⏹️ cancelled";
  if (RUNNING_REASONS.has(view.reason)) return view.stage === "remediation" ? `🔄 remediation ${view.iteration}` : "🔄 running";
  if (view.reason === "WaitingForMerge") return "⏳ waiting for merge";
  return "⚠️ needs attention";
}

/** The progress comment (Markdown). The first line is the marker a restarted controller finds it by. */
export function buildProgressComment(view: TaskView, target: ReportTarget): string {
  const agentOf = (role: string | undefined) => (role ? view.agents[role as keyof TaskView["agents"]] : "");
  const lines = [
    progressMarker(target.namespace, target.play, view.taskId),
    `### Play \`${target.play}\`: task ${view.taskId} (${view.taskIndex + 1} of ${view.taskCount})`,
    "",
    "| Stage | Agent | State |",
    "| --- | --- | --- |",
    ...ROWS.map((r, i) => `| ${r.label} | ${agentOf(r.role)} | ${cell(view, i)} |`),
    "",
    nowLine(view),
    "",
    `Remediation iterations: ${view.iteration} of ${view.maxIterations}.`,
  ];
  const finished = view.history.filter((h) => h.run);
  if (finished.length > 0) {
    lines.push("", "<details><summary>Stage runs</summary>", "", "| Run | Stage | Agent | Outcome |", "| --- | --- | --- | --- |");
    for (const h of finished) {
      const logs = logsUrl(target.publicUrl, h.run ?? "");
      lines.push(
        `| ${logs ? `[\`${h.run}\`](${logs})` : `\`${h.run}\``} | ${STAGE_LABEL[h.stage] ?? h.stage} | ${h.agent ?? ""} | ${h.outcome} |`,
      );
    }
    lines.push("", "</details>");
  }
  return lines.join("\n");
}

/** Short digest of a body, recorded in status instead of the body itself. */
export function digestOf(body: string): string {
  return createHash("sha256").update(body).digest("hex").slice(0, 16);
}
