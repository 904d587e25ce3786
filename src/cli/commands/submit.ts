/**
 * `task code` and `docs generate` (also `task docs`, upstream's name): upstream's flags and
 * defaults, completed from the git checkout. The CLI never commits or pushes: when the task files
 * the agent will read are not on the remote yet, it stops and prints the commands that would put
 * them there (or submits anyway with --allow-uncommitted).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import type { Submitted } from "../../client/api.js";
import { detectGit, shellQuote, uncommitted, unpushedCount } from "../../client/git.js";
import { completeCodeRequest, completeDocsRequest, InputError, parseEnvFromSecrets, parseEnvPairs } from "../../client/requests.js";
import { action, type CliDeps, type CommandContext } from "../context.js";
import { waitForRun, exitCodeOfPhase, finalSummary, ExitCodes } from "../watch.js";

const collect = (v: string, prev: string[] = []) => [...prev, v];
const int = (flag: string) => (v: string) => {
  if (!/^-?[0-9]+$/.test(v)) throw new InputError(`${flag} ${v}: expected a whole number.`);
  return Number(v);
};
const usd = (flag: string) => (v: string) => {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v)) throw new InputError(`${flag} ${v}: expected an amount in US dollars, e.g. 2.50.`);
  return Number(v);
};

interface WaitFlags {
  wait?: boolean;
  waitTimeout?: number;
}

function addWaitOptions(cmd: Command): Command {
  return cmd
    .option("--wait", "follow the run until it ends: live progress on a terminal, then the PR URL; the exit code tells the outcome")
    .option("--wait-timeout <seconds>", "with --wait: give up after this many seconds (exit code 5)", int("--wait-timeout"))
    .option("--idempotency-key <key>", "makes a repeated submission safe: the second one is refused and creates nothing");
}

/** After a submission: print it, and with --wait follow the run and set the exit code. */
export async function reportSubmitted(ctx: CommandContext, s: Submitted, flags: WaitFlags): Promise<void> {
  if (!flags.wait) {
    ctx.printData(
      s.data,
      () =>
        `${s.kind} ${s.name} submitted in namespace ${s.namespace}.\nFollow it: orchestrator runs watch ${s.kind.toLowerCase()}/${s.name}`,
    );
    return;
  }
  if (ctx.format === "table") ctx.print(`${s.kind} ${s.name} submitted in namespace ${s.namespace}.`);
  await waitAndReport(ctx, s.kind, s.name, flags);
}

export async function waitAndReport(ctx: CommandContext, kind: string, name: string, flags: WaitFlags): Promise<void> {
  const { run, elapsedMs, timedOut } = await waitForRun({
    client: ctx.client(),
    kind,
    name,
    // With -o json|yaml stdout carries only the final document; progress goes to stderr.
    out: ctx.format === "table" ? ctx.deps.stdout : ctx.deps.stderr,
    tty: ctx.tty,
    timeoutMs: flags.waitTimeout !== undefined ? flags.waitTimeout * 1000 : undefined,
    now: ctx.deps.now,
  });
  ctx.printData(run, () => (timedOut ? "" : finalSummary(run, elapsedMs)));
  if (timedOut) {
    ctx.note(
      `Stopped waiting after ${flags.waitTimeout} s; ${kind} ${name} goes on. Follow it: orchestrator runs watch ${kind.toLowerCase()}/${name}`,
    );
    ctx.exitCode = ExitCodes.timeout;
    return;
  }
  ctx.exitCode = exitCodeOfPhase(run.status?.phase ?? "Pending");
}

/** The request fields of `submit code`'s flags (the git origin fills the rest). */
function codeRequestOf(taskId: number, o: Record<string, unknown>) {
  return {
    task_id: taskId,
    service: o.service as string,
    repository_url: o.repositoryUrl,
    docs_repository_url: o.docsRepositoryUrl,
    docs_project_directory: o.docsProjectDirectory,
    working_directory: o.workingDirectory,
    model: o.model,
    github_user: o.githubUser,
    github_app: o.githubApp,
    local_tools: o.localTools,
    remote_tools: o.remoteTools,
    context_version: o.contextVersion,
    prompt_modification: o.promptModification,
    docs_branch: o.docsBranch,
    continue_session: o.continueSession,
    overwrite_memory: o.overwriteMemory,
    env: parseEnvPairs(o.env as string[]),
    env_from_secrets: parseEnvFromSecrets(o.envFromSecrets as string[]),
    timeout_seconds: o.timeoutSeconds,
    max_retries: o.maxRetries,
    max_turns: o.maxTurns,
    max_cost_usd: o.maxCostUsd,
  };
}

function codeCommand(deps: CliDeps, results: { exitCode: number }): Command {
  const cmd = new Command("code")
    .description("submit a coding task (creates a CodeRun); repository URLs default to the git origin")
    .argument("<task_id>", "Task Master task id", int("task_id"))
    .requiredOption("-s, --service <service>", "target service (selects the workspace volume workspace-{service})")
    .option("--repository-url <url>", "repository the agent writes to (default: git origin)")
    .option("--docs-repository-url <url>", "repository holding the Task Master docs (default: git origin)")
    .option("--docs-project-directory <dir>", "project directory in the docs repository")
    .option("--github-user <user>", "GitHub user the agent acts as (default: git config user.name, then claude-agent-1)")
    .option("--github-app <app>", "GitHub App the agent acts as (instead of --github-user)")
    .option("-w, --working-directory <dir>", "subdirectory of the repository (default: the service name)")
    .option("--model <model>", "Claude model (default: the controller's models.defaultCodeModel)")
    .option("--local-tools <tools>", "comma-separated local MCP tools")
    .option("--remote-tools <tools>", "comma-separated remote MCP tools")
    .option("--context-version <n>", "context version", int("--context-version"), 1)
    .option("--prompt-modification <text>", "extra instructions added to the agent's CLAUDE.md")
    .option("--docs-branch <branch>", "branch of the docs repository", "main")
    .option("--continue-session", "resume the agent's previous conversation", false)
    .option("--overwrite-memory", "replace the agent's CLAUDE.md memory", false)
    .option("--env <K=V,...>", "environment variables for the agent (repeatable)", collect, [])
    .option("--env-from-secrets <name:secret:key,...>", "environment variables from Secrets (repeatable)", collect, [])
    .option("--timeout-seconds <n>", "wall-clock limit of one attempt", int("--timeout-seconds"))
    .option("--max-retries <n>", "retries after a failed attempt", int("--max-retries"))
    .option("--max-turns <n>", "agent turn limit per attempt", int("--max-turns"))
    .option("--max-cost-usd <usd>", "dollar budget per attempt (model tokens at list prices; 0 = none)", usd("--max-cost-usd"));
  addWaitOptions(cmd);
  return cmd.action(
    action(deps, results, async (ctx, taskId: number, o: Record<string, unknown>) => {
      const git = await detectGit(ctx.deps.cwd);
      const { body, notes } = completeCodeRequest(codeRequestOf(taskId, o), git);
      notes.forEach((n) => ctx.note(n));
      await reportSubmitted(ctx, await ctx.client().submitCode(body, o.idempotencyKey as string | undefined), o as WaitFlags);
    }),
  );
}

/** Stops (exit 2) when .taskmaster has changes the agent would not see, printing the git commands. */
async function checkTaskFilesPushed(ctx: CommandContext, dir: string): Promise<boolean> {
  const dirty = await uncommitted(dir, ".taskmaster");
  const ahead = await unpushedCount(dir);
  if (dirty.length === 0 && ahead === 0) return true;
  const path = shellQuote(join(dir, ".taskmaster"));
  ctx.note(
    dirty.length
      ? `${dirty.length} uncommitted change(s) under ${path}; the agent clones the remote and would not see them. The CLI never commits for you; to publish them run:\n  git add ${path} && git commit -m "chore: update .taskmaster for documentation generation" && git push\nthen run this command again (or pass --allow-uncommitted to submit anyway).`
      : `${ahead} local commit(s) are not pushed; the agent clones the remote and would not see them. Run:\n  git push\nthen run this command again (or pass --allow-uncommitted to submit anyway).`,
  );
  ctx.exitCode = ExitCodes.usage;
  return false;
}

export function docsCommand(deps: CliDeps, results: { exitCode: number }, name: string): Command {
  const cmd = new Command(name)
    .description("generate documentation for the Task Master project in the current directory (creates a DocsRun)")
    .option(
      "-w, --working-directory <dir>",
      "directory holding .taskmaster/, relative to the repository root (default: the current directory)",
    )
    .option("--model <model>", "Claude model (default: the controller's models.defaultDocsModel)")
    .option("--repository-url <url>", "repository (default: git origin)")
    .option("--source-branch <branch>", "branch to document (default: the current branch)")
    .option("--github-user <user>", "GitHub user the agent acts as (default: git config user.name, then claude-agent-1)")
    .option("--github-app <app>", "GitHub App the agent acts as (instead of --github-user)")
    .option("--include-codebase", "also give the agent a summary of the codebase")
    .option("--allow-uncommitted", "submit even when .taskmaster has changes that are not pushed");
  addWaitOptions(cmd);
  return cmd.action(
    action(deps, results, async (ctx, o: Record<string, unknown>) => {
      const git = await detectGit(ctx.deps.cwd);
      const wd = (o.workingDirectory as string | undefined) ?? git.relativeDir;
      const dir = git.root ? join(git.root, wd) : ctx.deps.cwd;
      const tasksJson = join(dir, ".taskmaster", "tasks", "tasks.json");
      if (!existsSync(tasksJson))
        throw new InputError(
          `${tasksJson} does not exist: run this in a Task Master project (task-master init / parse-prd) or pass -w with the directory that holds .taskmaster/.`,
        );
      if (!o.allowUncommitted && !(await checkTaskFilesPushed(ctx, dir))) return;
      const { body, notes } = completeDocsRequest(
        {
          working_directory: wd,
          model: o.model,
          repository_url: o.repositoryUrl,
          source_branch: o.sourceBranch,
          github_user: o.githubUser,
          github_app: o.githubApp,
          include_codebase: o.includeCodebase,
        },
        git,
      );
      notes.forEach((n) => ctx.note(n));
      await reportSubmitted(ctx, await ctx.client().submitDocs(body, o.idempotencyKey as string | undefined), o as WaitFlags);
    }),
  );
}

export function taskCommands(deps: CliDeps, results: { exitCode: number }): Command[] {
  const task = new Command("task").description("submit work (upstream's commands)");
  task.addCommand(codeCommand(deps, results));
  task.addCommand(docsCommand(deps, results, "docs"));
  const docs = new Command("docs").description("documentation runs");
  docs.addCommand(docsCommand(deps, results, "generate"));
  return [task, docs];
}
