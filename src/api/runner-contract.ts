/**
 * The contract between the controller (which builds the Job and renders the run's files) and
 * the agent runner (which runs inside that Job). Both sides import these names; changing one
 * here changes both. Absolute paths are resolved under AGENT_ROOT when that variable is set,
 * which is how tests run the runner "as the Job runs it" under a temporary root.
 */

/** Where things are mounted in the agent container. */
export const AgentPaths = {
  /**
   * The workspace volume's `workspace` directory (PVC `workspace-{service}…` for CodeRuns, emptyDir
   * for DocsRuns). The channel mounts all of it; the agent only the clone's work tree below it.
   */
  workspace: "/workspace",
  /**
   * HOME of the run's agent identity (git config, Claude Code's sessions): the volume's
   * `homes/<identityHomeName>`, the only home either container mounts, so an agent never sees
   * another identity's sessions even on a shared workspace.
   */
  home: "/agent-home",
  /**
   * The channel's private directory (the same volume as the workspace, another subPath), mounted
   * only in the credentialed container: the clone's git directory lives here, out of the agent's reach.
   */
  channel: "/channel",
  /** The run's ConfigMap (rendered agent files + run.json). */
  taskFiles: "/task-files",
  /** Claude Code's managed settings (highest precedence), a subPath mount of the ConfigMap. */
  managedSettings: "/etc/claude-code/managed-settings.json",
  /** Secret github-ssh-{user}, keys ssh-privatekey / ssh-publickey. */
  sshSecret: "/secrets/github-ssh",
  /** Secret github-app-{app}, keys app-id / private-key (and optional installation-id). */
  githubAppSecret: "/secrets/github-app",
  /** Kubernetes' default termination message path; the controller reads it into status. */
  terminationMessage: "/dev/termination-log",
  /**
   * The channel's own termination message: the run's result as the channel knows it (outcome,
   * delivery, metered cost, the GitHub actions it performed). The agent container cannot write
   * it, so the controller prefers it to the agent's.
   */
  channelTerminationMessage: "/dev/channel-termination-log",
} as const;

/** The agent container's name per run kind, kept from the original so `kubectl logs -c` habits keep working. */
export const CONTAINER_NAME = { CodeRun: "claude-code", DocsRun: "claude-docs" } as const;
/** The credentialed container's name (the agent pod's first container). */
export const CHANNEL_CONTAINER = "channel";
/** The pod annotation naming the container `kubectl logs` shows without -c: the agent container. */
export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

/** The agent container's name in an agent pod: the pod's default container, else its first that is not the channel. */
export function agentContainerName(pod: {
  metadata?: { annotations?: Record<string, string> };
  spec?: { containers: { name: string }[] };
}): string | undefined {
  return pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION] ?? pod.spec?.containers.find((c) => c.name !== CHANNEL_CONTAINER)?.name;
}
/** The logs a client may ask for: the agent container's (the default) or the channel's. */
export const LOG_CONTAINERS = ["agent", "channel"] as const;
export type LogContainer = (typeof LOG_CONTAINERS)[number];

/** The pod's container name of a log choice. */
export function logContainerName(kind: keyof typeof CONTAINER_NAME, which: LogContainer = "agent"): string {
  return which === "channel" ? CHANNEL_CONTAINER : CONTAINER_NAME[kind];
}

/** The agent's scoped GitHub tools, served by the channel (MCP server `github`): recorded in the result's githubActions. */
export const GitHubTools = {
  comment: "comment_on_pull_request",
  addLabel: "add_pull_request_label",
  removeLabel: "remove_pull_request_label",
  review: "submit_pull_request_review",
} as const;

/** The channel container's port on the pod's loopback: model proxy, GitHub tools (MCP), /task, /finish. */
export const CHANNEL_PORT = 8390;
/** Path of the MCP endpoint of the agent's GitHub tools on the channel. */
export const CHANNEL_MCP_PATH = "/mcp";
/** The GitHub tools' MCP server name in the agent's MCP config: its tools are `mcp__github__<tool>`. */
export const GITHUB_TOOLS_SERVER = "github";

/** Keys of the run's ConfigMap. */
export const TaskFileKeys = {
  runJson: "run.json",
  claudeMd: "CLAUDE.md",
  managedSettings: "managed-settings.json",
  mcpConfig: "mcp.json",
  codingGuidelines: "coding-guidelines.md",
  githubGuidelines: "github-guidelines.md",
  /** Appended to Claude's system prompt (--append-system-prompt). */
  systemPrompt: "system-prompt.md",
  /** The user prompt for DocsRuns (CodeRuns read task/prompt.md from the docs repo). */
  docsPrompt: "docs-prompt.md",
  /** github.caBundle: the CA of a GitHub host whose certificate no public CA signed. */
  githubCa: "github-ca.crt",
} as const;

/** Environment variables the Job sets for the runner (besides spec.env and envFromSecrets). */
export const AgentEnv = {
  anthropicApiKey: "ANTHROPIC_API_KEY",
  anthropicBaseUrl: "ANTHROPIC_BASE_URL",
  githubToken: "GITHUB_TOKEN",
  /** Node adds these CAs to its own (the runner's GitHub calls); set when github.caBundle is. */
  nodeExtraCaCerts: "NODE_EXTRA_CA_CERTS",
  /** Set only in tests: prefix for every absolute path above. */
  agentRoot: "AGENT_ROOT",
} as const;

/** Top-level directories of the workspace volume, each mounted with its own subPath. */
export const VolumeLayout = {
  /** Mounted at AgentPaths.workspace in the channel; the agent mounts only `workspace/<repo>`. */
  workspace: "workspace",
  /** The channel's private directory (AgentPaths.channel). */
  channel: "channel",
  /** One directory per agent identity, `homes/<identityHomeName>`, mounted at AgentPaths.home. */
  homes: "homes",
} as const;

/** Layout inside the volume's `workspace` directory. */
export const WorkspaceLayout = {
  /** The target repository clone (CodeRun) or the docs repository clone (DocsRun). */
  repo: "target-repo",
  /**
   * Where earlier versions kept every identity's HOME (`.agent-home/<identity>`), readable by any
   * agent on the workspace; the channel moves the run identity's into its own home (see docs/security.md).
   */
  legacyHomes: ".agent-home",
} as const;

/**
 * The directory name of an identity's home under VolumeLayout.homes: `app-<name>` or
 * `user-<name>` (a user and an App of the same name are different identities), `default` without
 * one. Names are GitHub logins (IDENTITY_PATTERN); anything else is reduced to a safe name.
 */
export function identityHomeName(identity: { githubApp?: string; githubUser?: string }): string {
  const [kind, name] = identity.githubApp ? ["app", identity.githubApp] : ["user", identity.githubUser ?? ""];
  const safe = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return safe ? `${kind}-${safe}` : "default";
}

/** The directory name earlier versions gave an identity's home under WorkspaceLayout.legacyHomes. */
export function legacyHomeName(identity: { githubApp?: string; githubUser?: string }): string {
  const id = identity.githubApp ?? identity.githubUser ?? "";
  return (
    id
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[-.]+|[-.]+$/g, "") || "default"
  );
}

/** run.json: everything the runner needs to know about the run, rendered by the controller. */
export interface RunParameters {
  kind: "code" | "docs";
  runName: string;
  namespace: string;
  attempt: number;
  model: string;
  repositoryUrl: string;
  /** Working directory inside the repository (relative; "." = root). */
  workingDirectory: string;
  /** Branch the agent's work is based on and the PR targets. */
  baseBranch: string;
  /** Branch the agent's work is pushed to. */
  branch: string;
  githubUser?: string;
  githubApp?: string;
  /** Effective --continue: a retry (attempt > 1) or spec.continueSession. */
  continueSession: boolean;
  overwriteMemory: boolean;
  maxTurns: number;
  /** Wall-clock budget for the agent, below the Job deadline so WIP can be pushed. */
  timeBudgetSeconds: number;
  /** Dollar budget (model tokens at list prices), enforced by the model proxy; absent = none. */
  maxCostUsd?: number;
  /** GitHub REST API base URL (https://api.github.com, or GHES). */
  githubApiUrl: string;
  /** The GitHub web/git origin (https://github.com): the only host the runner gives credentials to. */
  githubUrl: string;
  /** Labels to put on the PR, e.g. task-7. */
  prLabels: string[];
  /** Stage labels the agent may add to or remove from its PR through the scoped GitHub tools (e.g. ready-for-qa). */
  stageLabels?: string[];
  // CodeRun only
  taskId?: number;
  service?: string;
  docsRepositoryUrl?: string;
  docsBranch?: string;
  /** Project directory inside the docs repo holding .taskmaster/ ("." = root). */
  docsProjectDirectory?: string;
  localTools?: string;
  remoteTools?: string;
  // DocsRun only
  includeCodebase?: boolean;
}

/** Upper bound Kubernetes puts on a termination message. */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;

/**
 * Messages of the runner's log lines (pino JSON on stdout) that report the agent's progress; the
 * dashboard reads them from the pod log to show live turns, tool calls, tokens and cost.
 */
export const AgentLogMessages = {
  /** `{turn, tool}` per tool call. */
  toolCall: "Agent called tool",
  /** `{turns, inputTokens, outputTokens}` every 10 turns. */
  progress: "Agent progress",
  /** `{turns, costUsd, inputTokens, outputTokens, ...}` from Claude Code's result message. */
  result: "Claude Code reported its result",
  /** `{status, turns, toolCalls, inputTokens, outputTokens, costUsd, ...}` when the CLI has exited. */
  exited: "Claude Code exited",
} as const;
