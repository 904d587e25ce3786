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

/**
 * Every label key the orchestrator writes or selects on: on the children of a run (Job,
 * ConfigMap, Pod), on runs created by the intake and on a Play's stage CodeRuns.
 */
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
  /**
   * sha256(Idempotency-Key) (40 hex) on intake-created runs: the key itself may hold characters
   * labels forbid; the label makes "was this key used before?" one selector query.
   */
  idempotencyKeyHash: "orchestrator.platform/idempotency-key-hash",
  /**
   * sha256(requester) (40 hex) on intake-created runs, so a requester's active runs are one
   * selector query (quotas). Only a hint: who asked is the requester annotation (requesterOf).
   */
  requesterHash: "orchestrator.platform/requester-hash",
  /** On a Secret: `"true"` makes it mountable into runs (envFromSecrets), besides authorization.mountableSecrets. */
  mountable: "orchestrator.platform/mountable",
  /** On a Play's stage CodeRuns: the Play (the Play's CodeRun informer selects on it). */
  play: "orchestrator.platform/play",
  /** On a Play's stage CodeRuns: the stage, and its iteration (implementation/remediation) or round (quality/testing). */
  playStage: "orchestrator.platform/play-stage",
  playIndex: "orchestrator.platform/play-index",
  /**
   * On a Secret in the controller's namespace: registers an execution cluster of that name (the
   * label's value); the Secret's `kubeconfig` key says how to reach it (docs/clusters.md).
   */
  cluster: "orchestrator.platform/cluster",
} as const;

/** The controller's own cluster: where runs land when neither spec.cluster nor a service default names another. */
export const HOME_CLUSTER = "home";
/** The key of a cluster Secret (labelled Labels.cluster) that holds the kubeconfig of the execution cluster. */
export const CLUSTER_KUBECONFIG_KEY = "kubeconfig";

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
  /** Runs placed in an execution cluster: whether the controller reaches it now. */
  ClusterReachable: "ClusterReachable",
} as const;

/** Every annotation key the orchestrator writes or reads. */
export const Annotations = {
  /** Who asked for the run (authenticated principal or GitHub sender). */
  requestedBy: "orchestrator.platform/requested-by",
  idempotencyKey: "orchestrator.platform/idempotency-key",
  /**
   * sha256 of what the request with that key asked for (route, validated body, principal): a
   * repeat with the same key is answered with the original response only if it asks the same.
   */
  requestDigest: "orchestrator.platform/request-digest",
  /** Which intake created the object: `api` | `webhook`. */
  source: "orchestrator.platform/source",
  /** The run a retry was made from. */
  retryOf: "orchestrator.platform/retry-of",
  /** Webhook-created runs: the delivery, event, repository, issue/PR, its URL and the rule. */
  deliveryId: "orchestrator.platform/github-delivery",
  githubEvent: "orchestrator.platform/github-event",
  githubRepository: "orchestrator.platform/github-repository",
  githubIssue: "orchestrator.platform/github-issue",
  githubUrl: "orchestrator.platform/github-url",
  webhookRule: "orchestrator.platform/webhook-rule",
  /** Webhook-created runs: id of the comment that asked (the 👀 reaction goes there). */
  githubComment: "orchestrator.platform/github-comment",
  /** Webhook-created runs: "true" when the issue is a pull request (the run gets a check run on its head). */
  githubPullRequest: "orchestrator.platform/github-pull-request",
  /**
   * What the run reporter wrote to GitHub for a run (JSON, src/reporter/run-report.ts), so each
   * state is written exactly once, also across restarts. Only the reporter writes it.
   */
  githubReport: "orchestrator.platform/github-report",
  /** On stage CodeRuns: the roster agent; the CodeRun controller adds its system prompt and tools. */
  agent: "orchestrator.platform/agent",
  /** On stage CodeRuns: the Play stage. */
  playStage: "orchestrator.platform/play-stage",
  /**
   * On a Play: a "re-run stage" request from a check run's requested_action, written by the
   * webhook intake as `{taskId}/{stage}/{deliveryId}` and handled once by the reconciler.
   */
  rerun: "orchestrator.platform/rerun",
  /**
   * On a Play: the last webhook delivery about its PR that reached a replica not leading. The
   * change wakes the Play on the leader (a delivery's wake-up is otherwise in-process only).
   */
  wake: "orchestrator.platform/wake",
  /** On a workspace PVC: the owner/repo (lowercase) whose clone it holds. */
  repository: "orchestrator.platform/repository",
  /**
   * The requester the intake authorized a run for (docs/security.md), and a digest of the spec it
   * authorized. Only the controller's ServiceAccount may set them (the chart's admission policy).
   */
  requester: "orchestrator.platform/requester",
  authorizedSpec: "orchestrator.platform/authorized-spec",
} as const;
