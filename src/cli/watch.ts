/**
 * `--wait` and `runs watch`: follows a run until it ends. On a terminal a live progress line
 * (log-update) shows phase, attempt, turns, tools used, cost and elapsed time; otherwise one line
 * per change of phase or reason. Turns and tools come from the agent's log lines while the run
 * works (when its pod has logs) and from the run's result once it ends.
 */
import { createLogUpdate } from "log-update";
import { TERMINAL_PHASES, type Phase } from "../api/constants.js";
import type { AnyRun } from "../api/types.js";
import { ApiError, type ApiClient } from "../client/api.js";
import { cost, formatDuration, phaseOf } from "./output.js";

/** Exit codes of the CLI (documented in docs/cli.md). */
export const ExitCodes = {
  ok: 0,
  runFailed: 1,
  usage: 2,
  runCancelled: 3,
  apiError: 4,
  timeout: 5,
} as const;

export function exitCodeOfPhase(phase: string): number {
  if (phase === "Succeeded") return ExitCodes.ok;
  if (phase === "Cancelled") return ExitCodes.runCancelled;
  return ExitCodes.runFailed;
}

/** Counters read from the agent runner's JSON log lines. */
export interface LiveCounters {
  turns?: number;
  tools?: number;
  costUsd?: number;
}

/** Updates counters from one runner log line (pino JSON); other lines are ignored. */
export function countLogLine(line: string, c: LiveCounters): void {
  if (!line.startsWith("{")) return;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  if (typeof o.turn === "number") c.turns = Math.max(c.turns ?? 0, o.turn);
  if (typeof o.turns === "number") c.turns = Math.max(c.turns ?? 0, o.turns);
  if (o.msg === "Agent called tool") c.tools = (c.tools ?? 0) + 1;
  if (typeof o.costUsd === "number") c.costUsd = o.costUsd;
}

/** The progress line: `Running · attempt 1 · turns 4 · tools 7 · $0.0123 · 1m05s`. */
export function progressLine(run: AnyRun, live: LiveCounters, elapsedMs: number, spinner = ""): string {
  const r = run.status?.result;
  const turns = r?.turns ?? live.turns;
  const tools = r?.toolCalls ?? live.tools;
  const parts = [
    `${spinner ? `${spinner} ` : ""}${run.kind}/${run.metadata.name}`,
    phaseOf(run) + (run.status?.reason && run.status.reason !== phaseOf(run) ? ` (${run.status.reason})` : ""),
    run.status?.attempts ? `attempt ${run.status.attempts}` : undefined,
    `turns ${turns ?? "-"}`,
    `tools ${tools ?? "-"}`,
    cost(r?.costUsd ?? live.costUsd) ?? "$-",
    formatDuration(elapsedMs),
  ];
  return parts.filter(Boolean).join(" · ");
}

/** What to print when the run has ended: outcome, figures, PR link or what to do next. */
export function finalSummary(run: AnyRun, elapsedMs: number): string {
  const kind = run.kind.toLowerCase();
  const name = run.metadata.name ?? "";
  const r = run.status?.result;
  const figures = [
    r?.turns !== undefined ? `turns ${r.turns}` : "",
    r?.toolCalls !== undefined ? `tools ${r.toolCalls}` : "",
    cost(r?.costUsd) ?? "",
  ]
    .filter(Boolean)
    .join(" · ");
  const head = `${run.kind} ${name} ${phaseOf(run)} after ${formatDuration(elapsedMs)}${figures ? ` (${figures})` : ""}`;
  const lines = [head];
  if (run.status?.pullRequestUrl) lines.push(`Pull request: ${run.status.pullRequestUrl}`);
  if (phaseOf(run) === "Failed") {
    lines.push(`Reason: ${run.status?.reason ?? "unknown"}: ${run.status?.message ?? "no message"}`);
    lines.push(`Next: orchestrator runs logs ${kind}/${name}  ·  orchestrator runs retry ${kind}/${name}`);
  }
  if (phaseOf(run) === "Cancelled") lines.push(`Next: orchestrator runs retry ${kind}/${name} to start it again`);
  return lines.join("\n");
}

export interface WaitOptions {
  client: ApiClient;
  kind: string;
  name: string;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  tty: boolean;
  intervalMs?: number;
  /** Give up after this long (exit code 5). */
  timeoutMs?: number;
  now?: () => number;
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Follows the run's logs in the background to count turns and tools; failures just retry later. */
function followCounters(client: ApiClient, kind: string, name: string, live: LiveCounters, signal: AbortSignal): void {
  const loop = async () => {
    while (!signal.aborted) {
      try {
        const stream = await client.logs(kind, name, { follow: true, signal });
        let buf = "";
        const decoder = new TextDecoder();
        for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          const lines = buf.split("\n");
          buf = lines.pop() ?? "";
          for (const l of lines) countLogLine(l, live);
        }
      } catch {
        // No pod yet, no logs on this cluster, or the stream broke: try again shortly.
      }
      await new Promise((r) => setTimeout(r, 5000).unref());
    }
  };
  void loop();
}

/** Polls the run until its phase is terminal and returns it; throws ApiError on API failures. */
export async function waitForRun(o: WaitOptions): Promise<{ run: AnyRun; elapsedMs: number; timedOut: boolean }> {
  const now = o.now ?? Date.now;
  const started = now();
  const live: LiveCounters = {};
  const abort = new AbortController();
  const update = o.tty ? createLogUpdate(o.out as NodeJS.WriteStream) : undefined;
  if (o.tty) followCounters(o.client, o.kind, o.name, live, abort.signal);
  let lastKey = "";
  let tick = 0;
  try {
    for (;;) {
      const run = await o.client.getRun(o.kind, o.name);
      const elapsed = now() - started;
      const phase = phaseOf(run) as Phase;
      if (update) update(progressLine(run, live, elapsed, TERMINAL_PHASES.includes(phase) ? "" : SPINNER[tick++ % SPINNER.length]));
      else {
        const key = `${phase}/${run.status?.reason ?? ""}`;
        if (key !== lastKey) o.out.write(`${new Date(now()).toISOString().slice(11, 19)} ${progressLine(run, live, elapsed)}\n`);
        lastKey = key;
      }
      if (TERMINAL_PHASES.includes(phase)) {
        update?.done();
        return { run, elapsedMs: elapsed, timedOut: false };
      }
      if (o.timeoutMs !== undefined && elapsed >= o.timeoutMs) {
        update?.done();
        return { run, elapsedMs: elapsed, timedOut: true };
      }
      await new Promise((r) => setTimeout(r, o.intervalMs ?? 1000));
    }
  } catch (e) {
    update?.done();
    throw e instanceof ApiError ? e : new ApiError(`Stopped following ${o.kind}/${o.name}: ${(e as Error).message}`, 0);
  } finally {
    abort.abort();
  }
}
