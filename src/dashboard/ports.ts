/**
 * What the dashboard's server side depends on, declared by it: live collections (the
 * controller's informers) and a few one-shot reads (Events, Jobs, workspace PVCs) that
 * src/kube/dashboard-kube.ts implements. Only plain shapes cross this boundary, no SDK types.
 */

/** A watched collection of objects: an informer's cache and its change notifications. */
export interface WatchedCollection<T> {
  list(namespace?: string): ReadonlyArray<T>;
  on(verb: "add" | "update" | "delete", cb: (obj: T) => void): void;
}

/** A Kubernetes Event about a run or one of its Jobs and Pods. */
export interface EventSummary {
  type: string;
  reason: string;
  message: string;
  /** "Kind/name" of the object the Event is about. */
  object: string;
  count: number;
  firstTime?: string;
  lastTime?: string;
}

/** One attempt's Job, reduced to what the dashboard shows. */
export interface JobSummary {
  name: string;
  uid: string;
  runUid: string;
  runName: string;
  service?: string;
  attempt: number;
  createdAt?: string;
  startTime?: string;
  completionTime?: string;
  active: number;
  succeeded: number;
  failed: number;
  /** A Complete or Failed condition is True. */
  finished: boolean;
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

/** A per-service workspace PVC. */
export interface WorkspaceSummary {
  name: string;
  service: string;
  phase: string;
  requested?: string;
  capacity?: string;
  storageClass?: string;
  accessModes: string[];
  createdAt?: string;
}

/** A pod of a run's Job. */
export interface PodSummary {
  name: string;
  uid: string;
  job?: string;
  phase: string;
  /** Why a container waits or ended (ImagePullBackOff, OOMKilled, ...). */
  reason?: string;
}

/** One-shot reads in the orchestrator's namespace. */
export interface DashboardKube {
  /** Events whose involved object has one of these uids, oldest first. */
  listEvents(uids: readonly string[]): Promise<EventSummary[]>;
  /** The Jobs the controller made, optionally only those of one run (by uid). */
  listJobs(runUid?: string): Promise<JobSummary[]>;
  listPods(runUid: string): Promise<PodSummary[]>;
  listWorkspaces(): Promise<WorkspaceSummary[]>;
}
