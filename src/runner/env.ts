/**
 * The runner's environment, read once. This is the only runner module that reads process.env.
 *
 * Variables (the Job sets the first group; see src/api/runner-contract.ts):
 * - ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL: the model proxy's upstream and key; Claude Code gets the
 *   proxy's loopback URL and a placeholder key instead.
 * - spec.env / envFromSecrets: passed to Claude Code.
 * - GITHUB_TOKEN: token of the run's GitHub user (REST API and git over HTTPS). Never passed to the agent.
 * - AGENT_ROOT: tests only; prefix for every absolute contract path.
 * - CHANNEL_PORT (channel) / CHANNEL_URL (agent): tests only; the channel's loopback port, default 8390.
 * - CLAUDE_BIN: the Claude Code executable (default `claude` on PATH).
 * - LOG_LEVEL: pino level (default info).
 */
import { AgentEnv, CHANNEL_PORT } from "../api/runner-contract.js";

export interface RunnerEnv {
  /** "" when unset: contract paths are used as they are. */
  agentRoot: string;
  /** The channel's port (channel side) and URL (agent side). */
  channelPort: number;
  channelUrl: string;
  githubToken: string | undefined;
  /** The real model API key: only the model proxy uses it. */
  anthropicApiKey: string | undefined;
  /** The model proxy's upstream ("" = Anthropic's API). */
  anthropicBaseUrl: string;
  claudeBin: string;
  logLevel: string;
  /** The environment Claude Code starts from (GitHub credentials removed). */
  agentEnv: Record<string, string>;
  /** PATH, locale and proxy settings for git. */
  baseEnv: Record<string, string>;
}

/** Variables the agent process never sees: the runner pushes and talks to GitHub, not the agent. */
const WITHHELD_FROM_AGENT = new Set([
  AgentEnv.githubToken,
  AgentEnv.anthropicApiKey,
  AgentEnv.anthropicBaseUrl,
  "ANTHROPIC_AUTH_TOKEN",
  "GH_TOKEN",
  "GITHUB_REPOSITORY",
  "AGENT_ROOT",
  "CLAUDE_BIN",
  "CHANNEL_URL",
  "CHANNEL_PORT",
  "GIT_ASKPASS",
  "SSH_ASKPASS",
]);
const PASSED_TO_GIT = [
  "PATH",
  "LANG",
  "TZ",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "GIT_SSL_CAINFO",
  "GIT_SSL_CAPATH",
];

export function readRunnerEnv(env: NodeJS.ProcessEnv = process.env): RunnerEnv {
  const defined = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const agentEnv = Object.fromEntries(Object.entries(defined).filter(([k]) => !WITHHELD_FROM_AGENT.has(k)));
  const baseEnv = Object.fromEntries(PASSED_TO_GIT.flatMap((k) => (defined[k] !== undefined ? [[k, defined[k]]] : [])));
  return {
    agentRoot: defined[AgentEnv.agentRoot] ?? "",
    channelPort: Number(defined.CHANNEL_PORT ?? CHANNEL_PORT),
    channelUrl: defined.CHANNEL_URL || `http://127.0.0.1:${CHANNEL_PORT}`,
    githubToken: defined[AgentEnv.githubToken] || undefined,
    anthropicApiKey: defined[AgentEnv.anthropicApiKey] || undefined,
    anthropicBaseUrl: defined[AgentEnv.anthropicBaseUrl] ?? "",
    claudeBin: defined.CLAUDE_BIN || "claude",
    logLevel: defined.LOG_LEVEL || "info",
    agentEnv,
    baseEnv,
  };
}
