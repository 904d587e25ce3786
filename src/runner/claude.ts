/**
 * Running Claude Code in print mode and following its stream-json output. Parsing is pure
 * (parseStreamLine, updateProgress) so it is unit-tested without the CLI; runClaude spawns the
 * CLI in its own process group and enforces the wall-clock budget and the turn limit.
 */
import fs from "node:fs";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import type { Logger } from "pino";
import { AgentLogMessages, GITHUB_TOOLS_SERVER } from "../api/runner-contract.js";
import type { Redactor } from "./redact.js";
import { estimateCostUsd } from "./pricing.js";

// ---- stream-json parsing (pure) ----------------------------------------------------------------

export type AgentEvent =
  | { kind: "init"; sessionId: string | null; model: string | null; tools: number; permissionMode: string | null }
  | {
      kind: "assistant";
      messageId: string | null;
      texts: string[];
      toolCalls: { id: string; name: string }[];
      inputTokens: number;
      outputTokens: number;
      cacheWriteTokens: number;
      cacheReadTokens: number;
    }
  | { kind: "tool-results"; results: { toolUseId: string; isError: boolean; error: string | null }[] }
  | {
      kind: "result";
      subtype: string;
      isError: boolean;
      turns: number | null;
      costUsd: number | null;
      inputTokens: number | null;
      outputTokens: number | null;
      sessionId: string | null;
      durationMs: number | null;
      text: string | null;
    }
  | { kind: "other"; type: string }
  | { kind: "unparsed"; line: string };

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The text of a tool_result's content (a string or text blocks). */
function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  return arr(content)
    .map(obj)
    .map((b) => str(b.text) ?? "")
    .join("\n");
}

/** One line of `--output-format stream-json` → an event; null for blank lines. */
export function parseStreamLine(line: string): AgentEvent | null {
  const trimmed = line.trim();
  if (!trimmed) return null;
  let data: Json;
  try {
    data = obj(JSON.parse(trimmed));
  } catch {
    return { kind: "unparsed", line: trimmed };
  }
  const type = str(data.type) ?? "unknown";
  if (type === "system" && data.subtype === "init") {
    return {
      kind: "init",
      sessionId: str(data.session_id),
      model: str(data.model),
      tools: arr(data.tools).length,
      permissionMode: str(data.permissionMode),
    };
  }
  if (type === "assistant") return assistantEvent(data);
  if (type === "user") return toolResultsEvent(data);
  if (type === "result") return resultEvent(data);
  return { kind: "other", type };
}

function assistantEvent(data: Json): AgentEvent {
  const message = obj(data.message);
  const content = arr(message.content).map(obj);
  const usage = obj(message.usage);
  return {
    kind: "assistant",
    messageId: str(message.id),
    texts: content
      .filter((c) => c.type === "text")
      .map((c) => str(c.text) ?? "")
      .filter(Boolean),
    toolCalls: content.filter((c) => c.type === "tool_use").map((c) => ({ id: str(c.id) ?? "", name: str(c.name) ?? "unknown" })),
    inputTokens: num(usage.input_tokens) ?? 0,
    outputTokens: num(usage.output_tokens) ?? 0,
    cacheWriteTokens: num(usage.cache_creation_input_tokens) ?? 0,
    cacheReadTokens: num(usage.cache_read_input_tokens) ?? 0,
  };
}

function toolResultsEvent(data: Json): AgentEvent {
  const content = arr(obj(data.message).content).map(obj);
  return {
    kind: "tool-results",
    results: content
      .filter((c) => c.type === "tool_result")
      .map((c) => ({
        toolUseId: str(c.tool_use_id) ?? "",
        isError: c.is_error === true,
        error: c.is_error === true ? resultText(c.content) : null,
      })),
  };
}

function resultEvent(data: Json): AgentEvent {
  const usage = obj(data.usage);
  return {
    kind: "result",
    subtype: str(data.subtype) ?? "unknown",
    isError: data.is_error === true,
    turns: num(data.num_turns),
    costUsd: num(data.total_cost_usd),
    inputTokens: num(usage.input_tokens),
    outputTokens: num(usage.output_tokens),
    sessionId: str(data.session_id),
    durationMs: num(data.duration_ms),
    text: str(data.result),
  };
}

/** What is known about the session so far. */
export interface AgentProgress {
  sessionId: string | null;
  /** Assistant messages seen (one per model turn). */
  turns: number;
  toolCalls: Record<string, number>;
  inputTokens: number;
  outputTokens: number;
  /** Prompt-cache writes and reads, summed over the assistant messages (for the cost estimate). */
  cacheWriteTokens: number;
  cacheReadTokens: number;
  /** The model that answered (from the init event). */
  model: string | null;
  costUsd: number | null;
  result: Extract<AgentEvent, { kind: "result" }> | null;
  /** Message ids already counted (one message may arrive as several events). */
  seenMessages: string[];
  /** tool_use id → tool name, to name failed tool calls. */
  pendingTools: Record<string, string>;
}

export function initialProgress(): AgentProgress {
  return {
    sessionId: null,
    turns: 0,
    toolCalls: {},
    inputTokens: 0,
    outputTokens: 0,
    cacheWriteTokens: 0,
    cacheReadTokens: 0,
    model: null,
    costUsd: null,
    result: null,
    seenMessages: [],
    pendingTools: {},
  };
}

/** The progress after one event (pure). The final result's figures replace the running sums. */
export function updateProgress(state: AgentProgress, event: AgentEvent): AgentProgress {
  switch (event.kind) {
    case "init":
      return { ...state, sessionId: event.sessionId ?? state.sessionId, model: event.model ?? state.model };
    case "assistant": {
      const isNew = !event.messageId || !state.seenMessages.includes(event.messageId);
      const toolCalls = { ...state.toolCalls };
      const pendingTools = { ...state.pendingTools };
      for (const call of event.toolCalls) {
        toolCalls[call.name] = (toolCalls[call.name] ?? 0) + 1;
        pendingTools[call.id] = call.name;
      }
      return {
        ...state,
        turns: state.turns + (isNew ? 1 : 0),
        inputTokens: state.inputTokens + (isNew ? event.inputTokens : 0),
        outputTokens: state.outputTokens + (isNew ? event.outputTokens : 0),
        cacheWriteTokens: state.cacheWriteTokens + (isNew ? event.cacheWriteTokens : 0),
        cacheReadTokens: state.cacheReadTokens + (isNew ? event.cacheReadTokens : 0),
        seenMessages: isNew && event.messageId ? [...state.seenMessages, event.messageId] : state.seenMessages,
        toolCalls,
        pendingTools,
      };
    }
    case "result":
      return {
        ...state,
        sessionId: event.sessionId ?? state.sessionId,
        turns: event.turns ?? state.turns,
        inputTokens: event.inputTokens ?? state.inputTokens,
        outputTokens: event.outputTokens ?? state.outputTokens,
        costUsd: event.costUsd ?? state.costUsd,
        result: event,
      };
    default:
      return state;
  }
}

/** The usage an agent result reports. */
export interface ReportedUsage {
  turns: number;
  inputTokens: number;
  outputTokens: number;
  costUsd?: number;
}

/**
 * What a session used (pure). Claude Code's own cost when it wrote its result; a session
 * stopped by the budget or a cancel has no result, so its cost is estimated from the tokens at
 * list prices. Turns never exceed maxTurns: at the limit, Claude Code's num_turns counts the turn
 * it refused to start.
 */
export function computeUsage(p: AgentProgress, maxTurns: number): ReportedUsage {
  const costUsd = p.costUsd ?? estimateCostUsd(p.model, p);
  return {
    turns: Math.min(p.turns, maxTurns),
    inputTokens: p.inputTokens,
    outputTokens: p.outputTokens,
    ...(costUsd !== undefined ? { costUsd } : {}),
  };
}

// ---- command line (pure) -----------------------------------------------------------------------

export interface ClaudeInvocation {
  prompt: string;
  model: string;
  maxTurns: number;
  continueSession: boolean;
  systemPrompt: string;
  settingsPath: string;
  /** MCP config of the channel's GitHub tools (--mcp-config); its server's tools are allowed. */
  mcpConfigPath?: string;
}

/** argv for `claude`; the prompt goes last after `--` so text starting with `-` (front matter) is safe. */
export function buildClaudeArgs(inv: ClaudeInvocation): string[] {
  return [
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--model",
    inv.model,
    "--max-turns",
    String(inv.maxTurns),
    ...(inv.continueSession ? ["--continue"] : []),
    ...(inv.mcpConfigPath ? ["--mcp-config", inv.mcpConfigPath, "--allowedTools", `mcp__${GITHUB_TOOLS_SERVER}`] : []),
    "--settings",
    inv.settingsPath,
    "--append-system-prompt",
    inv.systemPrompt,
    "--",
    inv.prompt,
  ];
}

/** argv as logged: prompt texts replaced by their size. */
export function describeClaudeArgs(args: string[]): string[] {
  return args.map((a, i) => (args[i - 1] === "--append-system-prompt" || args[i - 1] === "--" ? `<${a.length} chars>` : a));
}

// ---- session marker ----------------------------------------------------------------------------

/** Written when a session starts, so a later attempt knows `--continue` has something to continue. */
export interface SessionMarker {
  sessionId: string;
  cwd: string;
  runName: string;
  attempt: number;
}

export function sessionMarkerPath(home: string): string {
  return path.join(home, ".orchestrator", "session.json");
}

export function readSessionMarker(home: string): SessionMarker | null {
  try {
    return JSON.parse(fs.readFileSync(sessionMarkerPath(home), "utf8")) as SessionMarker;
  } catch {
    return null;
  }
}

function writeSessionMarker(home: string, marker: SessionMarker): void {
  const file = sessionMarkerPath(home);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(marker));
}

// ---- running -----------------------------------------------------------------------------------

export type ClaudeStatus = "completed" | "failed" | "budget-exceeded" | "cost-exceeded" | "max-turns" | "terminated";

export interface ClaudeOutcome {
  status: ClaudeStatus;
  exitCode: number | null;
  progress: AgentProgress;
  /** Last lines of stderr (scrubbed), for error messages. */
  stderrTail: string;
  durationMs: number;
}

export interface RunClaudeOptions {
  bin: string;
  invocation: ClaudeInvocation;
  cwd: string;
  env: Record<string, string>;
  home: string;
  runName: string;
  attempt: number;
  /** Wall-clock budget. */
  budgetMs: number;
  /** Time between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Aborted when the runner itself is asked to stop. */
  signal?: AbortSignal;
  /** Aborted when the model proxy has metered the run's dollar budget. */
  costSignal?: AbortSignal;
  log: Logger;
  redactor: Redactor;
}

/** Outcome of a finished process from what the stream said (pure). */
export function classifyExit(progress: AgentProgress, exitCode: number | null): ClaudeStatus {
  const result = progress.result;
  if (result?.subtype === "error_max_turns") return "max-turns";
  if (result && result.subtype === "success" && !result.isError && exitCode === 0) return "completed";
  return "failed";
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * Claude's process group under a budget: stop() sends SIGTERM to the group, then SIGKILL after
 * the grace period; the wall-clock budget and the runner's own stop signal call it.
 */
function superviseGroup(child: ResultPromise, opts: RunClaudeOptions) {
  let forced: ClaudeStatus | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const signalGroup = (signal: NodeJS.Signals) => {
    if (!child.pid) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is already gone.
    }
  };
  const stop = (status: ClaudeStatus, why: string) => {
    if (forced) return;
    forced = status;
    opts.log.warn({ status, why }, "Stopping Claude Code");
    signalGroup("SIGTERM");
    killTimer = setTimeout(() => signalGroup("SIGKILL"), opts.killGraceMs ?? 10_000);
    killTimer.unref();
  };
  const budget = Math.round(opts.budgetMs / 1000);
  const budgetTimer = setTimeout(() => stop("budget-exceeded", `wall-clock budget of ${budget}s used up`), opts.budgetMs);
  const onAbort = () => stop("terminated", "the runner received a stop signal");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const onCost = () => stop("cost-exceeded", "the run's dollar budget is spent");
  opts.costSignal?.addEventListener("abort", onCost, { once: true });
  if (opts.costSignal?.aborted) onCost();
  return {
    stop,
    forced: () => forced,
    /** After exit: timers off, and tool processes that outlived Claude go with the group. */
    dispose: () => {
      clearTimeout(budgetTimer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      opts.costSignal?.removeEventListener("abort", onCost);
      signalGroup("SIGKILL");
    },
  };
}

/** The last 20 lines of stderr, redacted. */
function tailStderr(child: ResultPromise, redactor: Redactor): string[] {
  const lines: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      lines.push(redactor.scrub(line));
      if (lines.length > 20) lines.shift();
    }
  });
  return lines;
}

/** Reads the stream-json output to the end, logging each event; returns the final progress. */
async function readStream(child: ResultPromise, opts: RunClaudeOptions, stop: (s: ClaudeStatus, why: string) => void) {
  const { log, redactor } = opts;
  let progress = initialProgress();
  // The turn limit is Claude's own (--max-turns); this is a backstop should it overshoot.
  const turnBackstop = opts.invocation.maxTurns + 1;
  try {
    for await (const line of child.iterable({ from: "stdout" })) {
      const event = parseStreamLine(String(line));
      if (!event) continue;
      const before = progress;
      progress = updateProgress(progress, event);
      logEvent(log, event, before, progress, redactor);
      if (event.kind === "init" && event.sessionId) {
        writeSessionMarker(opts.home, { sessionId: event.sessionId, cwd: opts.cwd, runName: opts.runName, attempt: opts.attempt });
      }
      if (progress.turns > turnBackstop) stop("max-turns", `more than ${opts.invocation.maxTurns} turns`);
    }
  } catch (err) {
    log.warn({ err: redactor.scrub((err as Error).message) }, "Stopped reading Claude Code output");
  }
  return progress;
}

export async function runClaude(opts: RunClaudeOptions): Promise<ClaudeOutcome> {
  const { log } = opts;
  const args = buildClaudeArgs(opts.invocation);
  const started = Date.now();
  log.info({ argv: describeClaudeArgs(args), cwd: opts.cwd, budgetSeconds: Math.round(opts.budgetMs / 1000) }, "Started Claude Code");
  const child = execa(opts.bin, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: false,
    stdin: "ignore",
    buffer: false,
    reject: false,
    // Own process group: the budget stops Claude and every tool process it started.
    detached: true,
    // execa's own cleanup would only signal the direct child.
    cleanup: false,
  });
  const group = superviseGroup(child, opts);
  const stderrLines = tailStderr(child, opts.redactor);
  const progress = await readStream(child, opts, group.stop);
  const result = await child;
  group.dispose();
  const exitCode = result.exitCode ?? null;
  const status = group.forced() ?? classifyExit(progress, exitCode);
  const durationMs = Date.now() - started;
  // A CLI that could not start at all (no exit code): execa's message says why (ENOENT, EACCES, a missing cwd).
  const spawnError =
    result.exitCode === undefined && result.signal === undefined && result.failed
      ? [opts.redactor.scrub(result.shortMessage ?? result.message ?? "")]
      : [];
  const stderrTail = [...stderrLines.slice(-5), ...spawnError].join("\n");
  log.info(
    {
      status,
      exitCode,
      signal: result.signal ?? null,
      turns: progress.turns,
      toolCalls: progress.toolCalls,
      inputTokens: progress.inputTokens,
      outputTokens: progress.outputTokens,
      costUsd: progress.costUsd,
      durationMs,
      ...(status === "failed" && stderrTail ? { stderr: stderrTail } : {}),
    },
    AgentLogMessages.exited,
  );
  return { status, exitCode, progress, stderrTail, durationMs };
}

function logEvent(log: Logger, event: AgentEvent, before: AgentProgress, after: AgentProgress, redactor: Redactor): void {
  switch (event.kind) {
    case "init":
      log.info(
        { sessionId: event.sessionId, model: event.model, tools: event.tools, permissionMode: event.permissionMode },
        "Claude Code session started",
      );
      break;
    case "assistant":
      for (const text of event.texts) log.info({ turn: after.turns, text: redactor.scrub(truncate(text, 300)) }, "Agent wrote");
      for (const call of event.toolCalls) log.info({ turn: after.turns, tool: call.name }, AgentLogMessages.toolCall);
      if (after.turns !== before.turns && after.turns % 10 === 0) {
        log.info({ turns: after.turns, inputTokens: after.inputTokens, outputTokens: after.outputTokens }, AgentLogMessages.progress);
      }
      break;
    case "tool-results":
      for (const r of event.results) {
        if (r.isError)
          log.warn(
            {
              tool: after.pendingTools[r.toolUseId] ?? "unknown",
              toolUseId: r.toolUseId,
              error: redactor.scrub(truncate(r.error ?? "", 300)),
            },
            "Tool call failed",
          );
      }
      break;
    case "result":
      log.info(
        {
          subtype: event.subtype,
          isError: event.isError,
          turns: event.turns,
          costUsd: event.costUsd,
          inputTokens: event.inputTokens,
          outputTokens: event.outputTokens,
          durationMs: event.durationMs,
        },
        AgentLogMessages.result,
      );
      break;
    case "unparsed":
      log.debug({ line: redactor.scrub(truncate(event.line, 300)) }, "Claude Code printed a non-JSON line");
      break;
    default:
      break;
  }
}
