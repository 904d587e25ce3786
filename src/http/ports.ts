/** Ports of the HTTP service besides the intake's RunStore (src/intake/store.ts). */

/** Time source, injected so tests never depend on the wall clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
