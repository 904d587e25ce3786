/** Pure derivations of run status from the world (Job, Pods) and status patch computation. */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { AgentResult, Condition, RunStatus } from "../api/index.js";
import { CHANNEL_CONTAINER } from "../api/runner-contract.js";
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
  /**
   * Who wrote `result`: the channel (its own termination message, out of the agent's reach) or the
   * agent container (older pods, or a channel that ended before writing). Only the channel's
   * record of GitHub actions becomes Events.
   */
  resultFrom?: "channel" | "agent";
}

const AGENT_OUTCOMES = new Set(["succeeded", "failed", "budget-exceeded", "no-changes"]);

/** AgentResult JSON, or undefined for anything else. */
function parseResultJson(text: string | undefined): AgentResult | undefined {
  try {
    const v = JSON.parse(text ?? "") as AgentResult;
    if (v && typeof v === "object" && AGENT_OUTCOMES.has(v.outcome)) return v;
  } catch {
    // not JSON
  }
  return undefined;
}

/** The agent runner writes AgentResult JSON; with FallbackToLogsOnError it may be a log tail. */
export function parseTerminationMessage(text: string | undefined): AgentResult | undefined {
  if (!text || !text.trim()) return undefined;
  return parseResultJson(text) ?? { outcome: "failed", message: text.trim().slice(-1024) };
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
    const cs = p.status?.containerStatuses?.find((s) => s.name !== CHANNEL_CONTAINER);
    if (cs?.state?.terminated) return { pod: p, term: cs.state.terminated };
  }
  return undefined;
}

/**
 * The channel's own record of the result, from its termination message (policy File: never a log
 * tail). The channel is a regular container; pods made before that have it as an init container.
 */
function channelResult(pod: V1Pod | undefined): AgentResult | undefined {
  const statuses = [...(pod?.status?.containerStatuses ?? []), ...(pod?.status?.initContainerStatuses ?? [])];
  return parseResultJson(statuses.find((s) => s.name === CHANNEL_CONTAINER)?.state?.terminated?.message);
}

/** The run's result: the channel's record when it wrote one, else what the agent container wrote. */
function observeResult(t: ReturnType<typeof terminated>): Pick<JobObservation, "result" | "resultFrom"> {
  const fromChannel = channelResult(t?.pod);
  if (fromChannel) return { result: fromChannel, resultFrom: "channel" };
  const fromAgent = parseTerminationMessage(t?.term.message);
  return fromAgent ? { result: fromAgent, resultFrom: "agent" } : {};
}

export function observeJob(job: V1Job, pods: V1Pod[]): JobObservation {
  const startedAt = toIso(job.status?.startTime) ?? toIso(job.metadata?.creationTimestamp);
  const t = terminated(pods);
  const { result, resultFrom } = observeResult(t);
  const complete = jobCondition(job, "Complete");
  if (complete) {
    return {
      state: "succeeded",
      startedAt,
      finishedAt: toIso(job.status?.completionTime) ?? toIso(complete.lastTransitionTime),
      result,
      resultFrom,
    };
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
    return { state: "failed", startedAt, finishedAt: toIso(failed.lastTransitionTime), reason, message, result, resultFrom };
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
