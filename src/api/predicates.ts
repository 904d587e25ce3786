/** The run and Play predicates, defined once: "finished" and "active". */
import { TERMINAL_PHASES, type Phase } from "./constants.js";

/** Succeeded, Failed or Cancelled. An unset phase (a run nobody has reconciled yet) is not terminal. */
export function isTerminalPhase(phase: Phase | undefined): boolean {
  return phase !== undefined && TERMINAL_PHASES.includes(phase);
}

/**
 * Not finished yet: no phase, Pending or Running. A run with spec.cancel is still active (it
 * holds its workspace) until the controller has stopped its Job and written Cancelled.
 */
export function isActive(obj: { status?: { phase?: Phase } }): boolean {
  return !isTerminalPhase(obj.status?.phase);
}
