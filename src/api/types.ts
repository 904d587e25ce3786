/**
 * TypeScript shapes of the CodeRun and DocsRun custom resources. The CRD schema in
 * infra/charts/orchestrator/crds/platform-crds.yaml is the source of truth for the API server;
 * tests/unit/crd-drift.test.ts keeps these types, that schema and the examples in sync.
 */
import type { Phase } from "./constants.js";

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface EnvFromSecret {
  /** Name of the environment variable in the agent container. */
  name: string;
  secretName: string;
  secretKey: string;
}

/** Fields shared by CodeRun and DocsRun specs. */
export interface RunLimits {
  /** Wall-clock limit of one attempt's Job (activeDeadlineSeconds). Default from config. */
  timeoutSeconds?: number;
  /** Retries after a failed attempt. Default from config. */
  maxRetries?: number;
  /** Max agent turns per attempt. Default from config. */
  maxTurns?: number;
  /** Dollar budget of one attempt, metered by the model proxy at list prices. Default from config (0 = none). */
  maxCostUsd?: number;
  /** Set true to stop the run: its Job is deleted and the run ends Cancelled. */
  cancel?: boolean;
  /**
   * The execution cluster (a registered cluster Secret's name) its Jobs run in. Default: the
   * service's entry in controller.clusters.serviceDefaults, else the controller's own cluster.
   */
  cluster?: string;
}

/** The service, repositories and directories a CodeRun (or a Play's stage runs) work on. */
export interface ServiceTarget {
  service: string;
  repositoryUrl: string;
  docsRepositoryUrl: string;
  docsProjectDirectory?: string;
  docsBranch?: string;
  workingDirectory?: string;
}

export interface CodeRunSpec extends RunLimits, ServiceTarget {
  taskId: number;
  model: string;
  githubUser?: string;
  githubApp?: string;
  localTools?: string;
  remoteTools?: string;
  contextVersion?: number;
  promptModification?: string;
  continueSession?: boolean;
  overwriteMemory?: boolean;
  env?: Record<string, string>;
  envFromSecrets?: EnvFromSecret[];
}

export interface DocsRunSpec extends RunLimits {
  repositoryUrl: string;
  workingDirectory: string;
  sourceBranch: string;
  model?: string;
  githubUser?: string;
  githubApp?: string;
  includeCodebase?: boolean;
}

/** The JSON the agent runner writes to its termination message; copied into status. */
export interface AgentResult {
  outcome: "succeeded" | "failed" | "budget-exceeded" | "no-changes";
  reason?: string;
  message?: string;
  pullRequestUrl?: string;
  branch?: string;
  commit?: string;
  turns?: number;
  /** Tool calls the agent made (all tools). */
  toolCalls?: number;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  /** What the agent did on GitHub through its scoped tools (refused calls included). */
  githubActions?: GitHubAction[];
}

/** One call of the agent's scoped GitHub tools. */
export interface GitHubAction {
  tool: string;
  /** RFC 3339. */
  at: string;
  pullRequest?: number;
  detail: string;
  url?: string;
  /** The call was out of scope (or GitHub failed it): nothing changed. */
  refused?: boolean;
}

export interface RunStatus {
  phase?: Phase;
  message?: string;
  reason?: string;
  lastUpdate?: string;
  jobName?: string;
  configmapName?: string;
  pullRequestUrl?: string;
  /** Attempts started so far (1 = first attempt). */
  attempts?: number;
  /** Retries started so far (attempts - 1); kept for compatibility with the original. */
  retryCount?: number;
  startTime?: string;
  completionTime?: string;
  observedGeneration?: number;
  conditions?: Condition[];
  workCompleted?: boolean;
  /** When the next retry may start (RFC 3339), while a failed attempt waits for backoff. */
  nextRetryTime?: string;
  result?: AgentResult;
  /** Where the run's first attempt was placed; later attempts stay there ("home" = the controller's own cluster). */
  cluster?: string;
}

export interface CodeRunStatus extends RunStatus {
  contextVersion?: number;
  sessionId?: string;
}

export type DocsRunStatus = RunStatus;

export interface CodeRun {
  apiVersion: "orchestrator.platform/v1";
  kind: "CodeRun";
  metadata: ObjectMeta;
  spec: CodeRunSpec;
  status?: CodeRunStatus;
}

export interface DocsRun {
  apiVersion: "orchestrator.platform/v1";
  kind: "DocsRun";
  metadata: ObjectMeta;
  spec: DocsRunSpec;
  status?: DocsRunStatus;
}

export type AnyRun = CodeRun | DocsRun;
