/**
 * The Services view, derived from cluster state on every request like the controller derives
 * its slots: a slot is held by a CodeRun with an unfinished Job; the queue is every other
 * unfinished CodeRun of the service, oldest first (the order the controller starts them in).
 */
import { Phases, type Phase } from "../api/constants.js";
import { isTerminalPhase } from "../api/predicates.js";
import type { AnyRun, CodeRun } from "../api/types.js";
import type { JobSummary, WorkspaceSummary } from "./ports.js";

export interface SlotHolder {
  run: string;
  job: string;
  attempt: number;
  since?: string;
}

export interface QueuedRun {
  run: string;
  createdAt?: string;
  /** WaitingForSlot, RetryBackoff, ... from the run's Waiting condition, else its phase. */
  reason: string;
  message?: string;
}

export interface ServiceView {
  service: string;
  workspace?: WorkspaceSummary;
  /** concurrency.perService */
  limit: number;
  active: SlotHolder[];
  queue: QueuedRun[];
  /** CodeRuns of the service per phase. */
  phases: Partial<Record<Phase, number>>;
}

const created = (r: AnyRun) => `${r.metadata.creationTimestamp ?? ""}/${r.metadata.name ?? ""}`;

function queueEntry(run: CodeRun): QueuedRun {
  const waiting = run.status?.conditions?.find((c) => c.type === "Waiting" && c.status === "True");
  return {
    run: run.metadata.name ?? "",
    createdAt: run.metadata.creationTimestamp,
    reason: waiting?.reason ?? run.status?.reason ?? run.status?.phase ?? Phases.Pending,
    message: waiting?.message ?? run.status?.message,
  };
}

/** One view per service that has CodeRuns or a workspace, sorted by name. */
export function computeServices(
  runs: readonly AnyRun[],
  jobs: readonly JobSummary[],
  workspaces: readonly WorkspaceSummary[],
  limit: number,
): ServiceView[] {
  const views = new Map<string, ServiceView>();
  const view = (service: string): ServiceView => {
    let v = views.get(service);
    if (!v) views.set(service, (v = { service, limit, active: [], queue: [], phases: {} }));
    return v;
  };
  for (const w of workspaces) view(w.service).workspace = w;
  const unfinished = new Map<string, JobSummary>();
  for (const j of jobs) if (!j.finished) unfinished.set(j.runUid, j);
  const codeRuns = runs.filter((r): r is CodeRun => r.kind === "CodeRun").sort((a, b) => created(a).localeCompare(created(b)));
  for (const run of codeRuns) {
    const v = view(run.spec.service);
    const phase = run.status?.phase ?? Phases.Pending;
    v.phases[phase] = (v.phases[phase] ?? 0) + 1;
    const job = unfinished.get(run.metadata.uid ?? "");
    if (job) v.active.push({ run: run.metadata.name ?? "", job: job.name, attempt: job.attempt, since: job.startTime ?? job.createdAt });
    else if (!isTerminalPhase(phase) && !run.spec.cancel && !run.metadata.deletionTimestamp) v.queue.push(queueEntry(run));
  }
  return [...views.values()].sort((a, b) => a.service.localeCompare(b.service));
}
