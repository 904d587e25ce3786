/**
 * What the run reconciler needs from Kubernetes, declared here by the consumer. The adapter in
 * src/kube/controller-kube.ts implements it; unit tests use an in-memory fake.
 * Create calls treat AlreadyExists as success; delete calls treat NotFound as success.
 */
import type { CoreV1Event, V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import type { AnyRun, Kind } from "../api/index.js";

export interface ControllerKube {
  createPvc(pvc: V1PersistentVolumeClaim): Promise<void>;
  createConfigMap(cm: V1ConfigMap): Promise<void>;
  createJob(job: V1Job): Promise<void>;
  /** A live read, for when the cache may lag behind our own create. */
  getJob(namespace: string, name: string): Promise<V1Job | null>;
  deleteJob(namespace: string, name: string): Promise<void>;
  /**
   * Keys of a Secret's data, or null when it does not exist: a live read, only to confirm what
   * the cache says is missing before that fails a run (the cache may lag behind a new Secret).
   */
  getSecretKeys(namespace: string, name: string): Promise<string[] | null>;
  /** Merge-patches the status subresource; null values delete fields. */
  patchRunStatus(kind: Kind, namespace: string, name: string, status: Record<string, unknown>): Promise<void>;
  /** Creates an Event; AlreadyExists (same deterministic name) is success, so each is emitted once. */
  createEvent(event: CoreV1Event): Promise<void>;
  /**
   * Deletes a run's Jobs and ConfigMaps (by its uid label): in an execution cluster, where no
   * owner reference can point at the run, this is what garbage collection does at home.
   */
  deleteRunChildren(namespace: string, runUid: string): Promise<void>;
}

/** One execution cluster's access: its workload calls and its informers. */
export interface ClusterConnection {
  kube: ControllerKube;
  source: InformerSource;
  /** One cheap request; rejects when the cluster's API server does not answer in time. */
  ping(): Promise<void>;
}

/** Turns a registered cluster's kubeconfig into a connection (src/kube/clusters.ts). */
export interface ClusterConnector {
  /** Throws an Error saying what is wrong with the kubeconfig (malformed, exec plugins, files). */
  connect(name: string, kubeconfig: string): ClusterConnection;
}

/** Reads from the informers' caches: a run's happy path reads nothing from the API server. */
export interface ControllerCache {
  getRun(kind: Kind, namespace: string, name: string): AnyRun | undefined;
  listRuns(kind: Kind, namespace: string): readonly AnyRun[];
  /** The runs (both kinds) that `requester` asked for (requesterOf), by uid: an index, not a scan. */
  runsOfRequester(namespace: string, requester: string): ReadonlyMap<string, AnyRun>;
  /** The CodeRuns of `service`, by uid: an index, not a scan. */
  codeRunsOfService(namespace: string, service: string): ReadonlyMap<string, AnyRun>;
  /** The run's Jobs, in whichever cluster they are. */
  jobsOfRun(uid: string): V1Job[];
  /** The rest reads one cluster's cache: the run's execution cluster (HOME_CLUSTER = the controller's own). */
  podsOfJob(cluster: string, namespace: string, jobName: string): V1Pod[];
  getPvc(cluster: string, namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  /** Keys of a cached Secret (the cache keeps no values), or undefined when the cache has none. */
  secretKeys(cluster: string, namespace: string, name: string): string[] | undefined;
  /** Names of the cached Secrets labelled `orchestrator.platform/mountable: "true"`. */
  mountableSecrets(cluster: string, namespace: string): ReadonlySet<string>;
  /** The cluster a run's Jobs go to: its workload calls and whether it answers; undefined when not registered. */
  cluster(name: string): ClusterTarget | undefined;
  /** Why a cluster Secret of this name cannot be used, when one is broken. */
  clusterProblem?(name: string): string | undefined;
  /** Unfinished Jobs in a cluster, by run uid. */
  activeRunsIn(cluster: string): ReadonlySet<string>;
}

export interface ClusterTarget {
  name: string;
  kube: ControllerKube;
  /** Its Job informer is synced and watching. */
  reachable: boolean;
  /** Why not, when not (the informer's last error). */
  lastError: string | undefined;
}

/** A collection the manager keeps an informer cache of. */
export const Resources = {
  CodeRun: "coderuns",
  DocsRun: "docsruns",
  Play: "plays",
  Job: "jobs",
  Pod: "pods",
  /** Values are blanked in the cache: the controller reads only which keys a Secret has. */
  Secret: "secrets",
  PersistentVolumeClaim: "persistentvolumeclaims",
  /** Secrets registering execution clusters (labelled Labels.cluster), values kept: their kubeconfig. */
  ClusterSecret: "clustersecrets",
} as const;
export type Resource = (typeof Resources)[keyof typeof Resources];

export type InformerEvent = "add" | "update" | "delete";

/** One shared informer: a cache of a collection that keeps itself watching. */
export interface SharedInformer<T> {
  on(event: InformerEvent, handler: (obj: T) => void): void;
  list(namespace?: string): ReadonlyArray<T>;
  get(name: string, namespace?: string): T | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Listed once and watching now. */
  readonly healthy: boolean;
  readonly lastError: string | undefined;
  /** A failed informer waiting out its backoff tries again now (its API server answers again). */
  retryNow?(): void;
}

/** Where the manager's informers come from (src/kube/informer.ts). */
export interface InformerSource {
  informer<T>(resource: Resource, namespace: string, labelSelector?: string): SharedInformer<T>;
  /**
   * Whether the collection can be listed at all: "missing" (CRD not installed, 404),
   * "forbidden" (RBAC, 403); anything else (unreachable, ...) counts as "ok" and is retried.
   */
  probe(resource: Resource, namespace: string): Promise<"ok" | "missing" | "forbidden">;
}
