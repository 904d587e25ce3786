/**
 * Exhaustive key lists of the TypeScript types: `Record<keyof T, true>` makes the compiler
 * reject a missing or extra key, and tests/unit/crd-drift.test.ts compares these lists with
 * the CRD schema, so types and schema cannot drift apart.
 */
import type { AgentResult, CodeRunSpec, CodeRunStatus, DocsRunSpec, DocsRunStatus, EnvFromSecret } from "./types.js";

type Keys<T> = Record<keyof Required<T>, true>;

export const CODE_RUN_SPEC_KEYS: Keys<CodeRunSpec> = {
  taskId: true, service: true, repositoryUrl: true, docsRepositoryUrl: true, docsProjectDirectory: true, docsBranch: true,
  workingDirectory: true, model: true, githubUser: true, githubApp: true, localTools: true, remoteTools: true,
  contextVersion: true, promptModification: true, continueSession: true, overwriteMemory: true, env: true, envFromSecrets: true,
  timeoutSeconds: true, maxRetries: true, maxTurns: true, cancel: true,
};

export const DOCS_RUN_SPEC_KEYS: Keys<DocsRunSpec> = {
  repositoryUrl: true, workingDirectory: true, sourceBranch: true, model: true, githubUser: true, githubApp: true,
  includeCodebase: true, timeoutSeconds: true, maxRetries: true, maxTurns: true, cancel: true,
};

export const DOCS_RUN_STATUS_KEYS: Keys<DocsRunStatus> = {
  phase: true, message: true, reason: true, lastUpdate: true, jobName: true, configmapName: true, pullRequestUrl: true,
  attempts: true, retryCount: true, startTime: true, completionTime: true, observedGeneration: true, conditions: true,
  workCompleted: true, nextRetryTime: true, result: true,
};

export const CODE_RUN_STATUS_KEYS: Keys<CodeRunStatus> = { ...DOCS_RUN_STATUS_KEYS, contextVersion: true, sessionId: true };

export const ENV_FROM_SECRET_KEYS: Keys<EnvFromSecret> = { name: true, secretName: true, secretKey: true };

export const AGENT_RESULT_KEYS: Keys<AgentResult> = {
  outcome: true, reason: true, message: true, pullRequestUrl: true, branch: true, commit: true, turns: true,
  inputTokens: true, outputTokens: true, costUsd: true,
};
