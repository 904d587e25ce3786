/**
 * Exhaustive key lists of the TypeScript types: `Record<keyof T, true>` makes the compiler
 * reject a missing or extra key, and tests/unit/crd-drift.test.ts compares these lists with
 * the CRD schema, so types and schema cannot drift apart.
 */
import type {
  PlayAgents,
  PlayCheckRunRecord,
  PlayFeedbackWatermarks,
  PlayHistoryEntry,
  PlayPullRequest,
  PlaySpec,
  PlayStatus,
  PlayTaskState,
} from "./play.js";
import type { AgentResult, GitHubAction, CodeRunSpec, CodeRunStatus, DocsRunSpec, DocsRunStatus, EnvFromSecret } from "./types.js";

type Keys<T> = Record<keyof Required<T>, true>;

export const CODE_RUN_SPEC_KEYS: Keys<CodeRunSpec> = {
  taskId: true,
  service: true,
  repositoryUrl: true,
  docsRepositoryUrl: true,
  docsProjectDirectory: true,
  docsBranch: true,
  workingDirectory: true,
  model: true,
  githubUser: true,
  githubApp: true,
  localTools: true,
  remoteTools: true,
  contextVersion: true,
  promptModification: true,
  continueSession: true,
  overwriteMemory: true,
  env: true,
  envFromSecrets: true,
  timeoutSeconds: true,
  maxRetries: true,
  maxTurns: true,
  maxCostUsd: true,
  cancel: true,
  cluster: true,
};

export const DOCS_RUN_SPEC_KEYS: Keys<DocsRunSpec> = {
  repositoryUrl: true,
  workingDirectory: true,
  sourceBranch: true,
  model: true,
  githubUser: true,
  githubApp: true,
  includeCodebase: true,
  timeoutSeconds: true,
  maxRetries: true,
  maxTurns: true,
  maxCostUsd: true,
  cancel: true,
  cluster: true,
};

export const DOCS_RUN_STATUS_KEYS: Keys<DocsRunStatus> = {
  phase: true,
  message: true,
  reason: true,
  lastUpdate: true,
  jobName: true,
  configmapName: true,
  pullRequestUrl: true,
  attempts: true,
  retryCount: true,
  startTime: true,
  completionTime: true,
  observedGeneration: true,
  conditions: true,
  workCompleted: true,
  nextRetryTime: true,
  result: true,
  cluster: true,
};

export const CODE_RUN_STATUS_KEYS: Keys<CodeRunStatus> = { ...DOCS_RUN_STATUS_KEYS, contextVersion: true, sessionId: true };

export const ENV_FROM_SECRET_KEYS: Keys<EnvFromSecret> = { name: true, secretName: true, secretKey: true };

export const AGENT_RESULT_KEYS: Keys<AgentResult> = {
  outcome: true,
  reason: true,
  message: true,
  pullRequestUrl: true,
  branch: true,
  commit: true,
  turns: true,
  toolCalls: true,
  inputTokens: true,
  outputTokens: true,
  costUsd: true,
  githubActions: true,
};

export const GITHUB_ACTION_KEYS: Keys<GitHubAction> = { tool: true, at: true, pullRequest: true, detail: true, url: true, refused: true };

// ---- Play -----------------------------------------------------------------------------------

export const PLAY_SPEC_KEYS: Keys<PlaySpec> = {
  service: true,
  repositoryUrl: true,
  docsRepositoryUrl: true,
  docsProjectDirectory: true,
  docsBranch: true,
  workingDirectory: true,
  tasks: true,
  agents: true,
  models: true,
  maxRemediationIterations: true,
  env: true,
  stageEnv: true,
  cancel: true,
  cluster: true,
};

export const PLAY_AGENTS_KEYS: Keys<PlayAgents> = { implementation: true, quality: true, testing: true };

export const PLAY_STATUS_KEYS: Keys<PlayStatus> = {
  phase: true,
  reason: true,
  message: true,
  lastUpdate: true,
  startTime: true,
  completionTime: true,
  observedGeneration: true,
  conditions: true,
  currentTaskIndex: true,
  currentTask: true,
  stage: true,
  agent: true,
  pullRequest: true,
  iteration: true,
  activeRun: true,
  task: true,
  history: true,
  reported: true,
};

export const PLAY_PULL_REQUEST_KEYS: Keys<PlayPullRequest> = { number: true, url: true, headSha: true };

export const PLAY_HISTORY_KEYS: Keys<PlayHistoryEntry> = {
  taskId: true,
  stage: true,
  agent: true,
  run: true,
  iteration: true,
  outcome: true,
  pullRequest: true,
  headSha: true,
  time: true,
  message: true,
};

export const PLAY_TASK_STATE_KEYS: Keys<PlayTaskState> = {
  round: true,
  qaBaseSha: true,
  qaIteration: true,
  testingAfterReviewId: true,
  seen: true,
  rerun: true,
};

export const PLAY_WATERMARK_KEYS: Keys<PlayFeedbackWatermarks> = { comment: true, review: true, reviewComment: true, checkRun: true };

export const PLAY_CHECK_RUN_RECORD_KEYS: Keys<PlayCheckRunRecord> = { key: true, id: true, headSha: true, state: true };
