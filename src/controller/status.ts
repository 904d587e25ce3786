/** Pure derivations of run status from the world (Job, Pods) and status patch computation. */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { AgentResult, Condition, RunStatus } from "../api/index.js";
import { canonicalJson } from "../util/json.js";

export type JobState = "active" | "running" | "succeeded" | "failed";

export interface JobObservation {
  state: JobState;
  startedAt?: string;
  finishedAt?: string;
  /** Machine-readable cause of a failure (Job condition reason or container reason). */
  reason?: string;
  message?: string;
  result?: AgentResult;
}

const AGENT_OUTCOMES = new Set(["succeeded", "failed", "budget-exceeded", "no-changes"]);

/** The agent runner writes AgentResult JSON; with FallbackToLogsOnError it may be a log tail. */
export function parseTerminationMessage(text: string | undefined): AgentResult | undefined {
  if (!text || !text.trim()) return undefined;
  try {
    const v = JSON.parse(text) as AgentResult;
    if (v && typeof v === "object" && AGENT_OUTCOMES.has(v.outcome)) return v;
  } catch {
    // not JSON: a log tail
  }
  return { outcome: "failed", message: text.trim().slice(-1024) };
}

function toIso(t: unknown): string | undefined {
  if (!t) return undefined;
  if (t instanceof Date) return t.toISOString();
  return String(t);
}

function jobCondition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

/** The agent container's terminated state in the Job's newest pod, if any. */
function terminated(pods: V1Pod[]) {
  const sorted = [...pods].sort((a, b) =>
    String(toIso(b.metadata?.creationTimestamp) ?? "").localeCompare(String(toIso(a.metadata?.creationTimestamp) ?? "")),
  );
  for (const p of sorted) {
    const cs = p.status?.containerStatuses?.[0];
    if (cs?.state?.terminated) return { pod: p, term: cs.state.terminated };
  }
  return undefined;
}

export function observeJob(job: V1Job, pods: V1Pod[]): JobObservation {
  const startedAt = toIso(job.status?.startTime) ?? toIso(job.metadata?.creationTimestamp);
  const t = terminated(pods);
  const result = parseTerminationMessage(t?.term.message);
  const complete = jobCondition(job, "Complete");
  if (complete) {
    return { state: "succeeded", startedAt, finishedAt: toIso(job.status?.completionTime) ?? toIso(complete.lastTransitionTime), result };
  }
  const failed = jobCondition(job, "Failed");
  if (failed) {
    const reason =
      result?.reason ?? (failed.reason === "BackoffLimitExceeded" ? (t?.term.reason ?? failed.reason) : failed.reason) ?? "JobFailed";
    const message =
      result?.message ??
      (t ? `container exited with code ${t.term.exitCode}${t.term.reason ? ` (${t.term.reason})` : ""}` : undefined) ??
      failed.message ??
      "the Job failed";
    return { state: "failed", startedAt, finishedAt: toIso(failed.lastTransitionTime), reason, message, result };
  }
  const running = pods.some((p) => p.status?.phase === "Running");
  return { state: running ? "running" : "active", startedAt };
}

/** Sets a condition, keeping lastTransitionTime when its status does not change. */
export function setCondition(conditions: Condition[], next: Omit<Condition, "lastTransitionTime">, now: string): Condition[] {
  const prev = conditions.find((c) => c.type === next.type);
  const cond: Condition = { ...next, lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now };
  if (cond.observedGeneration === undefined) delete cond.observedGeneration;
  const rest = conditions.filter((c) => c.type !== next.type);
  return [...rest, cond].sort((a, b) => a.type.localeCompare(b.type));
}

/**
 * A JSON merge patch turning `prev` into `next` (null deletes a field), or null when nothing
 * but lastUpdate would change, so an unchanged pass writes nothing.
 */
export function statusPatch(prev: RunStatus | undefined, next: RunStatus): Record<string, unknown> | null {
  const p = (prev ?? {}) as Record<string, unknown>;
  const n = next as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(p), ...Object.keys(n)])) {
    if (k === "lastUpdate") continue;
    if (n[k] === undefined) {
      if (p[k] !== undefined) patch[k] = null;
    } else if (canonicalJson(p[k]) !== canonicalJson(n[k])) {
      patch[k] = n[k];
    }
  }
  if (Object.keys(patch).length === 0) return null;
  if (n.lastUpdate) patch.lastUpdate = n.lastUpdate;
  return patch;
}

/** Exponential retry delay after the n-th failed attempt. */
export function retryDelaySeconds(failedAttempt: number, baseSeconds: number, maxSeconds: number): number {
  return Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, failedAttempt - 1));
}
