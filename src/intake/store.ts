/**
 * The RunStore port both intakes (the REST API in src/http and the webhook receiver in
 * src/webhook) write through. Declared here, by its consumers; src/kube/run-store.ts adapts it
 * to the Kubernetes API and tests use an in-memory implementation
 * (tests/support/memory-run-store.ts).
 */
import type { Readable } from "node:stream";
import type { Play } from "../api/play.js";
import type { AnyRun } from "../api/types.js";

/** The run kinds the intake writes. */
export const RunKinds = ["CodeRun", "DocsRun"] as const;
export type RunKind = (typeof RunKinds)[number];

/** Why a RunStore call failed; the HTTP layer maps each to one status code. */
export const StoreErrorReasons = {
  /** The object (name) exists already (409 with Status reason AlreadyExists). */
  AlreadyExists: "AlreadyExists",
  /** Any other 409: the object changed concurrently (stale resourceVersion) or is being deleted. */
  Conflict: "Conflict",
  NotFound: "NotFound",
  /** The API server rejected the object (422/400: schema, CEL rules). */
  Invalid: "Invalid",
  /** A pod exists but its container has not started, so there are no logs yet. */
  NotReady: "NotReady",
  /** The API server could not be reached or answered 5xx/429 (connection refused, timeout). */
  Unavailable: "Unavailable",
  /** The controller's own credentials were refused (401/403): an RBAC or kubeconfig problem. */
  Forbidden: "Forbidden",
} as const;
export type StoreErrorReason = (typeof StoreErrorReasons)[keyof typeof StoreErrorReasons];

/** The only error type a RunStore throws for API outcomes; anything else is a bug. */
export class RunStoreError extends Error {
  override readonly name = "RunStoreError";
  constructor(
    readonly reason: StoreErrorReason,
    message: string,
    /** Field-level causes reported by the API server (Status.details.causes). */
    readonly causes: { field?: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export function isStoreError(e: unknown, reason?: StoreErrorReason): e is RunStoreError {
  return e instanceof RunStoreError && (reason === undefined || e.reason === reason);
}

export interface JobLogOptions {
  follow: boolean;
  tailLines?: number;
  /** Container name (a regular or an init container); default the agent container (the pod's default container). */
  container?: string;
  /** Aborting stops the stream (client disconnected). */
  signal?: AbortSignal;
  /** The run's execution cluster (status.cluster); absent or "home": the controller's own. */
  cluster?: string;
}

/**
 * Storage of runs in one namespace: the custom resources, plus the logs of a run's Job pod.
 * Every method throws RunStoreError for API outcomes.
 */
export interface RunStore {
  readonly namespace: string;
  /** Creates the object as given (metadata.name must be set). AlreadyExists when the name is taken. */
  create<T extends AnyRun>(run: T): Promise<T>;
  get(kind: RunKind, name: string): Promise<AnyRun>;
  /** Lists runs of one kind whose labels equal all given labels. */
  list(kind: RunKind, labels?: Record<string, string>): Promise<AnyRun[]>;
  /** JSON merge-patches `.spec` (e.g. `{ cancel: true }`) and returns the updated object. */
  patchSpec(kind: RunKind, name: string, patch: Record<string, unknown>): Promise<AnyRun>;
  /**
   * Streams the logs of the newest pod of a Job (label job-name=<jobName>). NotFound when the
   * Job has no pod yet, NotReady when its container is still waiting to start.
   */
  openJobLogs(jobName: string, opts: JobLogOptions): Promise<Readable>;
  /** Names of the Secrets labelled `orchestrator.platform/mountable: "true"` (never their values). */
  listMountableSecrets(): Promise<string[]>;
}

/** Storage of Plays in one namespace (the Play routes); every method throws RunStoreError for API outcomes. */
export interface PlayStore {
  readonly namespace: string;
  /** AlreadyExists when the name is taken. */
  create(play: Play): Promise<Play>;
  get(name: string): Promise<Play>;
  list(labels?: Record<string, string>): Promise<Play[]>;
  /** JSON merge-patches `.spec` (e.g. `{ cancel: true }`). */
  patchSpec(name: string, patch: Record<string, unknown>): Promise<Play>;
}
