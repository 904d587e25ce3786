/**
 * The channel container's main (`orchestrator-agent-channel`, the pod's container that holds the
 * run's credentials): it prepares the workspace (clone, task documents, agent files), then
 * serves the agent on loopback (/task, the model proxy, the GitHub tools) and, on /finish,
 * commits, pushes and opens the pull request, answering with the run's result. It ends once the
 * agent container is gone (the GET /attach its runner holds has closed), with the exit code the
 * agent's runner uses for the same result, so the pod's phase follows the channel's record.
 */
import type { Logger } from "pino";
import { Reasons } from "../api/reasons.js";
import type { AgentResult } from "../api/types.js";
import { createLogger } from "../observability/logger.js";
import type { AgentTask } from "./agent-task.js";
import { startChannelServer, type ChannelHandlers } from "./channel-server.js";
import { initialProgress, type ClaudeOutcome, type ClaudeStatus } from "./claude.js";
import type { RunnerEnv } from "./env.js";
import { buildLayout } from "./layout.js";
import { exitCodeFor, writeAgentResult } from "./result.js";
import { MAX_REPORTED_ACTIONS, runAgent, type AgentChannel } from "./run.js";

const STATUSES: readonly ClaudeStatus[] = ["completed", "failed", "budget-exceeded", "cost-exceeded", "max-turns", "terminated"];
/** After SIGTERM, how long the channel waits for the agent's /finish before delivering the work as it is. */
const FINISH_GRACE_MS = 15_000;

/**
 * The agent's report, from the container that ran untrusted code: only its shape is trusted.
 * A failure after the proxy refused on budget grounds is the budget's doing.
 */
export function parseAgentOutcome(body: unknown, channel: AgentChannel): ClaudeOutcome {
  const o = (body && typeof body === "object" ? body : {}) as Partial<ClaudeOutcome>;
  let status: ClaudeStatus = STATUSES.includes(o.status as ClaudeStatus) ? (o.status as ClaudeStatus) : "failed";
  if (status !== "completed" && channel.proxy.meter().budgetSpent) status = "cost-exceeded";
  const progress = { ...initialProgress(), ...(o.progress && typeof o.progress === "object" ? o.progress : {}) };
  return {
    status,
    exitCode: typeof o.exitCode === "number" ? o.exitCode : null,
    progress,
    stderrTail: typeof o.stderrTail === "string" ? o.stderrTail.slice(-2000) : "",
    durationMs: typeof o.durationMs === "number" ? o.durationMs : 0,
  };
}

const stopped = (): ClaudeOutcome => ({ status: "terminated", exitCode: null, progress: initialProgress(), stderrTail: "", durationMs: 0 });

/**
 * What the channel's termination message says while the agent works: nothing delivered yet, and
 * the GitHub actions done so far. /finish replaces it with the run's result; if the agent
 * container ends without calling /finish (and the channel is stopped before delivering), this is
 * what the controller reads, not a result the agent wrote itself.
 */
function recordProvisional(file: string, channel: AgentChannel): void {
  const actions = channel.actions.slice(-MAX_REPORTED_ACTIONS);
  writeAgentResult(file, {
    outcome: "failed",
    reason: Reasons.AgentFailed,
    message: "The agent container ended without reporting its outcome to the channel; nothing was delivered. See both containers' logs.",
    ...(actions.length > 0 ? { githubActions: actions } : {}),
  });
}

/**
 * Hands `task` to the agent and waits for its /finish, or for the agent container to be gone
 * without one, or for SIGTERM plus a grace period (kubelet stops both containers at once).
 */
function serveTask(
  handlers: ChannelHandlers,
  stop: { signal: AbortSignal; agentGone: Promise<void>; log: Logger },
  record: string,
  result: () => Promise<AgentResult>,
) {
  return (task: AgentTask, channel: AgentChannel): Promise<ClaudeOutcome> =>
    new Promise<ClaudeOutcome>((resolve) => {
      handlers.finish = async (body) => {
        resolve(parseAgentOutcome(body, channel));
        return result();
      };
      const tools = handlers.tools;
      if (tools) {
        const recordAction = tools.record;
        tools.record = (action) => {
          recordAction(action);
          recordProvisional(record, channel);
        };
      }
      recordProvisional(record, channel);
      handlers.task = task;
      stop.signal.addEventListener("abort", () => setTimeout(() => resolve(stopped()), FINISH_GRACE_MS).unref(), { once: true });
      void stop.agentGone.then(() => {
        if (handlers.finish === undefined) return;
        stop.log.warn("The agent container is gone without reporting its outcome; delivering the work as it is");
        resolve(stopped());
      });
    });
}

/** Runs the channel until SIGTERM (or `options.stop`); returns the exit code. */
export async function mainChannel(env: RunnerEnv, options: { log?: Logger; stop?: AbortSignal } = {}): Promise<number> {
  const log = options.log ?? createLogger({ level: env.logLevel, name: "agent-channel" });
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn({ signal }, "Received stop signal");
    controller.abort();
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  options.stop?.addEventListener("abort", () => controller.abort(), { once: true });
  // The agent (another uid, same group) must be able to change what the channel prepares.
  process.umask(0o002);
  const handlers: ChannelHandlers = {};
  const server = await startChannelServer({ port: env.channelPort, handlers, log });
  log.info({ url: server.url }, "Started the agent's channel");
  try {
    const box: { outcome?: Promise<AgentResult> } = {};
    const record = buildLayout(env.agentRoot).channelTerminationMessage;
    const stop = { signal: controller.signal, agentGone: server.agentGone, log };
    const agentStep = serveTask(handlers, stop, record, () => box.outcome!);
    const outcome = runAgent(env, { log, signal: controller.signal, handlers, agentStep });
    box.outcome = outcome;
    const final = await outcome;
    writeAgentResult(record, final);
    if (handlers.task === undefined) handlers.task = { result: final };
    log.info(
      { outcome: final.outcome, reason: final.reason, pullRequestUrl: final.pullRequestUrl, message: final.message },
      "Finished run",
    );
    // Ends once the agent container is gone, so its /finish has had its answer. Stopped before an
    // agent attached, there is nobody to wait for.
    const aborted = new Promise<void>((resolve) => {
      if (controller.signal.aborted) resolve();
      controller.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([server.agentGone, aborted.then(() => (server.agentAttached() ? server.agentGone : undefined))]);
    return exitCodeFor(final);
  } finally {
    await server.close();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
