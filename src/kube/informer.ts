/**
 * An informer (list + watch + cache) that keeps itself alive: client-node's ListWatch stops on
 * a watch or list error and leaves restarting to the caller; this wrapper restarts it with
 * exponential backoff and reports whether it is synced and healthy (for /ready).
 */
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise, type ObjectCache } from "@kubernetes/client-node";
import type { Logger } from "../observability/logger.js";

export type Handler<T> = (obj: T) => void;

/** client-node's informer: list + watch + cache, restarted by nobody. */
export type InformerCore<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** A ResilientInformer over client-node's informer for one collection path. */
export function createInformer<T extends KubernetesObject>(kc: KubeConfig, path: string, listFn: ListPromise<T>, labelSelector: string | undefined, log: Logger): ResilientInformer<T> {
  return new ResilientInformer(makeInformer<T>(kc, path, listFn, labelSelector), path, log);
}

export class ResilientInformer<T extends KubernetesObject> {
  private started = false;
  private stopped = false;
  private errored = false;
  private backoffMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  /** True once a list succeeded; stays true across watch restarts (the cache is still useful). */
  synced = false;
  lastError: string | undefined;

  constructor(private readonly inner: InformerCore<T>, private readonly path: string, private readonly log: Logger) {
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
      await new Promise((r) => setTimeout(r, this.nextBackoff()));
    }
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
    }, delay);
  }
}
