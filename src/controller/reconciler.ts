/**
 * The run reconciler: level-based and idempotent. Every pass reads the run, its Jobs and Pods
 * and converges: at most one Job per attempt (deterministic names), status recomputed from
 * the world, retries with backoff, per-service concurrency from cluster state, and terminal
 * problems (missing Secret, unrenderable template) recorded as conditions, never crash loops.
 */
import { createHash } from "node:crypto";
import type { CoreV1Event, V1ConfigMap, V1Job, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import {
  Annotations,
  HOME_CLUSTER,
  Labels,
  RunReasons,
  bindRepository,
  isActive,
  isTerminalPhase,
  type AnyRun,
  type Kind,
  type RunStatus,
} from "../api/index.js";
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
import { authorizeRun, checkSpecSize, requesterOf, runRequestOf } from "../authz/authorize.js";
import type { RunParameters } from "../api/runner-contract.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { ClusterTarget, ControllerCache, ControllerKube } from "./ports.js";
import {
  CLUSTER_RECHECK_MS,
  completeDecision,
  decideCluster,
  decideRun,
  decideStarted,
  type ClusterState,
  type RunDecision,
  type RunEvent,
  type RunWorld,
  type StartOutcome,
} from "./decide.js";
import { observeJob, statusPatch } from "./status.js";
import { KeyedLock } from "../util/keyed-lock.js";

/** Renders one attempt's agent files; throws an error with `.template` when a template fails. */
export type RenderFiles = (run: AnyRun, params: RunParameters) => Record<string, string>;

export interface ReconcilerDeps {
  kube: ControllerKube;
  cache: ControllerCache;
  config: Pick<
    Config,
    "agent" | "job" | "secrets" | "storage" | "models" | "github" | "permissions" | "concurrency" | "authorization" | "play" | "controller"
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

/** Where a run's Jobs go, where that came from (for messages), and the cluster if registered. */
interface Placement {
  name: string;
  from: string;
  target?: ClusterTarget;
}

/** A Job created by this process, not yet seen by its cluster's informer. */
interface ExpectedJob {
  workspace: string;
  runUid: string;
  at: number;
  cluster: string;
  ns: string;
  job: string;
}

/** What one attempt creates in the run's cluster. */
interface AttemptObjects {
  job: V1Job;
  configMap: V1ConfigMap;
  pvc?: V1PersistentVolumeClaim;
}

function expectationKey(cluster: string, namespace: string, name: string): string {
  return `${cluster}/${namespace}/${name}`;
}

/** A copy without owner references, for an execution cluster (the owner lives in another cluster). */
function detached<T extends { metadata?: { ownerReferences?: unknown } }>(obj: T): T {
  const { ownerReferences: _drop, ...metadata } = obj.metadata ?? {};
  return { ...obj, metadata };
}

function unreachableMessage(cluster: string, lastError: string | undefined): string {
  return `Waiting for cluster ${cluster}: it does not answer (${lastError ?? "unknown error"}). The run starts or goes on when it is reachable again; check its API server and the kubeconfig in its cluster Secret.`;
}

function clusterState(p: Placement): ClusterState {
  if (!p.target)
    return {
      name: p.name,
      reachable: false,
      message: `Cluster ${p.name} is not registered (no cluster Secret labelled ${Labels.cluster}=${p.name}).`,
    };
  return {
    name: p.name,
    reachable: p.target.reachable,
    message: p.target.reachable ? `Cluster ${p.name} answers.` : unreachableMessage(p.name, p.target.lastError),
  };
}

export function attemptOf(job: V1Job): number {
  return Number(job.metadata?.labels?.[Labels.attempt] ?? 0) || 0;
}

export function isFinished(job: V1Job): boolean {
  return Boolean(job.status?.conditions?.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True"));
}

/** Orders runs oldest first (creation time, then name): waiting runs start in this order. */
function createdKey(r: AnyRun): string {
  return `${r.metadata.creationTimestamp ?? ""}/${r.metadata.name ?? ""}`;
}

export function runKey(kind: Kind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export class RunReconciler {
  private readonly now: () => number;
  /** Jobs created by this process but maybe not yet in the informer cache (client-go "expectations"). */
  private readonly expectedJobs = new Map<string, ExpectedJob>();
  private readonly serviceLocks = new KeyedLock();
  /** Held while counting a cluster's active runs and creating a Job there (controller.clusters.maxActiveRuns). */
  private readonly clusterLocks = new KeyedLock();
  /** Names of Events already emitted, to skip repeated creates; the names are deterministic anyway. */
  private readonly emitted = new Set<string>();
  /**
   * Statuses this process wrote, by run key, with the resourceVersion of the run they were
   * decided from. While the cache still shows that version, our write is newer than the cache:
   * a pass then works from the status it wrote, instead of deciding again from the old one and
   * writing an older status back over it (a Job's event often arrives before the run's own).
   */
  private readonly written = new Map<string, { resourceVersion: string; status: RunStatus }>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  private isExpected(key: string): boolean {
    const exp = this.expectedJobs.get(key);
    return exp !== undefined && this.now() - exp.at <= EXPECTATION_TTL_MS;
  }

  /** Called by a cluster's Job informer: the cache now knows this Job. */
  observedJob(cluster: string, job: V1Job): void {
    this.expectedJobs.delete(expectationKey(cluster, job.metadata?.namespace ?? "", job.metadata?.name ?? ""));
  }

  /**
   * Where the run's Jobs go: where its first attempt went (status.cluster), else spec.cluster,
   * else its service's default (controller.clusters.serviceDefaults), else home.
   */
  private place(run: AnyRun): Placement {
    const defaults = this.deps.config.controller.clusters.serviceDefaults;
    const byService = run.kind === "CodeRun" ? defaults[run.spec.service] : undefined;
    const [name, from] = run.status?.cluster
      ? [run.status.cluster, "status.cluster"]
      : run.spec.cluster
        ? [run.spec.cluster, "spec.cluster"]
        : byService && run.kind === "CodeRun"
          ? [byService, `controller.clusters.serviceDefaults.${run.spec.service}`]
          : [HOME_CLUSTER, "home"];
    const target = this.deps.cache.cluster(name);
    return { name, from, ...(target ? { target } : {}) };
  }

  /** The cached run, with the status this process last wrote if the cache has not caught up with it. */
  private latest(kind: Kind, namespace: string, name: string): AnyRun | undefined {
    const key = runKey(kind, namespace, name);
    const run = this.deps.cache.getRun(kind, namespace, name);
    const mine = this.written.get(key);
    if (!mine) return run;
    if (run?.metadata.resourceVersion === mine.resourceVersion) return { ...run, status: mine.status } as AnyRun;
    this.written.delete(key);
    return run;
  }

  /** One pass: read the world, decide (src/controller/decide.ts), act, write status. */
  async reconcile(kind: Kind, namespace: string, name: string): Promise<ReconcileResult> {
    const run = this.latest(kind, namespace, name);
    // Deleted runs need nothing: their children carry owner references and are garbage-collected.
    if (!run || run.metadata.deletionTimestamp) return {};
    const log = this.deps.logger.child({ run: `${namespace}/${name}`, kind });
    const placement = this.place(run);
    const world = await this.observe(run, placement);
    // Our own Job is not in the cache yet: its ADDED event enqueues the run again.
    if (world === "expected") return { requeueAfterMs: EXPECTATION_TTL_MS };
    if (world === "unobservable") {
      // Its cluster is unreachable and the cache lacks the current Job: nothing can be decided
      // about the attempt (and nothing is created); only the condition says why it waits.
      const w = this.worldOf(run, run.status?.attempts ?? 0, undefined);
      const d = decideCluster(w, { next: { ...(run.status ?? {}) }, events: [], stopJobs: false }, clusterState(placement));
      await this.write(run, d, log);
      return { requeueAfterMs: d.requeueAfterMs ?? CLUSTER_RECHECK_MS };
    }
    let decision = decideRun(world);
    if (decision.stopJobs && placement.target)
      await this.deleteActiveJobs(run, placement.target, this.deps.cache.jobsOfRun(run.metadata.uid ?? ""));
    if (decision.start !== undefined) decision = decideStarted(world, decision, await this.tryStart(run, decision.start, placement, log));
    decision = decideCluster(world, completeDecision(world, decision), clusterState(placement));
    await this.write(run, decision, log);
    return decision.requeueAfterMs === undefined ? {} : { requeueAfterMs: decision.requeueAfterMs };
  }

  /**
   * The run's attempts and its current Job with its Pods. When the cache lacks the current Job:
   * undefined if this process created it moments ago (wait for the informer), else a live read
   * (created before a restart, or deleted).
   */
  private async observe(run: AnyRun, placement: Placement): Promise<RunWorld | "expected" | "unobservable"> {
    const ns = run.metadata.namespace ?? "";
    const jobs = this.deps.cache.jobsOfRun(run.metadata.uid ?? "");
    const attempts = Math.max(run.status?.attempts ?? 0, ...jobs.map(attemptOf));
    let job = jobs.find((j) => attemptOf(j) === attempts);
    if (attempts > 0 && !job && !isTerminalPhase(run.status?.phase) && !run.spec.cancel) {
      const name = jobName(run, attempts);
      if (this.isExpected(expectationKey(placement.name, ns, name))) return "expected";
      // A Job an unreachable (or unregistered) cluster may still hold: not "deleted", unknown.
      if (!placement.target?.reachable) return "unobservable";
      job = (await placement.target.kube.getJob(ns, name)) ?? undefined;
    }
    const currentName = job?.metadata?.name ?? "";
    const pods = this.deps.cache.podsOfJob(placement.name, ns, currentName);
    return this.worldOf(run, attempts, job ? { name: currentName, obs: observeJob(job, pods) } : undefined);
  }

  private worldOf(run: AnyRun, attempts: number, current: RunWorld["current"]): RunWorld {
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
  private async tryStart(run: AnyRun, attempt: number, placement: Placement, log: Logger): Promise<StartOutcome> {
    try {
      const target = this.clusterReady(run, placement);
      if (!("kube" in target)) return target;
      return await this.startAttempt(run, attempt, target, new Date(this.now()).toISOString(), log);
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
    const ns = run.metadata.namespace ?? "";
    const name = run.metadata.name ?? "";
    await this.deps.kube.patchRunStatus(run.kind, ns, name, patch);
    const rv = run.metadata.resourceVersion;
    if (rv) this.written.set(runKey(run.kind, ns, name), { resourceVersion: rv, status: next });
    log.info({ phase: next.phase, reason: next.reason, attempts: next.attempts }, "Updated run status");
    if (isTerminalPhase(next.phase) && !isTerminalPhase(prev.phase) && next.startTime) {
      const seconds = (Date.parse(next.completionTime ?? next.lastUpdate ?? "") - Date.parse(next.startTime)) / 1000;
      this.deps.metrics?.runDuration.observe({ kind: run.kind, phase: next.phase as string }, Math.max(0, seconds || 0));
    }
  }

  private async deleteActiveJobs(run: AnyRun, target: ClusterTarget, jobs: V1Job[]): Promise<void> {
    for (const j of jobs) if (!isFinished(j)) await target.kube.deleteJob(run.metadata.namespace ?? "", j.metadata?.name ?? "");
  }

  /** The run's cluster when a Job can be created there; a wait when it does not answer; unknown is terminal. */
  private clusterReady(run: AnyRun, p: Placement): ClusterTarget | { waiting: string; reason: string } {
    const ns = run.metadata.namespace ?? "";
    if (!p.target) {
      const problem = this.deps.cache.clusterProblem?.(p.name);
      throw new TerminalProblem(
        RunReasons.ClusterUnknown,
        `${problem ?? `Cluster "${p.name}" (from ${p.from}) is not registered: no Secret labelled ${Labels.cluster}=${p.name} in namespace ${ns}.`} Register it with: infra/scripts/register-cluster.sh --name ${p.name} --context <its kubeconfig context> --namespace ${ns}; or name a registered cluster (or none, for the controller's own) and create the run again.`,
      );
    }
    if (p.target.reachable) return p.target;
    return { waiting: unreachableMessage(p.name, p.target.lastError), reason: RunReasons.ClusterUnreachable };
  }

  /** Checks what the Job needs and that a slot is free, then creates PVC, ConfigMap and Job. */
  private async startAttempt(
    run: AnyRun,
    attempt: number,
    target: ClusterTarget,
    nowIso: string,
    log: Logger,
  ): Promise<{ jobName: string } | { waiting: string; reason?: string }> {
    const ns = run.metadata.namespace ?? "";
    // Runs can be created with kubectl: the intake's decision is made again, for the recorded
    // requester only while the spec is the one it authorized. Before any Secret is looked at, so
    // a refused run learns nothing about which Secrets exist.
    const decision =
      checkSpecSize(run.spec, this.deps.config) ??
      authorizeRun(runRequestOf(run), requesterOf(run), this.deps.config, this.deps.cache.mountableSecrets(target.name, ns));
    if (!decision.allowed) throw new TerminalProblem(decision.reason, decision.message);
    const overQuota = this.quotaWait(run, ns);
    if (overQuota) return { waiting: overQuota, reason: RunReasons.WaitingForQuota };
    const repositoryKey = decision.repositories[0]!.key;
    await this.checkSecrets(run, target);
    const params = computeRunParameters(run, attempt, this.deps.config);
    let files: Record<string, string>;
    try {
      files = this.deps.renderFiles(run, params);
    } catch (e) {
      const t = (e as { template?: string }).template;
      throw new TemplateProblem(t, (e as Error).message);
    }
    const claim =
      run.kind === "CodeRun" ? this.resolveWorkspace(target.name, ns, run.spec.service, repositoryKey) : { name: "", exists: true };
    const home = target.name === HOME_CLUSTER;
    // In an execution cluster no owner reference can point at the run (its garbage collector
    // would delete the Job at once): the run-uid label ties them, and the controller cleans up.
    const job = home
      ? buildJob(run, attempt, this.deps.config, claim.name)
      : detached(buildJob(run, attempt, this.deps.config, claim.name));
    const cm = buildRunConfigMap(run, attempt, params, files, this.deps.config.github.caBundle);
    const attemptObjects: AttemptObjects = {
      job,
      configMap: home ? cm : detached(cm),
      ...(run.kind === "CodeRun" && !claim.exists ? { pvc: buildWorkspacePvc(run.spec.service, repositoryKey, ns, this.deps.config) } : {}),
    };
    const create = (workspace: string) =>
      this.clusterGate(run, target, () => this.createAttempt(run, target, attemptObjects, workspace, log));
    if (run.kind !== "CodeRun") return create("");
    const service = run.spec.service;
    return this.serviceLocks.run(`${ns}/${service}`, async () => {
      const waiting = this.slotWait(run, ns, service, repositoryKey);
      return waiting ? { waiting } : create(`${service}/${repositoryKey}`);
    });
  }

  /**
   * Creates the attempt's claim (if new), ConfigMap and Job in the run's cluster. The Job is
   * "expected" from before its create until the informer shows it: passes in between neither
   * read it live nor count its slot as free.
   */
  private async createAttempt(
    run: AnyRun,
    target: ClusterTarget,
    objs: AttemptObjects,
    workspace: string,
    log: Logger,
  ): Promise<{ jobName: string }> {
    const ns = run.metadata.namespace ?? "";
    const name = objs.job.metadata?.name ?? "";
    const key = expectationKey(target.name, ns, name);
    this.expectedJobs.set(key, { workspace, runUid: run.metadata.uid ?? "", at: this.now(), cluster: target.name, job: name, ns });
    try {
      if (objs.pvc) {
        await target.kube.createPvc(objs.pvc);
        log.info({ pvc: objs.pvc.metadata?.name, cluster: target.name }, "Created workspace PersistentVolumeClaim");
      }
      await target.kube.createConfigMap(objs.configMap);
      await target.kube.createJob(objs.job);
    } catch (e) {
      this.expectedJobs.delete(key);
      throw e;
    }
    this.deps.metrics?.clusterJobsCreated.inc({ cluster: target.name });
    log.info({ job: name, cluster: target.name, at: new Date(this.now()).toISOString() }, "Created Job");
    return { jobName: name };
  }

  /**
   * Runs `create` unless the cluster already has controller.clusters.maxActiveRuns active runs
   * (unfinished Jobs, and Jobs this process just created); counted and created under one lock.
   */
  private async clusterGate(
    run: AnyRun,
    target: ClusterTarget,
    create: () => Promise<{ jobName: string }>,
  ): Promise<{ jobName: string } | { waiting: string; reason: string }> {
    const limit = this.deps.config.controller.clusters.maxActiveRuns[target.name];
    if (limit === undefined) return create();
    return this.clusterLocks.run(target.name, async () => {
      const active = new Set(this.deps.cache.activeRunsIn(target.name));
      for (const exp of this.expectedJobs.values())
        if (exp.cluster === target.name && this.now() - exp.at <= EXPECTATION_TTL_MS) active.add(exp.runUid);
      active.delete(run.metadata.uid ?? "");
      if (active.size < limit) return create();
      return {
        waiting: `Waiting for a slot in cluster ${target.name}: controller.clusters.maxActiveRuns.${target.name} allows ${limit} active run(s) there and ${active.size} are active.`,
        reason: RunReasons.WaitingForCluster,
      };
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
    const uid = run.metadata.uid ?? "";
    const theirs = this.deps.cache.runsOfRequester(ns, requester);
    // Fewer other runs than the quota in all: none can be ahead (checked without a scan).
    if (theirs.size - (theirs.has(uid) ? 1 : 0) < max) return undefined;
    const mine = createdKey(run);
    let ahead = 0;
    for (const r of theirs.values())
      if (r.metadata.uid !== uid && !r.metadata.deletionTimestamp && isActive(r) && createdKey(r) < mine) ahead++;
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
    const runs = [...this.deps.cache.codeRunsOfService(ns, service).values()].filter((r) => sameWorkspace(r) && r.metadata.uid !== uid);
    const byUid = new Map(runs.map((r) => [r.metadata.uid ?? "", r]));
    for (const r of runs) {
      if (this.deps.cache.jobsOfRun(r.metadata.uid ?? "").some((j) => !isFinished(j))) holders.add(r.metadata.name ?? "");
    }
    for (const [key, exp] of this.expectedJobs) {
      const seen = this.deps.cache.jobsOfRun(exp.runUid).some((j) => j.metadata?.name === exp.job);
      if (seen || this.now() - exp.at > EXPECTATION_TTL_MS) this.expectedJobs.delete(key);
      else if (exp.workspace === `${service}/${repositoryKey}` && exp.ns === ns && exp.runUid !== uid)
        holders.add(byUid.get(exp.runUid)?.metadata.name ?? exp.runUid);
    }
    const mine = createdKey(run);
    const olderWaiting = runs.filter((r) => {
      if (holders.has(r.metadata.name ?? "") || isTerminalPhase(r.status?.phase) || r.spec.cancel || r.metadata.deletionTimestamp)
        return false;
      if (r.status?.nextRetryTime) return false; // in retry backoff: not contending now
      return createdKey(r) < mine;
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
  private resolveWorkspace(cluster: string, ns: string, service: string, repositoryKey: string): { name: string; exists: boolean } {
    const legacy = this.deps.cache.getPvc(cluster, ns, legacyWorkspacePvcName(service));
    const boundTo = legacy?.metadata?.annotations?.[Annotations.repository];
    if (legacy && (!boundTo || boundTo === repositoryKey)) return { name: legacyWorkspacePvcName(service), exists: true };
    // A claim the cache does not know yet is created again: AlreadyExists is success.
    const name = workspacePvcName(service, repositoryKey);
    return { name, exists: this.deps.cache.getPvc(cluster, ns, name) !== undefined };
  }

  /**
   * The Secrets the Job mounts must exist in the run's cluster: the controller never copies
   * credentials between clusters (docs/clusters.md); they are created there, by the same script.
   */
  private async checkSecrets(run: AnyRun, target: ClusterTarget): Promise<void> {
    const ns = run.metadata.namespace ?? "";
    const home = target.name === HOME_CLUSTER;
    const where = `${ns}/`;
    const inCluster = home ? "" : ` in cluster ${target.name}`;
    const context = home ? "" : ` --context <context of cluster ${target.name}>`;
    const need = async (name: string, key: string | undefined, hint: string) => {
      const cached = this.deps.cache.secretKeys(target.name, ns, name);
      if (cached && (!key || cached.includes(key))) return;
      // The cache may lag behind a Secret created just now: a live read confirms a problem
      // before it fails the run.
      const keys = await target.kube.getSecretKeys(ns, name);
      const fix = hint.replace("--namespace", `${context} --namespace`.trim());
      if (keys === null) throw new TerminalProblem(RunReasons.SecretMissing, `Secret ${where}${name} does not exist${inCluster}. ${fix}`);
      if (key && !keys.includes(key))
        throw new TerminalProblem(RunReasons.SecretKeyMissing, `Secret ${where}${name}${inCluster} has no key "${key}". ${fix}`);
    };
    const { apiKeySecretName, apiKeySecretKey } = this.deps.config.secrets;
    await need(
      apiKeySecretName,
      apiKeySecretKey,
      home
        ? "Set secrets.anthropicApiKey (or secrets.existingSecret) in the Helm values."
        : `Copy it there with: infra/scripts/register-cluster.sh --name ${target.name} --context <its kubeconfig context> --copy-api-key --namespace ${ns}`,
    );
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
