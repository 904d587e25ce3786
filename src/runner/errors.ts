/** Errors of the agent runner. Each carries a stable `reason` (src/api/reasons.ts) that ends up in the run's status. */
import type { Reason } from "../api/reasons.js";

/** A failure with a stable reason and a message that says what to do next. */
export class RunnerError extends Error {
  override readonly name = "RunnerError";
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
