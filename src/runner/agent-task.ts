/**
 * The agent side of a run (container `claude-code`, no credentials): it asks the channel for its
 * task, runs Claude Code with the channel as its model endpoint and MCP server, reports the
 * outcome to the channel's /finish (which commits, pushes and opens the pull request) and writes
 * the result the channel returns as the termination message.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { Logger } from "pino";
import { Reasons } from "../api/reasons.js";
import type { AgentResult } from "../api/types.js";
import { createLogger } from "../observability/logger.js";
import { CHANNEL_MCP_PATH, GITHUB_TOOLS_SERVER } from "../api/runner-contract.js";
import { readSessionMarker, runClaude, type ClaudeOutcome } from "./claude.js";
import type { RunnerEnv } from "./env.js";
import { buildLayout } from "./layout.js";
import { Redactor } from "./redact.js";
import { exitCodeFor, writeAgentResult } from "./result.js";

/** What the channel hands the agent once the workspace is prepared (GET /task). */
export interface AgentTask {
  runName: string;
  attempt: number;
  prompt: string;
  model: string;
  maxTurns: number;
  /** The run asks to continue; the agent continues only when a session exists for workDir. */
  continueSession: boolean;
  workDir: string;
  home: string;
  systemPrompt: string;
  settingsPath: string;
  /** Epoch ms at which the agent's wall-clock budget ends. */
  deadline: number;
}

/** The key Claude Code sends; the model proxy drops it and adds the real one. Not a secret. */
export const PLACEHOLDER_API_KEY = "sk-ant-placeholder-the-model-proxy-adds-the-real-key";

/**
 * The new message of a continued session. Claude Code keeps a session's first
 * --append-system-prompt on --continue and ignores a new one, so this run's instructions (a
 * remediation's feedback, a retry's note) would never reach the model: they go into the message.
 */
export function continuedPrompt(systemPrompt: string, prompt: string): string {
  return `Instructions for this run (they replace any earlier ones in this conversation):\n\n${systemPrompt.trim()}\n\n---\n\n${prompt}`;
}

/** Runs Claude Code for `task` against the channel at `channelUrl`. */
export async function runAgentTask(a: {
  task: AgentTask;
  env: RunnerEnv;
  channelUrl: string;
  signal?: AbortSignal;
  costSignal?: AbortSignal;
  log: Logger;
  redactor: Redactor;
}): Promise<ClaudeOutcome> {
  const { task, log } = a;
  const budgetMs = task.deadline - Date.now();
  let continueSession = false;
  if (task.continueSession) {
    const marker = readSessionMarker(task.home);
    continueSession = marker !== null && marker.cwd === task.workDir;
    if (!continueSession) log.info({ workDir: task.workDir }, "No previous session for this working directory; starting a new one");
  }
  const mcpConfigPath = path.join(task.home, ".orchestrator", "mcp.json");
  fs.mkdirSync(path.dirname(mcpConfigPath), { recursive: true });
  const mcp = { mcpServers: { [GITHUB_TOOLS_SERVER]: { type: "http", url: `${a.channelUrl}${CHANNEL_MCP_PATH}` } } };
  fs.writeFileSync(mcpConfigPath, JSON.stringify(mcp));
  return runClaude({
    bin: a.env.claudeBin,
    invocation: {
      prompt: continueSession ? continuedPrompt(task.systemPrompt, task.prompt) : task.prompt,
      model: task.model,
      maxTurns: task.maxTurns,
      continueSession,
      systemPrompt: task.systemPrompt,
      settingsPath: task.settingsPath,
      mcpConfigPath,
    },
    cwd: task.workDir,
    env: {
      ...a.env.agentEnv,
      ANTHROPIC_BASE_URL: a.channelUrl,
      ANTHROPIC_API_KEY: PLACEHOLDER_API_KEY,
      HOME: task.home,
      CLAUDE_CONFIG_DIR: path.join(task.home, ".claude"),
      GIT_TERMINAL_PROMPT: "0",
      DISABLE_AUTOUPDATER: "1",
    },
    home: task.home,
    runName: task.runName,
    attempt: task.attempt,
    budgetMs: Math.max(1, budgetMs),
    ...(a.signal ? { signal: a.signal } : {}),
    ...(a.costSignal ? { costSignal: a.costSignal } : {}),
    log,
    redactor: a.redactor,
  });
}

/**
 * One JSON request to the channel on loopback; null when it cannot be reached. node:http, not
 * fetch: loading fetch's undici costs the agent container about 60 ms of CPU, taken from the
 * channel while it prepares the workspace.
 */
function callChannel(url: string, body?: unknown): Promise<{ status: number; body: unknown } | null> {
  return new Promise((resolve) => {
    if (!URL.canParse(url)) return resolve(null);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      { method: payload === undefined ? "GET" : "POST", headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", () => resolve(null));
        res.on("end", () => {
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            // Not JSON: the status says what happened.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", () => resolve(null));
    req.end(payload);
  });
}

/**
 * The agent's presence at the channel: GET /attach, held open until the runner ends (the kernel
 * closes it if the process dies), which is how the channel knows when to finish. Asked every 25 ms
 * until the channel listens (both containers start together); null when it never did by `until`.
 */
function attach(channelUrl: string, until: number, signal: AbortSignal): Promise<http.ClientRequest | null> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (req: http.ClientRequest | null) => {
      settled = true;
      resolve(req);
    };
    const ask = () => {
      if (!URL.canParse(channelUrl)) return settle(null);
      const req = http.request(`${channelUrl}/attach`, { agent: false }, (res) => {
        if (res.statusCode === 200) return settle(req);
        res.resume();
        settle(null);
      });
      req.on("error", () => {
        if (settled) return;
        if (Date.now() > until || signal.aborted) settle(null);
        else setTimeout(ask, 25);
      });
      req.end();
    };
    ask();
  });
}

/** The task, or the result of a run that failed before the agent; waits while the channel prepares. */
async function fetchTask(
  channelUrl: string,
  w: { until: number; waitMs: number; signal: AbortSignal },
): Promise<{ task: AgentTask } | { result: AgentResult }> {
  for (;;) {
    const res = await callChannel(`${channelUrl}/task`);
    if (res?.status === 200 && res.body && typeof res.body === "object") {
      const body = res.body as AgentTask | { result: AgentResult };
      return "result" in body ? body : { task: body };
    }
    if (w.signal.aborted) {
      const message =
        "The agent container was stopped (SIGTERM) before the channel handed out its task: the run was cancelled or hit its deadline.";
      return { result: { outcome: "failed", reason: Reasons.Terminated, message } };
    }
    if (Date.now() > w.until) {
      const message = `The agent's channel at ${channelUrl} did not hand out a task within ${Math.round(w.waitMs / 1000)}s; see the channel container's log.`;
      return { result: { outcome: "failed", reason: Reasons.InternalError, message } };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The agent container's main: returns the exit code. */
export async function mainAgent(env: RunnerEnv, options: { log?: Logger; waitForTaskMs?: number } = {}): Promise<number> {
  const log = options.log ?? createLogger({ level: env.logLevel, name: "agent" });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  // Files the agent creates stay writable by the channel (same group), which commits them.
  process.umask(0o002);
  const waitMs = options.waitForTaskMs ?? 10 * 60_000;
  const until = Date.now() + waitMs;
  const attached = await attach(env.channelUrl, until, controller.signal);
  try {
    const got = await fetchTask(env.channelUrl, { until, waitMs, signal: controller.signal });
    let result: AgentResult;
    if ("result" in got) result = got.result;
    else {
      const outcome = await runAgentTask({
        task: got.task,
        env,
        channelUrl: env.channelUrl,
        signal: controller.signal,
        log,
        redactor: new Redactor(),
      });
      const res = await callChannel(`${env.channelUrl}/finish`, outcome);
      result =
        res?.status === 200 && res.body && typeof res.body === "object"
          ? (res.body as AgentResult)
          : {
              outcome: "failed",
              reason: Reasons.InternalError,
              message: `The channel did not accept the agent's outcome (${res ? `HTTP ${res.status}` : "unreachable"}); see the channel container's log.`,
            };
    }
    writeAgentResult(buildLayout(env.agentRoot).terminationMessage, result);
    log.info(
      { outcome: result.outcome, reason: result.reason, pullRequestUrl: result.pullRequestUrl, message: result.message },
      "Finished agent",
    );
    return exitCodeFor(result);
  } finally {
    attached?.destroy();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
