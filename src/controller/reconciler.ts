/**
 * The run reconciler: level-based and idempotent. Every pass reads the run, its Jobs and Pods
 * and converges: at most one Job per attempt (deterministic names), status recomputed from
 * the world, retries with backoff, per-service concurrency from cluster state, and terminal
 * problems (missing Secret, unrenderable template) recorded as conditions, never crash loops.
 */
import { createHash } from "node:crypto";
import type { CoreV1Event, V1Job } from "@kubernetes/client-node";
import { ConditionTypes, Labels, Phases, isTerminalPhase, type AnyRun, type Kind, type Phase, type RunStatus, type CodeRunStatus } from "../api/index.js";
import type { Config } from "../config/schema.js";
import {
  buildJob, buildRunConfigMap, buildWorkspacePvc, computeLimits, computeRunParameters, configMapName,
  githubAppSecretName, githubTokenSecretName, jobName, legacyWorkspacePvcName, workspacePvcName,
} from "../manifests/index.js";
import { authorizeRun, requesterOf, runRequestOf } from "../authz/authorize.js";
import { Annotations, bindRepository } from "../api/index.js";
import type { RunParameters } from "../api/runner-contract.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { ControllerCache, ControllerKube } from "./ports.js";
import { observeJob, retryDelaySeconds, setCondition, statusPatch } from "./status.js";
import { KeyedLock } from "../util/keyed-lock.js";

/** Renders one attempt's agent files; throws an error with `.template` when a template fails. */
export type RenderFiles = (run: AnyRun, params: RunParameters) => Record<string, string>;

export interface ReconcilerDeps {
  kube: ControllerKube;
  cache: ControllerCache;
  config: Pick<Config, "agent" | "job" | "secrets" | "storage" | "models" | "github" | "permissions" | "concurrency" | "authorization">;
  renderFiles: RenderFiles;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** A problem the user must fix; recorded in status, not retried until the run changes. */
class TerminalProblem extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

const SLOT_RECHECK_MS = 30_000;
const EXPECTATION_TTL_MS = 60_000;

export function attemptOf(job: V1Job): number {
  return Number(job.metadata?.labels?.[Labels.attempt] ?? 0) || 0;
}

function isFinished(job: V1Job): boolean {
  return Boolean(job.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True"));
}

function jobCreatedMessage(job: string, attempt: number): string {
  return `Job ${job} created; waiting for its pod (attempt ${attempt}).`;
}

export function runKey(kind: Kind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export class RunReconciler {
  private readonly now: () => number;
  /** Jobs created by this process but maybe not yet in the informer cache (client-go "expectations"). */
  private readonly expectedJobs = new Map<string, { workspace: string; runUid: string; at: number }>();
  private readonly serviceLocks = new KeyedLock();
  /** Names of Events already emitted, to skip repeated creates; the names are deterministic anyway. */
  private readonly emitted = new Set<string>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Called by the Job informer: the cache now knows this Job. */
  observedJob(job: V1Job): void {
    this.expectedJobs.delete(`${job.metadata?.namespace}/${job.metadata?.name}`);
  }

  async reconcile(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    const run = this.deps.cache.getRun(kind, namespace, name);
    // Deleted runs need nothing: their children carry owner references and are garbage-collected.
    if (!run || run.metadata.deletionTimestamp) return {};
    const log = this.deps.logger.child({ run: `${namespace}/${name}`, kind });
    const nowIso = new Date(this.now()).toISOString();
    const prev: RunStatus = run.status ?? {};
    const jobs = this.deps.cache.jobsOfRun(run.metadata.uid ?? "");
    const attempts = Math.max(prev.attempts ?? 0, ...jobs.map(attemptOf));
    const limits = computeLimits(run, this.deps.config);
    let next: RunStatus = { ...prev, observedGeneration: run.metadata.generation };
    if (attempts > 0) next.attempts = attempts;
    let result: ReconcileResult = {};
    const events: Array<{ reason: string; message: string; type: "Normal" | "Warning"; attempt: number }> = [];

    const finish = (phase: Phase, reason: string, message: string, extra: Partial<RunStatus> = {}) => {
      next = { ...next, ...extra, phase, reason, message, completionTime: next.completionTime ?? nowIso, nextRetryTime: undefined };
      next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.Ready, status: phase === Phases.Succeeded ? "True" : "False", reason, message, observedGeneration: run.metadata.generation }, nowIso);
      next.conditions = setCondition(next.conditions, { type: ConditionTypes.Waiting, status: "False", reason: "Finished", message: "The run has finished." }, nowIso);
      if (phase === Phases.Succeeded) next.workCompleted = true;
    };

    if (isTerminalPhase(prev.phase)) {
      // A finished run stays finished, even when its Job is later deleted (TTL or by hand).
      if (prev.phase === Phases.Cancelled) await this.deleteActiveJobs(run, jobs);
    } else if (run.spec.cancel) {
      await this.deleteActiveJobs(run, jobs);
      finish(Phases.Cancelled, "Cancelled", "The run was cancelled (spec.cancel); its Job was stopped.");
      events.push({ reason: "Cancelled", message: "Run cancelled; Job stopped", type: "Normal", attempt: attempts });
    } else {
      let current = jobs.find((j) => attemptOf(j) === attempts);
      if (attempts > 0 && !current) current = (await this.deps.kube.getJob(namespace, jobName(run, attempts))) ?? undefined;
      let startNext = attempts === 0;
      let failure: { reason: string; message: string; finishedAt?: string } | undefined;

      if (current) {
        const obs = observeJob(current, this.deps.cache.podsOfJob(namespace, current.metadata?.name ?? ""));
        next.jobName = current.metadata?.name;
        next.startTime = next.startTime ?? obs.startedAt;
        if (obs.state === "succeeded") {
          const r = obs.result;
          finish(Phases.Succeeded, "Succeeded", r?.outcome === "no-changes" ? "The agent finished without changes." : "The agent finished and delivered its work.", {
            completionTime: obs.finishedAt ?? nowIso,
            ...(r ? { result: r } : {}),
            ...(r?.pullRequestUrl ? { pullRequestUrl: r.pullRequestUrl } : {}),
          });
          events.push({ reason: "Succeeded", message: r?.pullRequestUrl ? `Run succeeded: ${r.pullRequestUrl}` : "Run succeeded", type: "Normal", attempt: attempts });
        } else if (obs.state === "failed") {
          failure = { reason: obs.reason ?? "JobFailed", message: obs.message ?? "the Job failed", finishedAt: obs.finishedAt };
          if (obs.result) next.result = obs.result;
          if (obs.result?.pullRequestUrl) next.pullRequestUrl = obs.result.pullRequestUrl;
        } else {
          next.phase = Phases.Running;
          next.reason = obs.state === "running" ? "AgentRunning" : "JobCreated";
          next.message = obs.state === "running" ? `The agent is running (attempt ${attempts}).` : jobCreatedMessage(current.metadata?.name ?? "", attempts);
          next.nextRetryTime = undefined;
          next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.Waiting, status: "False", reason: "JobCreated", message: "A Job is running the agent." }, nowIso);
          if (obs.state === "running") events.push({ reason: "Started", message: `Agent started (attempt ${attempts})`, type: "Normal", attempt: attempts });
        }
      } else if (attempts > 0) {
        failure = prev.nextRetryTime
          ? { reason: prev.reason ?? "JobFailed", message: prev.message ?? "", finishedAt: undefined }
          : { reason: "JobDeleted", message: `The Job of attempt ${attempts} was deleted before it finished.` };
      }

      if (failure) {
        if (attempts - 1 < limits.maxRetries) {
          const delay = retryDelaySeconds(attempts, this.deps.config.job.retryBackoffSeconds, this.deps.config.job.retryBackoffMaxSeconds);
          const failedAt = failure.finishedAt ? Date.parse(failure.finishedAt) : this.now();
          const retryAt = prev.nextRetryTime ?? new Date(failedAt + delay * 1000).toISOString();
          if (Date.parse(retryAt) > this.now()) {
            const message = prev.nextRetryTime ? prev.message ?? "" : `Attempt ${attempts} failed (${failure.reason}: ${failure.message}); attempt ${attempts + 1} starts at ${retryAt}.`;
            next = { ...next, phase: Phases.Pending, reason: prev.nextRetryTime ? prev.reason ?? failure.reason : failure.reason, message, nextRetryTime: retryAt };
            next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.Waiting, status: "True", reason: "RetryBackoff", message }, nowIso);
            events.push({ reason: "AttemptFailed", message: `Attempt ${attempts} failed: ${failure.reason}; retrying`, type: "Warning", attempt: attempts });
            result = { requeueAfterMs: Date.parse(retryAt) - this.now() + 50 };
          } else {
            startNext = true;
          }
        } else {
          const message = `Failed after ${attempts} attempt(s): ${failure.reason}: ${failure.message}`;
          finish(Phases.Failed, failure.reason, message, { completionTime: failure.finishedAt ?? nowIso });
          next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.Failed, status: "True", reason: failure.reason, message }, nowIso);
          events.push({ reason: "Failed", message, type: "Warning", attempt: attempts });
        }
      }

      if (startNext) {
        const attempt = attempts + 1;
        try {
          const started = await this.startAttempt(run, attempt, nowIso, log);
          if (started.waiting) {
            next = { ...next, phase: Phases.Pending, reason: "WaitingForSlot", message: started.waiting };
            next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.Waiting, status: "True", reason: "WaitingForSlot", message: started.waiting }, nowIso);
            result = { requeueAfterMs: SLOT_RECHECK_MS };
          } else {
            next = {
              ...next,
              phase: Phases.Running,
              reason: "JobCreated",
              message: jobCreatedMessage(started.jobName ?? "", attempt),
              attempts: attempt,
              jobName: started.jobName,
              configmapName: configMapName(run, attempt),
              startTime: next.startTime ?? nowIso,
              nextRetryTime: undefined,
            };
            if (run.kind === "CodeRun") (next as CodeRunStatus).contextVersion = run.spec.contextVersion ?? 1;
            next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.JobCreated, status: "True", reason: `Attempt${attempt}`, message: `Job ${started.jobName} created.` }, nowIso);
            next.conditions = setCondition(next.conditions, { type: ConditionTypes.Waiting, status: "False", reason: "JobCreated", message: "A Job is running the agent." }, nowIso);
            next.conditions = setCondition(next.conditions, { type: ConditionTypes.Ready, status: "False", reason: "Running", message: "The run is in progress." }, nowIso);
          }
        } catch (e) {
          if (!(e instanceof TerminalProblem)) throw e;
          finish(Phases.Failed, e.reason, e.message);
          next.conditions = setCondition(next.conditions ?? [], { type: ConditionTypes.ConfigError, status: "True", reason: e.reason, message: e.message }, nowIso);
          events.push({ reason: e.reason, message: e.message, type: "Warning", attempt: attempts + 1 });
        }
      }
    }

    // Recording a Job in status for the first time is when its Event is due: this also covers a
    // Job created just before a crash, whose creator never got to write status.
    if (next.jobName && next.jobName !== prev.jobName && next.attempts) {
      events.unshift({ reason: next.attempts > 1 ? "Retrying" : "JobCreated", message: `Created Job ${next.jobName} (attempt ${next.attempts})`, type: "Normal", attempt: next.attempts });
    }
    if (next.attempts !== undefined) next.retryCount = Math.max(0, next.attempts - 1);
    next.lastUpdate = nowIso;
    // Events before status: a crash in between re-emits them on the next pass, and their
    // deterministic names turn the repeat into AlreadyExists, so each is recorded exactly once.
    for (const ev of events) await this.emit(run, ev);
    const patch = statusPatch(prev, next);
    if (patch) {
      await this.deps.kube.patchRunStatus(run.kind, namespace, name, patch);
      log.info({ phase: next.phase, reason: next.reason, attempts: next.attempts }, "Updated run status");
      if (isTerminalPhase(next.phase) && !isTerminalPhase(prev.phase) && next.startTime) {
        this.deps.metrics?.runDuration.observe({ kind: run.kind, phase: next.phase as string }, Math.max(0, (Date.parse(next.completionTime ?? nowIso) - Date.parse(next.startTime)) / 1000));
      }
    }
    return result;
  }

  private async deleteActiveJobs(run: AnyRun, jobs: V1Job[]): Promise<void> {
    for (const j of jobs) if (!isFinished(j)) await this.deps.kube.deleteJob(run.metadata.namespace ?? "", j.metadata?.name ?? "");
  }

  /** Checks what the Job needs and that a slot is free, then creates PVC, ConfigMap and Job. */
  private async startAttempt(run: AnyRun, attempt: number, nowIso: string, log: Logger): Promise<{ jobName: string; waiting?: undefined } | { waiting: string; jobName?: undefined }> {
    const ns = run.metadata.namespace ?? "";
    // Runs can be created with kubectl: the intake's decision is made again, for the recorded
    // requester only while the spec is the one it authorized. Before any Secret is looked at, so
    // a refused run learns nothing about which Secrets exist.
    const decision = authorizeRun(runRequestOf(run), requesterOf(run), this.deps.config);
    if (!decision.allowed) throw new TerminalProblem(decision.reason, decision.message);
    const repositoryKey = decision.repositories[0]!.key;
    await this.checkSecrets(run);
    const params = computeRunParameters(run, attempt, this.deps.config);
    let files: Record<string, string>;
    try {
      files = this.deps.renderFiles(run, params);
    } catch (e) {
      const t = (e as { template?: string }).template;
      throw new TemplateProblem(t, (e as Error).message);
    }
    const claim = run.kind === "CodeRun" ? await this.resolveWorkspace(ns, run.spec.service, repositoryKey) : { name: "", exists: true };
    const job = buildJob(run, attempt, this.deps.config, claim.name);
    const name = job.metadata?.name ?? "";
    const create = async () => {
      if (run.kind === "CodeRun" && !claim.exists) {
        await this.deps.kube.createPvc(buildWorkspacePvc(run.spec.service, repositoryKey, ns, this.deps.config));
        log.info({ pvc: claim.name, repository: repositoryKey }, "Created workspace PersistentVolumeClaim");
      }
      await this.deps.kube.createConfigMap(buildRunConfigMap(run, attempt, params, files));
      await this.deps.kube.createJob(job);
      log.info({ job: name, attempt, at: nowIso }, "Created Job");
    };
    if (run.kind !== "CodeRun") {
      await create();
      return { jobName: name };
    }
    const service = run.spec.service;
    return this.serviceLocks.run(`${ns}/${service}`, async () => {
      const waiting = this.slotWait(run, ns, service, repositoryKey);
      if (waiting) return { waiting };
      this.expectedJobs.set(`${ns}/${name}`, { workspace: `${service}/${repositoryKey}`, runUid: run.metadata.uid ?? "", at: this.now() });
      try {
        await create();
      } catch (e) {
        this.expectedJobs.delete(`${ns}/${name}`);
        throw e;
      }
      return { jobName: name };
    });
  }

  /**
   * Why the run must wait for a slot of its service, or undefined. Derived from the cache
   * (plus Jobs this process just created) on every pass: never a counter that can drift.
   * Waiting runs start oldest first.
   */
  private slotWait(run: AnyRun & { kind: "CodeRun" }, ns: string, service: string, repositoryKey: string): string | undefined {
    const limit = this.deps.config.concurrency.perService;
    const uid = run.metadata.uid ?? "";
    const holders = new Set<string>();
    // Runs contend for one workspace: the same service and repository.
    const sameWorkspace = (r: AnyRun) => {
      if (r.kind !== "CodeRun" || r.spec.service !== service) return false;
      const b = bindRepository(r.spec.repositoryUrl, this.deps.config.github.url);
      return b.ok && b.repository.key === repositoryKey;
    };
    const runs = this.deps.cache.listRuns("CodeRun", ns).filter((r) => sameWorkspace(r) && r.metadata.uid !== uid);
    const byUid = new Map(runs.map((r) => [r.metadata.uid ?? "", r]));
    for (const r of runs) {
      if (this.deps.cache.jobsOfRun(r.metadata.uid ?? "").some((j) => !isFinished(j))) holders.add(r.metadata.name ?? "");
    }
    for (const [key, exp] of this.expectedJobs) {
      const jobNameOf = key.slice(key.indexOf("/") + 1);
      const seen = this.deps.cache.jobsOfRun(exp.runUid).some((j) => j.metadata?.name === jobNameOf);
      if (seen || this.now() - exp.at > EXPECTATION_TTL_MS) this.expectedJobs.delete(key);
      else if (exp.workspace === `${service}/${repositoryKey}` && key.startsWith(`${ns}/`) && exp.runUid !== uid) holders.add(byUid.get(exp.runUid)?.metadata.name ?? exp.runUid);
    }
    const created = (r: AnyRun) => `${r.metadata.creationTimestamp ?? ""}/${r.metadata.name ?? ""}`;
    const mine = created(run);
    const olderWaiting = runs.filter((r) => {
      if (holders.has(r.metadata.name ?? "") || isTerminalPhase(r.status?.phase) || r.spec.cancel || r.metadata.deletionTimestamp) return false;
      if (r.status?.nextRetryTime) return false; // in retry backoff: not contending now
      return created(r) < mine;
    });
    if (holders.size + olderWaiting.length < limit) return undefined;
    const active = [...holders].sort().join(", ") || "none";
    return `Waiting for a slot: service ${service} allows ${limit} active run(s) at once on the workspace of ${repositoryKey} (the volume is ReadWriteOnce); active: ${active}; older runs waiting: ${olderWaiting.length}.`;
  }

  /**
   * The workspace PVC of a service's repository. A `workspace-{service}` volume from before
   * workspaces were keyed by repository keeps serving the repository it is bound to, or is used
   * as it is when unbound (the runner refuses it if it holds another repository's clone).
   */
  private async resolveWorkspace(ns: string, service: string, repositoryKey: string): Promise<{ name: string; exists: boolean }> {
    const legacy = await this.deps.kube.getPvc(ns, legacyWorkspacePvcName(service));
    const boundTo = legacy?.metadata?.annotations?.[Annotations.repository];
    if (legacy && (!boundTo || boundTo === repositoryKey)) return { name: legacyWorkspacePvcName(service), exists: true };
    const name = workspacePvcName(service, repositoryKey);
    return { name, exists: (await this.deps.kube.getPvc(ns, name)) !== null };
  }

  private async checkSecrets(run: AnyRun): Promise<void> {
    const ns = run.metadata.namespace ?? "";
    const need = async (name: string, key: string | undefined, hint: string) => {
      const keys = await this.deps.kube.getSecretKeys(ns, name);
      if (keys === null) throw new TerminalProblem("SecretMissing", `Secret ${ns}/${name} does not exist. ${hint}`);
      if (key && !keys.includes(key)) throw new TerminalProblem("SecretKeyMissing", `Secret ${ns}/${name} has no key "${key}". ${hint}`);
    };
    const { apiKeySecretName, apiKeySecretKey } = this.deps.config.secrets;
    await need(apiKeySecretName, apiKeySecretKey, "Set secrets.anthropicApiKey (or secrets.existingSecret) in the Helm values.");
    if (run.spec.githubUser) {
      await need(githubTokenSecretName(run.spec.githubUser), "token", `Create it with: infra/scripts/setup-agent-secrets.sh --user ${run.spec.githubUser} --ssh-key <key> --token <token> --namespace ${ns}`);
    }
    if (run.spec.githubApp) {
      const name = githubAppSecretName(run.spec.githubApp);
      await need(name, "app-id", `Create it with: infra/scripts/setup-agent-secrets.sh --app ${run.spec.githubApp} --app-id <id> --private-key <pem> --namespace ${ns}`);
      await need(name, "private-key", `Create it with: infra/scripts/setup-agent-secrets.sh --app ${run.spec.githubApp} --app-id <id> --private-key <pem> --namespace ${ns}`);
    }
    if (run.kind === "CodeRun") {
      for (const e of run.spec.envFromSecrets ?? []) await need(e.secretName, e.secretKey, `spec.envFromSecrets entry ${e.name} refers to it.`);
    }
  }

  private async emit(run: AnyRun, ev: { reason: string; message: string; type: "Normal" | "Warning"; attempt: number }): Promise<void> {
    const ns = run.metadata.namespace ?? "";
    const hash = createHash("sha256").update(`${run.metadata.uid}/${ev.reason}/${ev.attempt}`).digest("hex").slice(0, 12);
    const name = `${(run.metadata.name ?? "run").slice(0, 200)}.${hash}`;
    if (this.emitted.has(`${ns}/${name}`)) return;
    const ts = new Date(this.now());
    const event: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: ns },
      involvedObject: { apiVersion: "orchestrator.platform/v1", kind: run.kind, name: run.metadata.name, namespace: ns, uid: run.metadata.uid },
      reason: ev.reason,
      message: ev.message.slice(0, 1024),
      type: ev.type,
      source: { component: "orchestrator-controller" },
      reportingComponent: "orchestrator-controller",
      reportingInstance: "orchestrator-controller",
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    };
    try {
      await this.deps.kube.createEvent(event);
      this.emitted.add(`${ns}/${name}`);
      if (this.emitted.size > 50_000) this.emitted.clear();
    } catch (e) {
      // Events are best effort: never fail a reconcile over one.
      this.deps.logger.warn({ err: (e as Error).message, event: name }, "Failed to create Event");
    }
  }
}

class TemplateProblem extends TerminalProblem {
  constructor(template: string | undefined, message: string) {
    super("TemplateError", `Template ${template ?? "(unknown)"} could not be rendered: ${message}. Fix it in the chart's templates ConfigMap (claude-templates).`);
  }
}
