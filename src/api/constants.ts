/** API group, version and kinds of the orchestrator's custom resources. */
export const GROUP = "orchestrator.platform";
export const VERSION = "v1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const Kinds = { CodeRun: "CodeRun", DocsRun: "DocsRun", Play: "Play" } as const;
export type Kind = (typeof Kinds)[keyof typeof Kinds];

export const Plurals = { CodeRun: "coderuns", DocsRun: "docsruns", Play: "plays" } as const;

export const Phases = {
  Pending: "Pending",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Cancelled: "Cancelled",
} as const;
export type Phase = (typeof Phases)[keyof typeof Phases];

export const TERMINAL_PHASES: readonly Phase[] = [Phases.Succeeded, Phases.Failed, Phases.Cancelled];

/** Label keys put on every object the controller creates. Selectors use these. */
export const Labels = {
  app: "app",
  component: "component",
  managedBy: "app.kubernetes.io/managed-by",
  runName: "orchestrator.platform/run",
  runKind: "orchestrator.platform/kind",
  runUid: "orchestrator.platform/run-uid",
  attempt: "orchestrator.platform/attempt",
  taskId: "task-id",
  service: "service",
  githubUser: "github-user",
  contextVersion: "context-version",
  taskType: "task-type",
} as const;

export const APP_LABEL_VALUE = "orchestrator";
export const MANAGED_BY = "orchestrator-controller";

/** Condition types written to run status (metav1.Condition shape). */
export const ConditionTypes = {
  Ready: "Ready",
  JobCreated: "JobCreated",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Waiting: "Waiting",
  ConfigError: "ConfigError",
} as const;

/** Annotation on a Play-created CodeRun naming its Play stage. */
export const Annotations = {
  deliveryId: "orchestrator.platform/github-delivery",
  requestedBy: "orchestrator.platform/requested-by",
  idempotencyKey: "orchestrator.platform/idempotency-key",
  playStage: "orchestrator.platform/play-stage",
} as const;
