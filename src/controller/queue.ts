/**
 * A work queue with client-go's semantics: a key is queued at most once (dirty set), a key is
 * processed by at most one worker at a time (a key added while processing is re-queued when
 * done), failures back off exponentially per key, and delayed adds implement requeue-after.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { unref?: () => void } | number | NodeJS.Timeout;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly dirty = new Map<string, number>(); // key → time added
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; handle: unknown }>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly clock: Clock;

  constructor(opts: QueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 300_000;
    this.clock = opts.clock ?? systemClock;
  }

  /** Keys waiting (not counting those being processed). */
  get length(): number {
    return this.queue.length - this.head;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.set(key, this.clock.now());
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  /** Adds the key after `ms`; an earlier pending delayed add wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.handle);
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    if (typeof handle === "object" && handle && "unref" in handle && typeof handle.unref === "function") handle.unref();
    this.timers.set(key, { at, handle });
  }

  /** Re-adds after an exponential per-key backoff (base·2^failures, capped). */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count after a successful reconcile. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined when shut down. Returns the key and how long it waited. */
  async get(): Promise<{ key: string; waitedMs: number } | undefined> {
    const key =
      this.length > 0
        ? this.pop()
        : await new Promise<string | undefined>((resolve) => (this.shuttingDown ? resolve(undefined) : this.waiters.push(resolve)));
    if (key === undefined) return undefined;
    const added = this.dirty.get(key) ?? this.clock.now();
    this.dirty.delete(key);
    this.processing.add(key);
    return { key, waitedMs: this.clock.now() - added };
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) this.clock.clearTimeout(t.handle);
    this.timers.clear();
    const w = this.waiters;
    this.waiters = [];
    w.forEach((resolve) => resolve(undefined));
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(key);
      return;
    }
    this.queue.push(key);
  }

  private pop(): string {
    const key = this.queue[this.head++] as string;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return key;
  }
}
