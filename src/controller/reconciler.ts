/**
 * The run reconciler: level-based and idempotent. Every pass reads the run, its Jobs and Pods
 * and converges: at most one Job per attempt (deterministic names), status recomputed from
 * the world, retries with backoff, per-service concurrency from cluster state, and terminal
 * problems (missing Secret, unrenderable template) recorded as conditions, never crash loops.
 */
import { createHash } from "node:crypto";
import type { CoreV1Event, V1Job } from "@kubernetes/client-node";
import { Annotations, Labels, RunReasons, bindRepository, isTerminalPhase, type AnyRun, type Kind } from "../api/index.js";
import type { Config } from "../config/schema.js";
import {
  buildJob,
  buildRunConfigMap,
  buildWorkspacePvc,
  computeLimits,
  computeRunParameters,
  githubAppSecretName,
  githubTokenSecretName,
  jobName,
  legacyWorkspacePvcName,
  workspacePvcName,
} from "../manifests/index.js";
import { activeRunsOf, authorizeRun, checkSpecSize, requesterOf, runRequestOf } from "../authz/authorize.js";
import type { RunParameters } from "../api/runner-contract.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { ControllerCache, ControllerKube } from "./ports.js";
import { completeDecision, decideRun, decideStarted, type RunDecision, type RunEvent, type RunWorld, type StartOutcome } from "./decide.js";
import { observeJob, statusPatch } from "./status.js";
import { KeyedLock } from "../util/keyed-lock.js";

/** Renders one attempt's agent files; throws an error with `.template` when a template fails. */
export type RenderFiles = (run: AnyRun, params: RunParameters) => Record<string, string>;

export interface ReconcilerDeps {
  kube: ControllerKube;
  cache: ControllerCache;
  config: Pick<
    Config,
    "agent" | "job" | "secrets" | "storage" | "models" | "github" | "permissions" | "concurrency" | "authorization" | "play"
  >;
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
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const EXPECTATION_TTL_MS = 60_000;

export function attemptOf(job: V1Job): number {
  return Number(job.metadata?.labels?.[Labels.attempt] ?? 0) || 0;
}

function isFinished(job: V1Job): boolean {
  return Boolean(job.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True"));
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

  private isExpected(key: string): boolean {
    const exp = this.expectedJobs.get(key);
    return exp !== undefined && this.now() - exp.at <= EXPECTATION_TTL_MS;
  }

  /** Called by the Job informer: the cache now knows this Job. */
  observedJob(job: V1Job): void {
    this.expectedJobs.delete(`${job.metadata?.namespace}/${job.metadata?.name}`);
  }

  /** One pass: read the world, decide (src/controller/decide.ts), act, write status. */
  async reconcile(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    const run = this.deps.cache.getRun(kind, namespace, name);
    // Deleted runs need nothing: their children carry owner references and are garbage-collected.
    if (!run || run.metadata.deletionTimestamp) return {};
    const log = this.deps.logger.child({ run: `${namespace}/${name}`, kind });
    const world = await this.observe(run);
    // Our own Job is not in the cache yet: its ADDED event enqueues the run again.
    if (!world) return { requeueAfterMs: EXPECTATION_TTL_MS };
    let decision = decideRun(world);
    if (decision.stopJobs) await this.deleteActiveJobs(run, this.deps.cache.jobsOfRun(run.metadata.uid ?? ""));
    if (decision.start !== undefined) decision = decideStarted(world, decision, await this.tryStart(run, decision.start, log));
    decision = completeDecision(world, decision);
    await this.write(run, decision, log);
    return decision.requeueAfterMs === undefined ? {} : { requeueAfterMs: decision.requeueAfterMs };
  }

  /**
   * The run's attempts and its current Job with its Pods. When the cache lacks the current Job:
   * undefined if this process created it moments ago (wait for the informer), else a live read
   * (created before a restart, or deleted).
   */
  private async observe(run: AnyRun): Promise<RunWorld | undefined> {
    const ns = run.metadata.namespace ?? "";
    const jobs = this.deps.cache.jobsOfRun(run.metadata.uid ?? "");
    const attempts = Math.max(run.status?.attempts ?? 0, ...jobs.map(attemptOf));
    let job = jobs.find((j) => attemptOf(j) === attempts);
    if (attempts > 0 && !job && !isTerminalPhase(run.status?.phase) && !run.spec.cancel) {
      const name = jobName(run, attempts);
      if (this.isExpected(`${ns}/${name}`)) return undefined;
      job = (await this.deps.kube.getJob(ns, name)) ?? undefined;
    }
    const currentName = job?.metadata?.name ?? "";
    const current = job ? { name: currentName, obs: observeJob(job, this.deps.cache.podsOfJob(ns, currentName)) } : undefined;
    const { job: jobConfig } = this.deps.config;
    return {
      run,
      attempts,
      current,
      now: this.now(),
      maxRetries: computeLimits(run, this.deps.config).maxRetries,
      backoff: { baseSeconds: jobConfig.retryBackoffSeconds, maxSeconds: jobConfig.retryBackoffMaxSeconds },
    };
  }

  /** Starts an attempt; a problem the user must fix becomes a decision input, not an exception. */
  private async tryStart(run: AnyRun, attempt: number, log: Logger): Promise<StartOutcome> {
    try {
      return await this.startAttempt(run, attempt, new Date(this.now()).toISOString(), log);
    } catch (e) {
      if (!(e instanceof TerminalProblem)) throw e;
      return { problem: { reason: e.reason, message: e.message } };
    }
  }

  /** Events before status: a crash in between re-emits them, and their deterministic names make each appear once. */
  private async write(run: AnyRun, d: RunDecision, log: Logger): Promise<void> {
    const prev = run.status ?? {};
    const next = d.next;
    for (const ev of d.events) await this.emit(run, ev);
    const patch = statusPatch(prev, next);
    if (!patch) return;
    await this.deps.kube.patchRunStatus(run.kind, run.metadata.namespace ?? "", run.metadata.name ?? "", patch);
    log.info({ phase: next.phase, reason: next.reason, attempts: next.attempts }, "Updated run status");
    if (isTerminalPhase(next.phase) && !isTerminalPhase(prev.phase) && next.startTime) {
      const seconds = (Date.parse(next.completionTime ?? next.lastUpdate ?? "") - Date.parse(next.startTime)) / 1000;
      this.deps.metrics?.runDuration.observe({ kind: run.kind, phase: next.phase as string }, Math.max(0, seconds || 0));
    }
  }

  private async deleteActiveJobs(run: AnyRun, jobs: V1Job[]): Promise<void> {
    for (const j of jobs) if (!isFinished(j)) await this.deps.kube.deleteJob(run.metadata.namespace ?? "", j.metadata?.name ?? "");
  }

  /** Checks what the Job needs and that a slot is free, then creates PVC, ConfigMap and Job. */
  private async startAttempt(
    run: AnyRun,
    attempt: number,
    nowIso: string,
    log: Logger,
  ): Promise<{ jobName: string } | { waiting: string; reason?: string }> {
    const ns = run.metadata.namespace ?? "";
    // Runs can be created with kubectl: the intake's decision is made again, for the recorded
    // requester only while the spec is the one it authorized. Before any Secret is looked at, so
    // a refused run learns nothing about which Secrets exist.
    const decision =
      checkSpecSize(run.spec, this.deps.config) ??
      authorizeRun(runRequestOf(run), requesterOf(run), this.deps.config, this.deps.cache.mountableSecrets(ns));
    if (!decision.allowed) throw new TerminalProblem(decision.reason, decision.message);
    const overQuota = this.quotaWait(run, ns);
    if (overQuota) return { waiting: overQuota, reason: RunReasons.WaitingForQuota };
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
    const claim = run.kind === "CodeRun" ? this.resolveWorkspace(ns, run.spec.service, repositoryKey) : { name: "", exists: true };
    const job = buildJob(run, attempt, this.deps.config, claim.name);
    const name = job.metadata?.name ?? "";
    // The Job is "expected" from before its create until the informer shows it: passes in
    // between neither read it live nor count its slot as free.
    const create = async (workspace: string) => {
      const key = `${ns}/${name}`;
      this.expectedJobs.set(key, { workspace, runUid: run.metadata.uid ?? "", at: this.now() });
      try {
        if (run.kind === "CodeRun" && !claim.exists) {
          await this.deps.kube.createPvc(buildWorkspacePvc(run.spec.service, repositoryKey, ns, this.deps.config));
          log.info({ pvc: claim.name, repository: repositoryKey }, "Created workspace PersistentVolumeClaim");
        }
        await this.deps.kube.createConfigMap(buildRunConfigMap(run, attempt, params, files, this.deps.config.github.caBundle));
        await this.deps.kube.createJob(job);
      } catch (e) {
        this.expectedJobs.delete(key);
        throw e;
      }
      log.info({ job: name, attempt, at: nowIso }, "Created Job");
      return { jobName: name };
    };
    if (run.kind !== "CodeRun") return create("");
    const service = run.spec.service;
    return this.serviceLocks.run(`${ns}/${service}`, async () => {
      const waiting = this.slotWait(run, ns, service, repositoryKey);
      return waiting ? { waiting } : create(`${service}/${repositoryKey}`);
    });
  }

  /**
   * Why the run must wait for its requester's quota, or undefined: the intakes refuse a run past
   * authorization.quotas.maxActiveRuns, but kubectl-made runs pass no intake and two submissions
   * racing each other can both pass its count. Here only the requester's oldest `max` unfinished
   * runs may start; the others wait (level-based: recomputed from the cache on every pass).
   */
  private quotaWait(run: AnyRun, ns: string): string | undefined {
    const max = this.deps.config.authorization.quotas.maxActiveRuns;
    const requester = requesterOf(run);
    const created = (r: AnyRun) => `${r.metadata.creationTimestamp ?? ""}/${r.metadata.name ?? ""}`;
    const mine = created(run);
    const older = [...this.deps.cache.listRuns("CodeRun", ns), ...this.deps.cache.listRuns("DocsRun", ns)].filter(
      (r) => r.metadata.uid !== run.metadata.uid && !r.metadata.deletionTimestamp && created(r) < mine,
    );
    const ahead = activeRunsOf(older, requester).length;
    if (ahead < max) return undefined;
    return `Waiting for the quota of requester ${requester}: authorization.quotas.maxActiveRuns allows ${max} unfinished run(s) and ${ahead} older ones have not finished. Cancel or wait for them, or raise the quota.`;
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
      else if (exp.workspace === `${service}/${repositoryKey}` && key.startsWith(`${ns}/`) && exp.runUid !== uid)
        holders.add(byUid.get(exp.runUid)?.metadata.name ?? exp.runUid);
    }
    const created = (r: AnyRun) => `${r.metadata.creationTimestamp ?? ""}/${r.metadata.name ?? ""}`;
    const mine = created(run);
    const olderWaiting = runs.filter((r) => {
      if (holders.has(r.metadata.name ?? "") || isTerminalPhase(r.status?.phase) || r.spec.cancel || r.metadata.deletionTimestamp)
        return false;
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
  private resolveWorkspace(ns: string, service: string, repositoryKey: string): { name: string; exists: boolean } {
    const legacy = this.deps.cache.getPvc(ns, legacyWorkspacePvcName(service));
    const boundTo = legacy?.metadata?.annotations?.[Annotations.repository];
    if (legacy && (!boundTo || boundTo === repositoryKey)) return { name: legacyWorkspacePvcName(service), exists: true };
    // A claim the cache does not know yet is created again: AlreadyExists is success.
    const name = workspacePvcName(service, repositoryKey);
    return { name, exists: this.deps.cache.getPvc(ns, name) !== undefined };
  }

  private async checkSecrets(run: AnyRun): Promise<void> {
    const ns = run.metadata.namespace ?? "";
    const need = async (name: string, key: string | undefined, hint: string) => {
      const cached = this.deps.cache.secretKeys(ns, name);
      if (cached && (!key || cached.includes(key))) return;
      // The cache may lag behind a Secret created just now: a live read confirms a problem
      // before it fails the run.
      const keys = await this.deps.kube.getSecretKeys(ns, name);
      if (keys === null) throw new TerminalProblem(RunReasons.SecretMissing, `Secret ${ns}/${name} does not exist. ${hint}`);
      if (key && !keys.includes(key))
        throw new TerminalProblem(RunReasons.SecretKeyMissing, `Secret ${ns}/${name} has no key "${key}". ${hint}`);
    };
    const { apiKeySecretName, apiKeySecretKey } = this.deps.config.secrets;
    await need(apiKeySecretName, apiKeySecretKey, "Set secrets.anthropicApiKey (or secrets.existingSecret) in the Helm values.");
    if (run.spec.githubUser) {
      await need(
        githubTokenSecretName(run.spec.githubUser),
        "token",
        `Create it with: infra/scripts/setup-agent-secrets.sh --user ${run.spec.githubUser} --ssh-key <key> --token <token> --namespace ${ns}`,
      );
    }
    if (run.spec.githubApp) {
      const name = githubAppSecretName(run.spec.githubApp);
      await need(
        name,
        "app-id",
        `Create it with: infra/scripts/setup-agent-secrets.sh --app ${run.spec.githubApp} --app-id <id> --private-key <pem> --namespace ${ns}`,
      );
      await need(
        name,
        "private-key",
        `Create it with: infra/scripts/setup-agent-secrets.sh --app ${run.spec.githubApp} --app-id <id> --private-key <pem> --namespace ${ns}`,
      );
    }
    if (run.kind === "CodeRun") {
      for (const e of run.spec.envFromSecrets ?? [])
        await need(e.secretName, e.secretKey, `spec.envFromSecrets entry ${e.name} refers to it.`);
    }
  }

  private async emit(run: AnyRun, ev: RunEvent): Promise<void> {
    const ns = run.metadata.namespace ?? "";
    const hash = createHash("sha256")
      .update(`${run.metadata.uid}/${ev.reason}/${ev.attempt}${ev.key === undefined ? "" : `/${ev.key}`}`)
      .digest("hex")
      .slice(0, 12);
    const name = `${(run.metadata.name ?? "run").slice(0, 200)}.${hash}`;
    if (this.emitted.has(`${ns}/${name}`)) return;
    const ts = new Date(this.now());
    const event: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: ns },
      involvedObject: {
        apiVersion: "orchestrator.platform/v1",
        kind: run.kind,
        name: run.metadata.name,
        namespace: ns,
        uid: run.metadata.uid,
      },
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
    super(
      RunReasons.TemplateError,
      `Template ${template ?? "(unknown)"} could not be rendered: ${message}. Fix it in the chart's templates ConfigMap (claude-templates).`,
    );
  }
}
