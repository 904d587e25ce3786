/**
 * In-memory RunStore for unit tests of the HTTP service and the webhook intake. It behaves like
 * the API server where the intake depends on it: names are unique per kind (AlreadyExists),
 * uid/creationTimestamp/resourceVersion are set on create, lists select by label equality, patches
 * merge into spec. Failures and latency can be injected.
 */
import { Readable } from "node:stream";
import type { AnyRun, RunStatus } from "../../src/api/types.js";
import { RunStoreError, type JobLogOptions, type RunKind, type RunStore, type StoreErrorReason } from "../../src/intake/store.js";

export interface MemoryRunStore extends RunStore {
  /** All stored objects (both kinds). */
  all(): AnyRun[];
  /** Sets status like the controller would. */
  setStatus(kind: RunKind, name: string, status: RunStatus): void;
  /** Next calls (all methods) fail with this reason until cleared with undefined. */
  failWith(reason: StoreErrorReason | undefined, message?: string): void;
  /** Every call waits this long first (simulates a slow API server). */
  delayMs: number;
  /** Job logs: text, "waiting" (container not started), or the error reading them throws. Missing = no pod. */
  jobLogs: Map<string, string | "waiting" | RunStoreError>;
  /** The cluster the last log read was asked of (the run's status.cluster). */
  lastLogCluster?: string | undefined;
  /** Number of create() calls (including failed ones). */
  createCalls: number;
  /** Secrets labelled mountable (listMountableSecrets). */
  labelledSecrets: string[];
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

export function createMemoryRunStore(namespace = "orchestrator", opts: { now?: () => Date } = {}): MemoryRunStore {
  const objects = new Map<string, AnyRun>();
  const now = opts.now ?? (() => new Date());
  let failure: { reason: StoreErrorReason; message: string } | undefined;
  let seq = 0;
  const key = (kind: RunKind, name: string) => `${kind}/${name}`;

  const store: MemoryRunStore = {
    namespace,
    delayMs: 0,
    jobLogs: new Map(),
    createCalls: 0,
    labelledSecrets: [],
    async listMountableSecrets() {
      await gate();
      return [...store.labelledSecrets];
    },
    async create(run) {
      store.createCalls++;
      await gate();
      const name = run.metadata.name;
      if (!name) throw new RunStoreError("Invalid", "metadata.name: Required value");
      if (objects.has(key(run.kind, name)))
        throw new RunStoreError("AlreadyExists", `${run.kind.toLowerCase()}s.orchestrator.platform "${name}" already exists`);
      seq++;
      const stored = clone({
        ...run,
        metadata: {
          ...run.metadata,
          namespace,
          uid: `uid-${seq}`,
          resourceVersion: String(seq),
          generation: 1,
          creationTimestamp: new Date(now().getTime() + seq).toISOString(),
        },
      });
      objects.set(key(run.kind, name), stored);
      return clone(stored) as typeof run;
    },
    async get(kind, name) {
      await gate();
      const o = objects.get(key(kind, name));
      if (!o) throw new RunStoreError("NotFound", `${kind.toLowerCase()}s.orchestrator.platform "${name}" not found`);
      return clone(o);
    },
    async list(kind, labels = {}) {
      await gate();
      return [...objects.values()]
        .filter((o) => o.kind === kind && Object.entries(labels).every(([k, v]) => o.metadata.labels?.[k] === v))
        .map(clone);
    },
    async patchSpec(kind, name, patch) {
      await gate();
      const o = objects.get(key(kind, name));
      if (!o) throw new RunStoreError("NotFound", `${kind.toLowerCase()}s.orchestrator.platform "${name}" not found`);
      Object.assign(o.spec, patch);
      o.metadata.generation = (o.metadata.generation ?? 1) + 1;
      return clone(o);
    },
    async openJobLogs(jobName: string, o: JobLogOptions) {
      await gate();
      store.lastLogCluster = o.cluster;
      // "<job>#<container>" holds one container's log; "<job>" any container's.
      const logs = store.jobLogs.get(`${jobName}#${o.container}`) ?? store.jobLogs.get(jobName);
      if (logs === undefined) throw new RunStoreError("NotFound", `no pod with label job-name=${jobName}`);
      if (logs === "waiting") throw new RunStoreError("NotReady", `pod ${jobName}-abcde container agent is ContainerCreating`);
      if (logs instanceof RunStoreError) throw logs;
      const lines = logs.split("\n");
      const text = o.tailLines !== undefined ? lines.slice(-o.tailLines).join("\n") : logs;
      return Readable.from([text]);
    },
    all: () => [...objects.values()].map(clone),
    setStatus(kind, name, status) {
      const o = objects.get(key(kind, name));
      if (!o) throw new Error(`no ${kind} ${name}`);
      o.status = { ...(o.status ?? {}), ...status };
    },
    failWith(reason, message = "injected failure") {
      failure = reason ? { reason, message } : undefined;
    },
  };

  async function gate(): Promise<void> {
    if (store.delayMs > 0) await new Promise((r) => setTimeout(r, store.delayMs));
    if (failure) throw new RunStoreError(failure.reason, failure.message);
  }

  return store;
}
