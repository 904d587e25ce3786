/**
 * The agent runner: everything between "the Job's container started" and "the termination
 * message is written". Checks come first (files, credentials, reachability, task documents) so a
 * broken run fails in seconds without starting Claude; once the agent has worked, its work is
 * always committed and pushed, whatever the outcome.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { bindRepository, type BoundRepository } from "../api/github-host.js";
import { TaskFileKeys, type RunParameters } from "../api/runner-contract.js";
import type { AgentResult, GitHubAction } from "../api/types.js";
import { createLogger } from "../observability/logger.js";
import { readAgentFiles, installAgentFiles, INSTALLED_FILES } from "./agent-files.js";
import { resolveCredentials, type Credentials } from "./auth.js";
import { computeUsage, type ClaudeOutcome } from "./claude.js";
import type { RunnerEnv } from "./env.js";
import { Reasons, type Reason } from "../api/reasons.js";
import { RunnerError } from "./errors.js";
import { Git, GitError, isNonFastForward, type Author } from "./git.js";
import type { AgentTask } from "./agent-task.js";
import type { ChannelHandlers } from "./channel-server.js";
import { createGitHubClient, ensurePullRequest, type GitHubPort } from "./github.js";
import { createModelProxy, type ModelProxy } from "./model-proxy.js";
import { adoptLegacyHome, writeOwnFile } from "./home.js";
import { buildLayout, legacyHome, type Layout } from "./layout.js";
import { parseRunParameters } from "./params.js";
import { parsePrDescription, type PullRequestText } from "./pr-description.js";
import { Redactor } from "./redact.js";
import { redactUrl } from "./repo-url.js";
import { readTaskDocs, TASK_DIR, writeTaskDocs } from "./task-docs.js";
import { prepareRepository } from "./workspace.js";

export interface RunnerOptions {
  /** Defaults to pino on stdout. */
  log?: Logger;
  /** Aborted on SIGTERM: the agent is stopped and its work pushed. */
  signal?: AbortSignal;
  /** Replaces the Octokit adapter (tests). */
  github?: (opts: { params: RunParameters; target: BoundRepository; credentials: Credentials; log: Logger }) => GitHubPort;
  /** Wall-clock start of the run; the budget counts from here. */
  startedAt?: number;
  /** The channel server's handlers: the run puts its model proxy and GitHub tools there. */
  handlers: ChannelHandlers;
  /** Runs the agent on the prepared workspace (in the agent container) and returns its outcome. */
  agentStep: (task: AgentTask, channel: AgentChannel) => Promise<ClaudeOutcome>;
}

/** Files the agent must not commit (relative to the repository root). */
function computeExcludes(workingDirectory: string): { infoExclude: string[]; commitExcludes: string[] } {
  const prefix = workingDirectory === "." ? "" : `${workingDirectory}/`;
  const files = [...INSTALLED_FILES, "PR_DESCRIPTION.md", ".claude/settings.local.json"];
  return {
    infoExclude: [`/${prefix}${TASK_DIR}/`, ...files.map((f) => `/${prefix}${f}`), "/PR_DESCRIPTION.md"],
    commitExcludes: [`${prefix}${TASK_DIR}`],
  };
}

/** The run's repositories, bound to the configured GitHub host; anything else fails here, before any network call. */
export interface RunRepositories {
  target: BoundRepository;
  /** The docs repository of a code run (may be the target itself). */
  docs?: BoundRepository;
}

export function bindRunRepositories(params: RunParameters): RunRepositories {
  const bind = (field: "repositoryUrl" | "docsRepositoryUrl", url: string): BoundRepository => {
    const b = bindRepository(url, params.githubUrl);
    if (!b.ok)
      throw new RunnerError(Reasons.RepositoryNotAllowed, `${field} ${redactUrl(url)} was refused before any network call: ${b.problem}.`);
    return b.repository;
  };
  const target = bind("repositoryUrl", params.repositoryUrl);
  return params.kind === "code" && params.docsRepositoryUrl
    ? { target, docs: bind("docsRepositoryUrl", params.docsRepositoryUrl) }
    : { target };
}

function writeGitConfig(home: string, author: Author): void {
  const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  writeOwnFile(
    path.join(home, ".gitconfig"),
    [
      "# Written by the orchestrator agent runner on every run; holds no credentials.",
      "[user]",
      `\tname = ${quote(author.name)}`,
      `\temail = ${quote(author.email)}`,
      "[safe]",
      "\tdirectory = *",
      "[init]",
      "\tdefaultBranch = main",
      "[advice]",
      "\tdetachedHead = false",
      "[pull]",
      "\trebase = false",
      "",
    ].join("\n"),
  );
}

function defaultPullRequestText(params: RunParameters): PullRequestText {
  const footer = `Opened by the orchestrator agent runner (run ${params.runName}, attempt ${params.attempt}).`;
  if (params.kind === "docs") {
    return {
      title: "docs: generate Task Master documentation",
      body: `Generated task documentation under \`${params.workingDirectory}/.taskmaster/docs/\`.\n\n${footer}`,
    };
  }
  return {
    title: `feat(${params.service ?? "service"}): implement task ${params.taskId}`,
    body: `Implements task ${params.taskId}${params.service ? ` for service ${params.service}` : ""}.\n\n${footer}`,
  };
}

/**
 * Reads PR_DESCRIPTION.md (working directory first, then the repository root) and removes it
 * from the tree. `fromAgent`: the agent wrote one (else the default text).
 */
async function takePrDescription(
  git: Git,
  repoDir: string,
  workDir: string,
  params: RunParameters,
  log: Logger,
): Promise<PullRequestText & { fromAgent: boolean }> {
  const fallback = defaultPullRequestText(params);
  let text: PullRequestText | null = null;
  for (const dir of [...new Set([workDir, repoDir])]) {
    const file = path.join(dir, "PR_DESCRIPTION.md");
    if (!fs.existsSync(file)) continue;
    const parsed: PullRequestText | null = text ? null : parsePrDescription(fs.readFileSync(file, "utf8"), fallback.title);
    const relative = path.relative(repoDir, file);
    if ((await git.tracked(repoDir, [relative])).has(relative)) await git.run(repoDir, ["rm", "--quiet", "--cached", "--", relative]);
    fs.rmSync(file);
    if (parsed) {
      text = parsed;
      log.info({ file: relative, title: parsed.title }, "Read the agent's PR description");
    }
  }
  if (!text) return { ...fallback, fromAgent: false };
  const footer = `\n\n---\n_Run ${params.runName}, attempt ${params.attempt}${params.taskId !== undefined ? `, task ${params.taskId}` : ""}._`;
  return { title: text.title, body: `${text.body}${footer}`, fromAgent: true };
}

/** Pushes HEAD to the run's branch; a rejected push is retried once after merging the remote branch. */
export async function pushBranch(
  git: Git,
  repoDir: string,
  params: Pick<RunParameters, "branch" | "repositoryUrl">,
  log: Logger,
): Promise<void> {
  const push = () => git.remote(repoDir, ["push", "--no-verify", "origin", `HEAD:refs/heads/${params.branch}`]);
  try {
    await push();
  } catch (err) {
    if (!isNonFastForward(err)) throw pushFailed(params, err);
    log.warn({ branch: params.branch }, "Push was rejected; merging the remote branch and pushing again");
    try {
      await git.remote(repoDir, ["fetch", "--no-tags", "origin", `+refs/heads/${params.branch}:refs/remotes/origin/${params.branch}`]);
      const merge = await git.run(repoDir, ["merge", "--no-edit", `origin/${params.branch}`], { allowFailure: true });
      if (merge.exitCode !== 0) {
        const conflicts = await git.conflictedPaths(repoDir);
        await git.run(repoDir, ["merge", "--abort"], { allowFailure: true });
        throw new RunnerError(
          Reasons.PushFailed,
          `The remote branch ${params.branch} moved and merging it conflicts in: ${conflicts.join(", ") || "(unknown)"}. The work is committed locally in the workspace; resolve the conflict and retry.`,
        );
      }
      await push();
    } catch (err2) {
      if (err2 instanceof RunnerError) throw err2;
      throw pushFailed(params, err2);
    }
  }
  log.info({ branch: params.branch, head: await git.revParse(repoDir, "HEAD") }, "Pushed branch");
}

function pushFailed(params: Pick<RunParameters, "branch" | "repositoryUrl">, err: unknown): RunnerError {
  const detail = err instanceof GitError ? err.message : String(err);
  return new RunnerError(
    Reasons.PushFailed,
    `Could not push ${params.branch} to ${redactUrl(params.repositoryUrl)}: ${detail}. The work is committed in the workspace; check the credentials' write access and branch protection.`,
    { cause: err },
  );
}

interface RunState {
  params?: RunParameters;
  branch?: string;
  commit?: string;
  claude?: ClaudeOutcome;
  channel?: AgentChannel;
}

/** At most this many GitHub actions go into the result (the termination message has 4 KiB). */
export const MAX_REPORTED_ACTIONS = 8;

function usage(state: RunState): Partial<AgentResult> {
  const p = state.claude?.progress;
  const meter = state.channel?.proxy.meter();
  const actions = state.channel?.actions ?? [];
  const metered = meter && meter.requests > 0 && meter.unpricedRequests === 0 ? { costUsd: meter.costUsd } : {};
  const reported = actions.length > 0 ? { githubActions: actions.slice(-MAX_REPORTED_ACTIONS) } : {};
  if (!p || !state.params) return { ...metered, ...reported };
  return {
    ...computeUsage(p, state.params.maxTurns),
    toolCalls: Object.values(p.toolCalls).reduce((a, b) => a + b, 0),
    ...metered,
    ...reported,
  };
}

/** Anthropic's Messages API: the model proxy's upstream unless agent.anthropicBaseUrl names another. */
const ANTHROPIC_API_URL = "https://api.anthropic.com";

/** The run's side of the agent's channel: the model proxy and the scoped GitHub tools' record. */
export interface AgentChannel {
  proxy: ModelProxy;
  actions: GitHubAction[];
  /** Aborted when the dollar budget is spent. */
  costSignal: AbortSignal;
}

/** Puts the run's model proxy and GitHub tools behind the channel server's handlers. */
function openChannel(o: {
  env: RunnerEnv;
  params: RunParameters;
  target: BoundRepository;
  github: GitHubPort;
  handlers: ChannelHandlers;
  log: Logger;
}): AgentChannel {
  const { params, log } = o;
  const cost = new AbortController();
  const actions: GitHubAction[] = [];
  o.handlers.proxy = createModelProxy({
    upstream: o.env.anthropicBaseUrl || ANTHROPIC_API_URL,
    apiKey: o.env.anthropicApiKey ?? "",
    ...(params.maxCostUsd ? { maxCostUsd: params.maxCostUsd } : {}),
    log,
    onBudgetSpent: () => cost.abort(),
  });
  o.handlers.tools = {
    github: o.github,
    scope: {
      owner: o.target.owner,
      repo: o.target.repo,
      branch: params.branch,
      baseBranch: params.baseBranch,
      labels: params.stageLabels ?? [],
    },
    record: (action) => actions.push(action),
    log,
    version: "1",
  };
  log.info({ maxCostUsd: params.maxCostUsd ?? null }, "Opened the agent's model proxy and GitHub tools");
  return { proxy: o.handlers.proxy, actions, costSignal: cost.signal };
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new RunnerError(
      Reasons.Terminated,
      "The runner was asked to stop (SIGTERM) before the agent started: the run was cancelled or hit its deadline.",
    );
}

/** The channel's git: its own HOME and config, the run's credentials for the origin only, hardened. */
function createRunGit(c: {
  env: RunnerEnv;
  layout: Layout;
  credentials: Credentials;
  redactor: Redactor;
  log: Logger;
  outside: string;
  remoteUrl: string;
}): Git {
  // The channel's git has a HOME of its own: the agent's HOME (and its .gitconfig) is agent-writable.
  writeGitConfig(c.outside, c.credentials.author);
  const gitEnv = {
    ...c.env.baseEnv,
    HOME: c.outside,
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    LC_ALL: "C",
    GIT_CEILING_DIRECTORIES: path.dirname(c.outside),
    ...gitCaEnv(c.layout.taskFile(TaskFileKeys.githubCa), c.outside, c.env.baseEnv),
  };
  return new Git({
    env: gitEnv,
    auth: c.credentials.gitAuth,
    redactor: c.redactor,
    log: c.log,
    origin: c.remoteUrl,
    gitDirs: { [c.layout.repo]: c.layout.gitDir },
  });
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );

/** Waits for every step, then throws the first failure in the order given (whichever answered first). */
async function firstFailure(steps: Promise<Settled<unknown>>[]): Promise<void> {
  for (const step of await Promise.all(steps)) if (!step.ok) throw step.error;
}

/** The run's parameters from its ConfigMap (run.json). */
function readRunParameters(layout: Layout): RunParameters {
  const runJson = layout.taskFile(TaskFileKeys.runJson);
  let runText: string;
  try {
    runText = fs.readFileSync(runJson, "utf8");
  } catch {
    throw new RunnerError(Reasons.AgentFilesInvalid, `${runJson} is missing: the run's ConfigMap is not mounted at ${layout.taskFiles}.`);
  }
  return parseRunParameters(runText, runJson);
}

/** What a run holds until it ends: released in runAgent's finally, whatever happened. */
interface RunResources {
  credentials?: Credentials;
  /** The runner's own directory for commands outside the clone. */
  outside?: string;
}

/** The run's remotes: its credentials, git, GitHub client and repository URLs. */
interface Connected {
  target: BoundRepository;
  credentials: Credentials;
  github: GitHubPort;
  git: Git;
  outside: string;
  remoteUrl: string;
  /** The docs repository's URL (null without one), and whether it is the target itself. */
  docsRemoteUrl: string | null;
  docsIsTarget: boolean;
}

/** Credentials, git and GitHub for the run's repositories (reached in prepareWorkspace). */
async function connect(
  c: { env: RunnerEnv; options: RunnerOptions; layout: Layout; params: RunParameters; redactor: Redactor; log: Logger },
  held: RunResources,
): Promise<Connected> {
  const { env, options, layout, params, redactor, log } = c;
  const { target, docs } = bindRunRepositories(params);
  checkAborted(options.signal);
  fs.mkdirSync(layout.workspace, { recursive: true });
  adoptLegacyHome(legacyHome(layout, params), layout.home, log);
  const credentials = await resolveCredentials({
    params,
    layout,
    githubToken: env.githubToken,
    target,
    ...(docs && docs.key !== target.key ? { docs } : {}),
    redactor,
    log,
  });
  held.credentials = credentials;
  writeGitConfig(layout.home, credentials.author);
  const github = options.github
    ? options.github({ params, target, credentials, log })
    : createGitHubClient({ baseUrl: params.githubApiUrl, owner: target.owner, repo: target.repo, token: credentials.apiToken, log });
  // Commands outside the clone run in a directory of the runner's own, never in the workspace,
  // where an agent could have left a .git whose config git would read; the ceiling stops git
  // from looking for one above it.
  const outside = (held.outside = fs.mkdtempSync(path.join(os.tmpdir(), "runner-git-")));
  const remoteUrl = credentials.remoteUrl(target);
  const git = createRunGit({ env, layout, credentials, redactor, log, outside, remoteUrl });
  const docsRemoteUrl = docs ? credentials.remoteUrl(docs) : null;
  const docsIsTarget = docs?.key === target.key;
  checkAborted(options.signal);
  return { target, credentials, github, git, outside, remoteUrl, docsRemoteUrl, docsIsTarget };
}

/**
 * Clones or updates the workspace, brings the task documents and the agent's files; returns the
 * working directory and prompt. The API access check, the repository and a docs repository of its
 * own are reached at once, so a wrong URL, key or branch fails in seconds; failures are reported
 * in that order whichever answers first (a clone or fetch a failed check let run is harmless: the
 * next run fetches into it).
 */
async function prepareWorkspace(
  c: Connected,
  p: { layout: Layout; params: RunParameters; files: ReturnType<typeof readAgentFiles>; log: Logger },
): Promise<{ workDir: string; prompt: string }> {
  const { layout, params, files, log } = p;
  const { git, target, credentials } = c;
  const access = c.github
    .checkRepositoryAccess()
    .then(() => log.info({ owner: target.owner, repo: target.repo, git: credentials.gitMethod }, "Checked GitHub access"));
  const docsOptions = { git, params, repoDir: layout.repo, docsRemoteUrl: c.docsRemoteUrl!, docsIsTarget: c.docsIsTarget, log };
  const docsRead = params.kind === "code" && !c.docsIsTarget ? readTaskDocs(docsOptions) : undefined;
  const excludes = computeExcludes(params.workingDirectory);
  const repository = prepareRepository({
    git,
    params,
    repoDir: layout.repo,
    remoteUrl: c.remoteUrl,
    author: credentials.author,
    excludes: excludes.infoExclude,
    commitExcludes: excludes.commitExcludes,
    scratchDir: c.outside,
    log,
  });
  await firstFailure([settle(access), settle(repository), ...(docsRead ? [settle(docsRead)] : [])]);
  const workDir = path.join(layout.repo, params.workingDirectory);
  fs.mkdirSync(workDir, { recursive: true });
  let prompt: string;
  if (params.kind === "code") {
    const taskDocs = await (docsRead ?? readTaskDocs(docsOptions));
    writeTaskDocs(workDir, taskDocs);
    prompt = taskDocs["prompt.md"]!;
  } else {
    const tasksJson = path.join(workDir, ".taskmaster", "tasks", "tasks.json");
    if (!fs.existsSync(tasksJson)) {
      throw new RunnerError(
        Reasons.TaskDocsMissing,
        `${path.posix.join(params.workingDirectory, ".taskmaster/tasks/tasks.json")} does not exist on ${params.baseBranch} of ${redactUrl(params.repositoryUrl)}. Run Task Master there first, or check workingDirectory and sourceBranch.`,
      );
    }
    prompt = files.docsPrompt!;
  }
  await installAgentFiles({ files, workDir, repoDir: layout.repo, overwriteMemory: params.overwriteMemory, git, log });
  return { workDir, prompt };
}

/** The agent's task, once the time budget still allows starting it. */
function agentTask(
  params: RunParameters,
  w: { workDir: string; prompt: string; home: string; files: ReturnType<typeof readAgentFiles> },
  startedAt: number,
): AgentTask {
  const deadline = startedAt + params.timeBudgetSeconds * 1000;
  if (deadline <= Date.now())
    throw new RunnerError(
      Reasons.BudgetExceeded,
      `The ${params.timeBudgetSeconds}s budget was used up preparing the workspace; Claude was not started.`,
    );
  return {
    runName: params.runName,
    attempt: params.attempt,
    prompt: w.prompt,
    model: params.model,
    maxTurns: params.maxTurns,
    continueSession: params.continueSession,
    workDir: w.workDir,
    home: w.home,
    systemPrompt: w.files.systemPrompt,
    settingsPath: w.files.settingsPath,
    deadline,
  };
}

/** The result of a run that failed: the error's reason and redacted message, and what the run got done. */
function failedResult(err: unknown, redactor: Redactor, state: RunState, log: Logger): AgentResult {
  const runnerError =
    err instanceof RunnerError
      ? err
      : new RunnerError(Reasons.InternalError, `Unexpected runner failure: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  const message = redactor.scrub(runnerError.message);
  log.error(
    {
      reason: runnerError.reason,
      err: message,
      ...(runnerError.reason === Reasons.InternalError ? { stack: redactor.scrub((err as Error)?.stack ?? "") } : {}),
    },
    "Run failed",
  );
  return {
    outcome: "failed",
    reason: runnerError.reason,
    message,
    ...(state.branch ? { branch: state.branch } : {}),
    ...(state.commit ? { commit: state.commit } : {}),
    ...usage(state),
  };
}

/** Runs one attempt and returns its result (never throws). */
export async function runAgent(env: RunnerEnv, options: RunnerOptions): Promise<AgentResult> {
  const startedAt = options.startedAt ?? Date.now();
  const redactor = new Redactor();
  redactor.add(env.githubToken);
  redactor.add(env.anthropicApiKey);
  const baseLog = options.log ?? createLogger({ level: env.logLevel, name: "agent-runner" });
  const layout = buildLayout(env.agentRoot);
  const state: RunState = {};
  const held: RunResources = {};
  let log = baseLog;
  try {
    const params = readRunParameters(layout);
    state.params = params;
    state.branch = params.branch;
    log = baseLog.child({ run: params.runName, namespace: params.namespace, attempt: params.attempt, kind: params.kind });
    log.info(
      {
        repository: redactUrl(params.repositoryUrl),
        branch: params.branch,
        base: params.baseBranch,
        model: params.model,
        continueSession: params.continueSession,
      },
      "Started agent runner",
    );
    const files = readAgentFiles(layout, params.kind);
    const c = await connect({ env, options, layout, params, redactor, log }, held);
    const w = await prepareWorkspace(c, { layout, params, files, log });
    checkAborted(options.signal);
    state.channel = openChannel({ env, params, target: c.target, github: c.github, handlers: options.handlers, log });
    const task = agentTask(params, { ...w, home: layout.home, files }, startedAt);
    const claude = await options.agentStep(task, state.channel);
    state.claude = claude;
    const { git, github, credentials } = c;
    return await deliver({ git, github, params, layout, workDir: w.workDir, credentials, claude, state, log });
  } catch (err) {
    return failedResult(err, redactor, state, log);
  } finally {
    held.credentials?.dispose();
    if (held.outside) fs.rmSync(held.outside, { recursive: true, force: true });
  }
}

const STOPPED: Record<Exclude<ClaudeOutcome["status"], "completed">, { outcome: AgentResult["outcome"]; reason: Reason; what: string }> = {
  "budget-exceeded": { outcome: "budget-exceeded", reason: Reasons.BudgetExceeded, what: "used up its wall-clock budget" },
  "max-turns": { outcome: "budget-exceeded", reason: Reasons.MaxTurnsReached, what: "used all its turns" },
  "cost-exceeded": { outcome: "budget-exceeded", reason: Reasons.CostBudgetExceeded, what: "spent the run's dollar budget (maxCostUsd)" },
  terminated: { outcome: "failed", reason: Reasons.Terminated, what: "was stopped (cancel or Job deadline)" },
  failed: { outcome: "failed", reason: Reasons.AgentFailed, what: "failed" },
};

interface Delivery {
  git: Git;
  github: GitHubPort;
  params: RunParameters;
  layout: Layout;
  workDir: string;
  credentials: Credentials;
  claude: ClaudeOutcome;
  state: RunState;
  log: Logger;
}

/** What a delivery commits: a DocsRun only its documentation, a CodeRun everything but the task files. */
function commitScopeOf(params: RunParameters): { pathspecs?: string[]; excludes?: string[] } {
  return params.kind === "docs"
    ? { pathspecs: [path.posix.join(params.workingDirectory, ".taskmaster", "docs")] }
    : { excludes: computeExcludes(params.workingDirectory).commitExcludes };
}

/** Commits, pushes and opens or updates the pull request, or saves the work in progress of an agent that stopped. */
async function deliver(d: Delivery): Promise<AgentResult> {
  const { git, params, layout, log } = d;
  if (params.kind === "docs") {
    const docsChanges = await git.status(layout.repo, commitScopeOf(params).pathspecs);
    const others = (await git.status(layout.repo)).length - docsChanges.length;
    if (others > 0) log.warn({ files: others }, "Ignored changes outside .taskmaster/docs (DocsRuns only commit documentation)");
  }
  return d.claude.status === "completed" ? deliverFinished(d) : deliverStopped(d, d.claude.status);
}

/** What the result says of an agent that stopped before finishing. */
export function stoppedMessage(claude: ClaudeOutcome, what: string): string {
  if (claude.status !== "failed") return `Claude Code ${what}.`;
  const result = claude.progress.result ? `, result ${claude.progress.result.subtype}` : "";
  const stderr = claude.stderrTail ? `: ${claude.stderrTail}` : "";
  return `Claude Code ${what} (exit code ${claude.exitCode ?? "none"}${result}${stderr}).`;
}

/** What became of the work in progress of an agent that stopped. */
export function savedMessage(pushed: boolean, committed: boolean, branch: string): string {
  if (pushed) return ` Work in progress${committed ? " was committed and" : ""} pushed to ${branch}; the next attempt continues from it.`;
  return committed ? " Work in progress was committed in the workspace but could not be pushed." : " There was no work to save.";
}

/** The agent stopped (budget, turns, cost, cancel, failure): its work in progress is committed and pushed for the next attempt. */
async function deliverStopped(d: Delivery, status: Exclude<ClaudeOutcome["status"], "completed">): Promise<AgentResult> {
  const { git, params, layout, credentials, state, log } = d;
  const repoDir = layout.repo;
  const stopped = STOPPED[status];
  const message = stoppedMessage(d.claude, stopped.what);
  const scope = commitScopeOf(params);
  const commit =
    (await git.status(repoDir, scope.pathspecs ?? [])).length > 0
      ? await git.commitAll(
          repoDir,
          `wip: ${params.kind === "code" ? `task ${params.taskId}` : "docs"}: work in progress (${stopped.reason})\n\n${message}\nRun ${params.runName}, attempt ${params.attempt}.`,
          credentials.author,
          scope,
        )
      : null;
  const head = await git.revParse(repoDir, "HEAD");
  if (head) state.commit = head;
  let pushed = false;
  if ((await git.countCommits(repoDir, `origin/${params.baseBranch}`, "HEAD")) > 0) {
    try {
      await pushBranch(git, repoDir, params, log);
      pushed = true;
    } catch (err) {
      log.error({ err: (err as Error).message }, "Could not push work in progress");
    }
  }
  return {
    outcome: stopped.outcome,
    reason: stopped.reason,
    message: `${message}${savedMessage(pushed, Boolean(commit), params.branch)}`,
    branch: params.branch,
    ...(state.commit ? { commit: state.commit } : {}),
    ...usage(state),
  };
}

/** The agent finished: its changes are committed and pushed, and the pull request opened or updated. */
async function deliverFinished(d: Delivery): Promise<AgentResult> {
  const { git, github, params, layout, credentials, state, log } = d;
  const repoDir = layout.repo;
  // Only a finished agent's description is used up; after a stop it stays (uncommitted) for the next attempt.
  const text = await takePrDescription(git, repoDir, d.workDir, params, log);
  const message =
    params.kind === "code"
      ? `${text.title}\n\nTask ${params.taskId}, run ${params.runName}, attempt ${params.attempt}.`
      : `docs: auto-generate Task Master documentation\n\nRun ${params.runName}.`;
  const commit = await git.commitAll(repoDir, message, credentials.author, commitScopeOf(params));
  if (commit) log.info({ commit }, "Committed the agent's changes");
  const head = await git.revParse(repoDir, "HEAD");
  if (head) state.commit = head;
  const delivered = { branch: params.branch, ...(state.commit ? { commit: state.commit } : {}) };
  if ((await git.countCommits(repoDir, `origin/${params.baseBranch}`, "HEAD")) === 0) {
    log.info({ branch: params.branch }, "The agent made no changes; no pull request");
    return {
      outcome: "no-changes",
      reason: Reasons.NoChanges,
      message: `The agent finished without changes relative to ${params.baseBranch}; nothing was pushed.`,
      ...delivered,
      ...usage(state),
    };
  }
  await pushBranch(git, repoDir, params, log);
  const { pullRequest, created } = await ensurePullRequest(github, {
    title: text.title,
    body: text.body,
    head: params.branch,
    base: params.baseBranch,
    labels: params.prLabels,
    replaceText: text.fromAgent,
  });
  log.info(
    { pullRequest: pullRequest.htmlUrl, number: pullRequest.number, created },
    created ? "Opened pull request" : "Found existing pull request",
  );
  return {
    outcome: "succeeded",
    reason: created ? Reasons.PullRequestOpened : Reasons.PullRequestUpdated,
    message: `${created ? "Opened" : "Updated"} pull request #${pullRequest.number} (${params.branch} → ${params.baseBranch}).`,
    pullRequestUrl: pullRequest.htmlUrl,
    ...delivered,
    ...usage(state),
  };
}

/** The system CA file of the agent image (Debian's ca-certificates). */
const SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt";

/**
 * git's CAs.
 * - github.caBundle: GIT_SSL_CAINFO replaces git's CAs rather than adding to them, so the system
 *   CAs (or the file GIT_SSL_CAINFO already named) and the bundle go into one file of the
 *   runner's own. No bundle mounted: git keeps its CA file.
 * - The CA directory: after the CA file, git's curl (GnuTLS) also reads every file of its
 *   default directory, /etc/ssl/certs: the same system CAs again, 444 files, about 50 ms of CPU
 *   in every fetch, clone and push. When the CA file in use holds the system CAs, git gets an
 *   empty directory of the runner's own instead (unless GIT_SSL_CAPATH names one).
 */
function gitCaEnv(caFile: string, dir: string, env: Record<string, string | undefined>): Record<string, string> {
  // The CA file git reads without a bundle, when it exists.
  const inUse = env.GIT_SSL_CAINFO ?? SYSTEM_CA_FILE;
  const inUseExists = fs.existsSync(inUse);
  const result: Record<string, string> = {};
  if (fs.existsSync(caFile)) {
    const base = inUseExists ? [fs.readFileSync(inUse, "utf8")] : [];
    const bundle = path.join(dir, "github-ca-bundle.crt");
    fs.writeFileSync(bundle, [...base, fs.readFileSync(caFile, "utf8")].join("\n"));
    result.GIT_SSL_CAINFO = bundle;
  }
  if (env.GIT_SSL_CAPATH === undefined && inUse === SYSTEM_CA_FILE && inUseExists) {
    const empty = path.join(dir, "no-ca-dir");
    fs.mkdirSync(empty, { recursive: true });
    result.GIT_SSL_CAPATH = empty;
  }
  return result;
}
