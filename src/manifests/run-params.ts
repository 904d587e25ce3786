/** Pure derivation of a run's effective settings (spec values with config defaults). */
import type { RunParameters } from "../api/runner-contract.js";
import type { AnyRun } from "../api/types.js";
import type { Config } from "../config/schema.js";

export type BuilderConfig = Pick<Config, "agent" | "job" | "secrets" | "storage" | "models" | "github" | "permissions" | "play">;

export interface EffectiveLimits {
  timeoutSeconds: number;
  maxRetries: number;
  maxTurns: number;
  /** The runner's budget: below the Job deadline so it can push work in progress. */
  timeBudgetSeconds: number;
  /** Dollar budget of the attempt; 0 = none. */
  maxCostUsd: number;
}

export function computeLimits(run: AnyRun, config: BuilderConfig): EffectiveLimits {
  const timeoutSeconds = run.spec.timeoutSeconds ?? config.job.activeDeadlineSeconds;
  const margin = Math.min(config.job.budgetMarginSeconds, Math.floor(timeoutSeconds / 4));
  return {
    timeoutSeconds,
    maxRetries: run.spec.maxRetries ?? config.job.maxRetries,
    maxTurns: run.spec.maxTurns ?? config.job.maxTurns,
    timeBudgetSeconds: Math.max(30, timeoutSeconds - margin),
    maxCostUsd:
      run.spec.maxCostUsd ??
      (run.kind === "CodeRun" ? config.job.maxCostUsdByService[run.spec.service] : undefined) ??
      config.job.maxCostUsd,
  };
}

export function modelOf(run: AnyRun, config: BuilderConfig): string {
  if (run.kind === "CodeRun") return run.spec.model || config.models.defaultCodeModel;
  return run.spec.model || config.models.defaultDocsModel;
}

/** The feature branch of a CodeRun (`feature/task-{id}-implementation`) or a DocsRun's docs branch. */
export function branchOf(run: AnyRun, config: BuilderConfig): string {
  if (run.kind === "CodeRun") return `${config.agent.branchPrefix}task-${run.spec.taskId}-implementation`;
  return `docs/auto-gen-${run.metadata.name ?? "run"}`;
}

/** run.json for one attempt. Retries always continue the previous session. */
export function computeRunParameters(run: AnyRun, attempt: number, config: BuilderConfig): RunParameters {
  const limits = computeLimits(run, config);
  const common = {
    runName: run.metadata.name ?? "",
    namespace: run.metadata.namespace ?? "",
    attempt,
    model: modelOf(run, config),
    repositoryUrl: run.spec.repositoryUrl,
    branch: branchOf(run, config),
    githubUser: run.spec.githubUser,
    githubApp: run.spec.githubApp,
    maxTurns: limits.maxTurns,
    timeBudgetSeconds: limits.timeBudgetSeconds,
    ...(limits.maxCostUsd > 0 ? { maxCostUsd: limits.maxCostUsd } : {}),
    githubApiUrl: config.github.apiUrl,
    githubUrl: config.github.url,
    stageLabels: [config.play.readyForQaLabel],
  };
  if (run.kind === "CodeRun") {
    const s = run.spec;
    return {
      kind: "code",
      ...common,
      workingDirectory: s.workingDirectory || s.service,
      baseBranch: config.agent.baseBranch,
      continueSession: attempt > 1 || (s.continueSession ?? false),
      overwriteMemory: s.overwriteMemory ?? false,
      prLabels: [`task-${s.taskId}`],
      taskId: s.taskId,
      service: s.service,
      docsRepositoryUrl: s.docsRepositoryUrl,
      docsBranch: s.docsBranch ?? "main",
      docsProjectDirectory: s.docsProjectDirectory || ".",
      localTools: s.localTools,
      remoteTools: s.remoteTools,
    };
  }
  const s = run.spec;
  return {
    kind: "docs",
    ...common,
    workingDirectory: s.workingDirectory,
    baseBranch: s.sourceBranch,
    continueSession: attempt > 1,
    overwriteMemory: false,
    prLabels: ["docs"],
    includeCodebase: s.includeCodebase ?? false,
  };
}
