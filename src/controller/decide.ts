/**
 * The run reconciler's decisions, pure: from what a pass observed (the run, its attempts, the
 * current Job with its Pods, the clock) to the next status, the Events to emit and the one
 * action to take (stop the Jobs, or start an attempt). No I/O: tests/unit/run-decide.test.ts
 * tables them; src/controller/reconciler.ts reads the world and performs the decision.
 */
import {
  ConditionTypes,
  FINAL_REASONS,
  HOME_CLUSTER,
  GitHubActionReasons,
  Phases,
  RunReasons,
  isTerminalPhase,
  type AnyRun,
  type CodeRunStatus,
  type Phase,
  type RunStatus,
} from "../api/index.js";
import { configMapName } from "../manifests/index.js";
import { retryDelaySeconds, setCondition, type JobObservation } from "./status.js";

/** An Event about the run; its name derives from the run's uid, reason and attempt. */
export interface RunEvent {
  reason: string;
  message: string;
  type: "Normal" | "Warning";
  attempt: number;
  /** Tells apart Events of one reason and attempt (the GitHub actions of an attempt). */
  key?: string;
}

/** What one pass observed. */
export interface RunWorld {
  run: AnyRun;
  /** The highest attempt known (status or a Job's label). */
  attempts: number;
  /** The current attempt's Job, observed with its Pods; undefined when there is none. */
  current?: { name: string; obs: JobObservation };
  now: number;
  maxRetries: number;
  backoff: { baseSeconds: number; maxSeconds: number };
}

export interface RunDecision {
  next: RunStatus;
  events: RunEvent[];
  /** Delete the run's unfinished Jobs (cancel). */
  stopJobs: boolean;
  /** Start this attempt (PVC, ConfigMap, Job); its outcome goes through decideStarted(). */
  start?: number;
  requeueAfterMs?: number;
}

/** How starting an attempt went. */
export type StartOutcome = { jobName: string } | { waiting: string; reason?: string } | { problem: { reason: string; message: string } };

/** Re-check interval of a run waiting for a slot of its service. */
export const SLOT_RECHECK_MS = 30_000;
/** Re-check interval of a run whose execution cluster does not answer. */
export const CLUSTER_RECHECK_MS = 5_000;

/** The run's cluster as one pass saw it. */
export interface ClusterState {
  name: string;
  reachable: boolean;
  message: string;
}

type Failure = { reason: string; message: string; finishedAt?: string };

function jobCreatedMessage(job: string, attempt: number): string {
  return `Job ${job} created; waiting for its pod (attempt ${attempt}).`;
}

/** The status of a run that has ended. */
function finished(w: RunWorld, next: RunStatus, phase: Phase, reason: string, message: string, extra: Partial<RunStatus> = {}): RunStatus {
  const nowIso = new Date(w.now).toISOString();
  const out: RunStatus = {
    ...next,
    ...extra,
    phase,
    reason,
    message,
    completionTime: extra.completionTime ?? next.completionTime ?? nowIso,
    nextRetryTime: undefined,
  };
  out.conditions = setCondition(
    out.conditions ?? [],
    {
      type: ConditionTypes.Ready,
      status: phase === Phases.Succeeded ? "True" : "False",
      reason,
      message,
      observedGeneration: w.run.metadata.generation,
    },
    nowIso,
  );
  out.conditions = setCondition(
    out.conditions,
    { type: ConditionTypes.Waiting, status: "False", reason: RunReasons.Finished, message: "The run has finished." },
    nowIso,
  );
  if (phase === Phases.Succeeded) out.workCompleted = true;
  return out;
}

/**
 * One Event per GitHub action of the attempt (the last ones the result holds), from the channel's
 * own record only: what the agent container wrote could name actions that never happened.
 */
function githubActionEvents(run: AnyRun, obs: JobObservation, attempt: number): RunEvent[] {
  if (obs.resultFrom !== "channel") return [];
  return (obs.result?.githubActions ?? []).map((a, i) => {
    const reasons = GitHubActionReasons[a.tool as keyof typeof GitHubActionReasons] ?? GitHubActionReasons.other;
    const where = a.url ? ` ${a.url}` : ` (${run.spec.repositoryUrl})`;
    return a.refused
      ? { reason: reasons.refused, message: `Refused ${a.tool} at ${a.at}: ${a.detail}`, type: "Warning", attempt, key: `${i}/${a.at}` }
      : { reason: reasons.done, message: `${a.detail}${where} (${a.tool} at ${a.at})`, type: "Normal", attempt, key: `${i}/${a.at}` };
  });
}

/** The decision for a run that is neither finished nor cancelled. */
export function decideRun(w: RunWorld): RunDecision {
  const prev = w.run.status ?? {};
  const next: RunStatus = { ...prev, observedGeneration: w.run.metadata.generation, ...(w.attempts > 0 ? { attempts: w.attempts } : {}) };
  if (isTerminalPhase(prev.phase)) {
    // A finished run stays finished, even when its Job is later deleted (TTL or by hand).
    return { next, events: [], stopJobs: prev.phase === Phases.Cancelled };
  }
  if (w.run.spec.cancel) {
    return {
      next: finished(w, next, Phases.Cancelled, RunReasons.Cancelled, "The run was cancelled (spec.cancel); its Job was stopped."),
      events: [{ reason: RunReasons.Cancelled, message: "Run cancelled; Job stopped", type: "Normal", attempt: w.attempts }],
      stopJobs: true,
    };
  }
  if (w.current) return decideCurrent(w, next, w.current);
  if (w.attempts === 0) return { next, events: [], stopJobs: false, start: 1 };
  // The current attempt's Job is gone: still in retry backoff, or deleted before it finished.
  const failure: Failure = prev.nextRetryTime
    ? { reason: prev.reason ?? RunReasons.JobFailed, message: prev.message ?? "" }
    : { reason: RunReasons.JobDeleted, message: `The Job of attempt ${w.attempts} was deleted before it finished.` };
  return decideFailure(w, next, failure);
}

/** The current attempt's Job decides: succeeded, failed (retry or fail), or still running. */
function decideCurrent(w: RunWorld, base: RunStatus, current: { name: string; obs: JobObservation }): RunDecision {
  const { obs } = current;
  const nowIso = new Date(w.now).toISOString();
  const next: RunStatus = { ...base, jobName: current.name, startTime: base.startTime ?? obs.startedAt };
  if (obs.state === "succeeded") {
    const r = obs.result;
    return {
      next: finished(
        w,
        next,
        Phases.Succeeded,
        RunReasons.Succeeded,
        r?.outcome === "no-changes" ? "The agent finished without changes." : "The agent finished and delivered its work.",
        {
          completionTime: obs.finishedAt ?? nowIso,
          ...(r ? { result: r } : {}),
          ...(r?.pullRequestUrl ? { pullRequestUrl: r.pullRequestUrl } : {}),
        },
      ),
      events: [
        ...githubActionEvents(w.run, obs, w.attempts),
        {
          reason: RunReasons.Succeeded,
          message: r?.pullRequestUrl ? `Run succeeded: ${r.pullRequestUrl}` : "Run succeeded",
          type: "Normal",
          attempt: w.attempts,
        },
      ],
      stopJobs: false,
    };
  }
  if (obs.state === "failed") {
    if (obs.result) next.result = obs.result;
    if (obs.result?.pullRequestUrl) next.pullRequestUrl = obs.result.pullRequestUrl;
    const d = decideFailure(w, next, {
      reason: obs.reason ?? RunReasons.JobFailed,
      message: obs.message ?? "the Job failed",
      finishedAt: obs.finishedAt,
    });
    return { ...d, events: [...githubActionEvents(w.run, obs, w.attempts), ...d.events] };
  }
  const running = obs.state === "running";
  next.phase = Phases.Running;
  next.reason = running ? RunReasons.AgentRunning : RunReasons.JobCreated;
  next.message = running ? `The agent is running (attempt ${w.attempts}).` : jobCreatedMessage(current.name, w.attempts);
  next.nextRetryTime = undefined;
  next.conditions = setCondition(
    next.conditions ?? [],
    { type: ConditionTypes.Waiting, status: "False", reason: RunReasons.JobCreated, message: "A Job is running the agent." },
    nowIso,
  );
  const events: RunEvent[] = running
    ? [{ reason: RunReasons.Started, message: `Agent started (attempt ${w.attempts})`, type: "Normal", attempt: w.attempts }]
    : [];
  return { next, events, stopJobs: false };
}

/** A failed attempt: wait out the backoff, start the next attempt, or fail the run. */
function decideFailure(w: RunWorld, base: RunStatus, failure: Failure): RunDecision {
  const prev = w.run.status ?? {};
  const nowIso = new Date(w.now).toISOString();
  if (w.attempts - 1 >= w.maxRetries || FINAL_REASONS.has(failure.reason)) {
    const message = `Failed after ${w.attempts} attempt(s): ${failure.reason}: ${failure.message}`;
    const next = finished(w, base, Phases.Failed, failure.reason, message, { completionTime: failure.finishedAt ?? nowIso });
    next.conditions = setCondition(
      next.conditions ?? [],
      { type: ConditionTypes.Failed, status: "True", reason: failure.reason, message },
      nowIso,
    );
    return { next, events: [{ reason: RunReasons.Failed, message, type: "Warning", attempt: w.attempts }], stopJobs: false };
  }
  const delay = retryDelaySeconds(w.attempts, w.backoff.baseSeconds, w.backoff.maxSeconds);
  const failedAt = failure.finishedAt ? Date.parse(failure.finishedAt) : w.now;
  const retryAt = prev.nextRetryTime ?? new Date(failedAt + delay * 1000).toISOString();
  if (Date.parse(retryAt) <= w.now) return { next: base, events: [], stopJobs: false, start: w.attempts + 1 };
  const message = prev.nextRetryTime
    ? (prev.message ?? "")
    : `Attempt ${w.attempts} failed (${failure.reason}: ${failure.message}); attempt ${w.attempts + 1} starts at ${retryAt}.`;
  const next: RunStatus = {
    ...base,
    phase: Phases.Pending,
    reason: prev.nextRetryTime ? (prev.reason ?? failure.reason) : failure.reason,
    message,
    nextRetryTime: retryAt,
  };
  next.conditions = setCondition(
    next.conditions ?? [],
    { type: ConditionTypes.Waiting, status: "True", reason: RunReasons.RetryBackoff, message },
    nowIso,
  );
  return {
    next,
    events: [
      {
        reason: RunReasons.AttemptFailed,
        message: `Attempt ${w.attempts} failed: ${failure.reason}; retrying`,
        type: "Warning",
        attempt: w.attempts,
      },
    ],
    stopJobs: false,
    requeueAfterMs: Date.parse(retryAt) - w.now + 50,
  };
}

/** The decision once starting `d.start` went as `outcome`: waiting for a slot, running, or a terminal problem. */
export function decideStarted(w: RunWorld, d: RunDecision, outcome: StartOutcome): RunDecision {
  const attempt = d.start ?? w.attempts + 1;
  const nowIso = new Date(w.now).toISOString();
  if ("problem" in outcome) {
    const { reason, message } = outcome.problem;
    const next = finished(w, d.next, Phases.Failed, reason, message);
    next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.ConfigError, status: "True", reason, message }, nowIso);
    return { ...d, next, events: [...d.events, { reason, message, type: "Warning", attempt }] };
  }
  if ("waiting" in outcome) {
    const reason = outcome.reason ?? RunReasons.WaitingForSlot;
    const next: RunStatus = { ...d.next, phase: Phases.Pending, reason, message: outcome.waiting };
    next.conditions = setCondition(
      next.conditions ?? [],
      { type: ConditionTypes.Waiting, status: "True", reason, message: outcome.waiting },
      nowIso,
    );
    return { ...d, next, requeueAfterMs: SLOT_RECHECK_MS };
  }
  const next: RunStatus = {
    ...d.next,
    phase: Phases.Running,
    reason: RunReasons.JobCreated,
    message: jobCreatedMessage(outcome.jobName, attempt),
    attempts: attempt,
    jobName: outcome.jobName,
    configmapName: configMapName(w.run, attempt),
    startTime: d.next.startTime ?? nowIso,
    nextRetryTime: undefined,
  };
  if (w.run.kind === "CodeRun") (next as CodeRunStatus).contextVersion = w.run.spec.contextVersion ?? 1;
  next.conditions = setCondition(
    next.conditions ?? [],
    { type: ConditionTypes.JobCreated, status: "True", reason: `Attempt${attempt}`, message: `Job ${outcome.jobName} created.` },
    nowIso,
  );
  next.conditions = setCondition(
    next.conditions,
    { type: ConditionTypes.Waiting, status: "False", reason: RunReasons.JobCreated, message: "A Job is running the agent." },
    nowIso,
  );
  next.conditions = setCondition(
    next.conditions,
    { type: ConditionTypes.Ready, status: "False", reason: RunReasons.Running, message: "The run is in progress." },
    nowIso,
  );
  return { ...d, next };
}

/**
 * The last touches before writing: the Event of a Job recorded in status for the first time
 * (this also covers a Job created just before a crash, whose creator never wrote status),
 * retryCount and lastUpdate.
 */
export function completeDecision(w: RunWorld, d: RunDecision): RunDecision {
  const prev = w.run.status ?? {};
  const next: RunStatus = { ...d.next, lastUpdate: new Date(w.now).toISOString() };
  const events = [...d.events];
  if (next.jobName && next.jobName !== prev.jobName && next.attempts) {
    events.unshift({
      reason: next.attempts > 1 ? RunReasons.Retrying : RunReasons.JobCreated,
      message: `Created Job ${next.jobName} (attempt ${next.attempts})`,
      type: "Normal",
      attempt: next.attempts,
    });
  }
  if (next.attempts !== undefined) next.retryCount = Math.max(0, next.attempts - 1);
  return { ...d, next, events };
}

/**
 * Records the cluster the run's first Job went to (later attempts stay there) and, for runs in
 * an execution cluster, whether it answers: a ClusterReachable condition naming it, and an early
 * re-check while it does not.
 */
export function decideCluster(w: RunWorld, d: RunDecision, c: ClusterState): RunDecision {
  const next: RunStatus = { ...d.next };
  // Runs that finished before status.cluster existed are left alone (no write for each of them).
  if (!next.cluster && next.jobName && !isTerminalPhase(w.run.status?.phase)) next.cluster = c.name;
  if (c.name === HOME_CLUSTER || isTerminalPhase(next.phase)) return { ...d, next };
  next.conditions = setCondition(
    next.conditions ?? [],
    {
      type: ConditionTypes.ClusterReachable,
      status: c.reachable ? "True" : "False",
      reason: c.reachable ? RunReasons.ClusterReachable : RunReasons.ClusterUnreachable,
      message: c.message,
    },
    new Date(w.now).toISOString(),
  );
  if (c.reachable) return { ...d, next };
  return { ...d, next, requeueAfterMs: Math.min(d.requeueAfterMs ?? CLUSTER_RECHECK_MS, CLUSTER_RECHECK_MS) };
}
