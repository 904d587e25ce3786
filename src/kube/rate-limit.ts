import { isAlreadyExists, isNotFound } from "./errors.js";
import { TokenBucket } from "../util/rate-limit.js";

export { TokenBucket };

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
