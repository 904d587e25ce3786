/**
 * An informer (list + watch + cache) that keeps itself alive: client-node's ListWatch stops on
 * a watch or list error and leaves restarting to the caller; this wrapper restarts it with
 * exponential backoff and reports whether it is synced and healthy (for /ready).
 */
import { ListWatch, type Informer, type Watch, type KubernetesObject, type ObjectCache } from "@kubernetes/client-node";
import { GROUP, Kinds, Plurals, VERSION } from "../api/constants.js";
import type { InformerSource, Resource, SharedInformer } from "../controller/ports.js";
import type { Logger } from "../observability/logger.js";
import type { KubeClients } from "./clients.js";
import { statusCode } from "./errors.js";
import { watchFn } from "./watch.js";

export type Handler<T> = (obj: T) => void;

/** client-node's informer: list + watch + cache, restarted by nobody. */
export type InformerCore<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export class ResilientInformer<T extends KubernetesObject> implements SharedInformer<T> {
  private started = false;
  private stopped = false;
  private errored = false;
  private backoffMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Ends the wait between first-start attempts early (retryNow). */
  private wake: (() => void) | undefined;
  /** True once a list succeeded; stays true across watch restarts (the cache is still useful). */
  synced = false;
  lastError: string | undefined;

  constructor(
    private readonly inner: InformerCore<T>,
    private readonly path: string,
    private readonly log: Logger,
  ) {
    this.inner.on("error", (err: unknown) => this.onError(err));
    this.inner.on("connect", () => {
      this.errored = false;
      this.lastError = undefined;
    });
  }

  get healthy(): boolean {
    return this.synced && !this.errored;
  }

  on(verb: "add" | "update" | "delete", cb: Handler<T>): void {
    this.inner.on(verb, cb);
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.inner.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.inner.get(name, namespace);
  }

  /** Resolves after the first successful list; keeps retrying until then (or until stop()). */
  async start(): Promise<void> {
    this.started = true;
    while (!this.stopped) {
      this.errored = false;
      await this.inner.start().catch((err: unknown) => this.onError(err));
      if (!this.errored) {
        this.synced = true;
        this.backoffMs = 500;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, this.nextBackoff());
      });
      this.wake = undefined;
    }
  }

  retryNow(): void {
    if (this.stopped || this.healthy) return;
    this.backoffMs = 500;
    this.wake?.();
    if (!this.restartTimer) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.restart();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.inner.stop();
  }

  private nextBackoff(): number {
    const ms = this.backoffMs;
    this.backoffMs = Math.min(30_000, this.backoffMs * 2);
    return ms;
  }

  private onError(err: unknown): void {
    this.errored = true;
    this.lastError = (err as Error)?.message ?? String(err);
    if (!this.started || this.stopped || !this.synced || this.restartTimer) return;
    const delay = this.nextBackoff();
    this.log.warn({ path: this.path, err: this.lastError, retryInMs: delay }, "Watch failed; restarting informer");
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restart();
    }, delay);
  }

  private restart(): void {
    if (this.stopped) return;
    this.errored = false;
    // start() rejects when authentication or an event handler throws: that is one more
    // failed attempt (restarted with backoff), never an unhandled rejection.
    this.inner.start().then(
      () => {
        if (!this.errored) this.backoffMs = 500;
      },
      (err: unknown) => this.onError(err),
    );
  }
}

/**
 * What the caches keep of an object: only what the controllers read. Dropped: `managedFields` and
 * last-applied annotations, a Pod's spec, a Job's spec (its metadata and status are read), a
 * claim's spec and status (its existence and annotations are read), and a Secret's values (only
 * its keys are read). Like client-go's SetTransform, this runs before an object enters the cache.
 */
export function stripForCache<T extends KubernetesObject>(obj: T, keepData = false): T {
  const o = obj as KubernetesObject & { spec?: { template?: unknown }; data?: Record<string, string>; stringData?: unknown };
  if (o.metadata) {
    delete o.metadata.managedFields;
    if (o.metadata.annotations?.[LAST_APPLIED]) delete o.metadata.annotations[LAST_APPLIED];
  }
  if (o.kind === "Pod" || o.kind === "Job") delete o.spec;
  if (o.kind === "PersistentVolumeClaim") {
    delete o.spec;
    delete (o as { status?: unknown }).status;
  }
  if (o.kind === "Secret" && !keepData) {
    o.data = Object.fromEntries(Object.keys({ ...o.data, ...(o.stringData as object | undefined) }).map((k) => [k, ""]));
    delete o.stringData;
  }
  return obj;
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

interface Collection {
  path: (namespace: string) => string;
  kind: string;
  /** Keep a Secret's values (cluster Secrets: the controller needs their kubeconfig). */
  keepData?: boolean;
  list: (
    clients: KubeClients,
    namespace: string,
    labelSelector: string | undefined,
  ) => Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>;
}

const custom = (plural: string, kind: string): Collection => ({
  kind,
  path: (ns) => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`,
  list: (c, namespace, labelSelector) =>
    c.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, labelSelector }) as never,
});

const COLLECTIONS: Record<Resource, Collection> = {
  coderuns: custom(Plurals.CodeRun, Kinds.CodeRun),
  docsruns: custom(Plurals.DocsRun, Kinds.DocsRun),
  plays: custom(Plurals.Play, Kinds.Play),
  jobs: {
    kind: "Job",
    path: (ns) => `/apis/batch/v1/namespaces/${ns}/jobs`,
    list: (c, namespace, labelSelector) => c.batch.listNamespacedJob({ namespace, labelSelector }),
  },
  pods: {
    kind: "Pod",
    path: (ns) => `/api/v1/namespaces/${ns}/pods`,
    list: (c, namespace, labelSelector) => c.core.listNamespacedPod({ namespace, labelSelector }),
  },
  secrets: {
    kind: "Secret",
    path: (ns) => `/api/v1/namespaces/${ns}/secrets`,
    list: (c, namespace, labelSelector) => c.core.listNamespacedSecret({ namespace, labelSelector }),
  },
  clustersecrets: {
    kind: "Secret",
    keepData: true,
    path: (ns) => `/api/v1/namespaces/${ns}/secrets`,
    list: (c, namespace, labelSelector) => c.core.listNamespacedSecret({ namespace, labelSelector }),
  },
  persistentvolumeclaims: {
    kind: "PersistentVolumeClaim",
    path: (ns) => `/api/v1/namespaces/${ns}/persistentvolumeclaims`,
    list: (c, namespace, labelSelector) => c.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }),
  },
};

/**
 * Informers over the collections the controllers watch, every object passed through
 * stripForCache, on list and on watch alike. List items lack kind; it is set from the collection.
 */
export function createInformerSource(clients: KubeClients, log: Logger): InformerSource {
  const watch = watchFn(clients.kc);
  return {
    informer<T>(resource: Resource, namespace: string, labelSelector?: string): SharedInformer<T> {
      const c = COLLECTIONS[resource];
      const strip = <O extends KubernetesObject>(o: O): O => stripForCache(Object.assign(o, { kind: o.kind ?? c.kind }), c.keepData);
      const listFn = async () => {
        const res = await c.list(clients, namespace, labelSelector);
        return { ...res, items: res.items.map(strip) } as never;
      };
      const stripping = {
        watch: (
          path: string,
          query: Record<string, string | number | boolean | undefined>,
          callback: (phase: string, obj: KubernetesObject, raw: unknown) => void,
          done: (err: unknown) => void,
        ) =>
          watch(
            path,
            query,
            (phase, obj: KubernetesObject, raw) => callback(phase, phase === "ERROR" || phase === "BOOKMARK" ? obj : strip(obj), raw),
            done,
          ),
      } as unknown as Watch;
      const inner = new ListWatch<KubernetesObject>(c.path(namespace), stripping, listFn, false, labelSelector);
      return new ResilientInformer(inner, c.path(namespace), log) as unknown as SharedInformer<T>;
    },
    async probe(resource, namespace) {
      try {
        await COLLECTIONS[resource].list(clients, namespace, undefined);
        return "ok";
      } catch (e) {
        const code = statusCode(e);
        return code === 404 ? "missing" : code === 403 ? "forbidden" : "ok";
      }
    },
  };
}
