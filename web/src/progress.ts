// Live progress from the agent runner's log: one JSON line (pino) per event, with the messages of
// AgentLogMessages (src/api/runner-contract.ts): a line per tool call, token totals every 10
// turns, Claude Code's result with the cost at the end.
import { AgentLogMessages } from "../../src/api/runner-contract.js";

export interface LiveProgress {
  turns: number;
  toolCalls: number;
  inputTokens: number | null;
  outputTokens: number | null;
  costUsd: number | null;
  /** The last tool the agent called. */
  lastTool: string | null;
}

export const emptyProgress = (): LiveProgress => ({
  turns: 0,
  toolCalls: 0,
  inputTokens: null,
  outputTokens: null,
  costUsd: null,
  lastTool: null,
});

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The progress after one log line (pure); lines that are not the runner's JSON change nothing. */
export function progressFromLine(p: LiveProgress, line: string): LiveProgress {
  if (!line.startsWith("{")) return p;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return p;
  }
  const next = { ...p };
  const turns = num(o.turns) ?? num(o.turn);
  if (turns !== null) next.turns = Math.max(next.turns, turns);
  if (o.msg === AgentLogMessages.toolCall) {
    next.toolCalls += 1;
    next.lastTool = typeof o.tool === "string" ? o.tool : next.lastTool;
  }
  if (o.toolCalls && typeof o.toolCalls === "object") {
    next.toolCalls = Object.values(o.toolCalls as Record<string, unknown>).reduce<number>((s, v) => s + (num(v) ?? 0), 0);
  }
  next.inputTokens = num(o.inputTokens) ?? next.inputTokens;
  next.outputTokens = num(o.outputTokens) ?? next.outputTokens;
  next.costUsd = num(o.costUsd) ?? next.costUsd;
  return next;
}
