import { isAlreadyExists, isNotFound } from "./errors.js";

/** A token bucket like client-go's QPS/Burst limiter, so one controller cannot flood the API server. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private queue: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly qps: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
  }

  /** Resolves when a request may be sent. */
  acquire(): Promise<void> {
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, ((1 - this.tokens) / this.qps) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.queue.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.queue.shift()?.();
      }
      if (this.queue.length > 0) this.schedule();
    }, wait);
  }
}

/** API calls through one limiter, with the two outcomes every adapter treats as success. */
export interface LimitedCalls {
  call<T>(fn: () => Promise<T>): Promise<T>;
  /** AlreadyExists is success (deterministic names). */
  ignoreExists(fn: () => Promise<unknown>): Promise<void>;
  /** NotFound is null. */
  orNull<T>(fn: () => Promise<T>): Promise<T | null>;
}

/**
 * Wraps API calls in one process-wide limiter. Every adapter of the controller process gets the
 * same TokenBucket, so `controller.qps` is the limit of the process, as in client-go, and not
 * of each adapter.
 */
export function limitedCalls(limiter: TokenBucket): LimitedCalls {
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    await limiter.acquire();
    return fn();
  };
  return {
    call,
    async ignoreExists(fn) {
      try {
        await call(fn);
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    },
    async orNull(fn) {
      try {
        return await call(fn);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
  };
}
