/**
 * The repository clone on the workspace volume: cloned once, then fetched on every run; the run's
 * branch checked out (or created from the base branch) and the base branch merged in. Work left
 * by a previous run is never thrown away: uncommitted changes become a WIP commit, and a clone of
 * another repository is refused (the run fails, the clone stays as it was).
 */
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { RunParameters } from "../api/runner-contract.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";
import { GitError, isAuthFailure, isRedirected, type Author, type Git } from "./git.js";
import { redactUrl, sameRepository } from "./repo-url.js";

export interface PrepareOptions {
  git: Git;
  params: RunParameters;
  repoDir: string;
  /** The URL git uses for origin (may differ in protocol from params.repositoryUrl). */
  remoteUrl: string;
  author: Author;
  /** Patterns for .git/info/exclude (agent files, task docs). */
  excludes: string[];
  /** Pathspecs never committed (same files, for tracked-file safety). */
  commitExcludes: string[];
  /** An empty directory of the runner's own to run the clone in (never the workspace, where a .git could be planted). */
  scratchDir: string;
  log: Logger;
}

export function unreachable(url: string, err: unknown, what: string): RunnerError {
  const detail = err instanceof GitError ? err.message : String(err);
  const auth = isAuthFailure(err);
  const advice = auth
    ? "The credentials were rejected: check the run's SSH key / token / GitHub App secret and its access to the repository."
    : isRedirected(err)
      ? "The host redirects it elsewhere (a renamed or transferred repository?), and git follows no redirect with the run's credentials: use the repository's new URL."
      : "Check the URL and that the run's SSH key / token / GitHub App secret grants access.";
  return new RunnerError(
    auth ? Reasons.AuthFailed : Reasons.RepoUnreachable,
    `Could not reach the ${what} ${redactUrl(url)} (${detail}). ${advice}`,
    { cause: err },
  );
}

/**
 * A workspace holding something other than a clone of the run's repository is refused: moving it
 * aside would leave another repository's code (and its uncommitted work) readable by this agent.
 */
function foreignWorkspace(params: RunParameters, repoDir: string, found: string): RunnerError {
  return new RunnerError(
    Reasons.WorkspaceInUse,
    `The workspace ${repoDir} holds ${found}, not a clone of ${redactUrl(params.repositoryUrl)}; the run was refused and nothing was changed. Workspaces are kept per repository: give this repository its own service (or delete the workspace volume's clone if it is no longer needed).`,
  );
}

/** Commits uncommitted work left in the clone so nothing is lost; returns the WIP commit. */
async function rescueLeftovers(opts: PrepareOptions): Promise<string | null> {
  const { git, repoDir, params, log } = opts;
  const op = await git.operationInProgress(repoDir);
  if (op) {
    log.warn({ operation: op }, "Aborted an operation a previous run left in progress");
    await git.run(repoDir, [op, "--abort"], { allowFailure: true });
  }
  const dirty = await git.status(repoDir);
  if (dirty.length === 0) return null;
  let branch = await git.currentBranch(repoDir);
  if (!branch || branch === params.baseBranch) {
    // Never commit onto the base branch or a detached HEAD: put the work on its own branch.
    branch = `wip/${params.runName}`;
    await git.run(repoDir, ["switch", "-c", branch]);
  }
  const commit = await git.commitAll(
    repoDir,
    `wip: preserve uncommitted work found before run ${params.runName}\n\nThe workspace held changes that no run had committed; the orchestrator runner saved them here.`,
    opts.author,
    { excludes: opts.commitExcludes },
  );
  log.warn({ branch, commit, files: dirty.length }, "Committed work left uncommitted by a previous run");
  return commit;
}

/** Merges `rev` into the current branch; on conflict aborts and fails with the conflicted paths. */
async function mergeOrFail(opts: PrepareOptions, rev: string): Promise<void> {
  const { git, repoDir, params } = opts;
  const r = await git.run(repoDir, ["merge", "--no-edit", "--no-verify", rev], { allowFailure: true });
  if (r.exitCode === 0) return;
  const conflicts = await git.conflictedPaths(repoDir);
  await git.run(repoDir, ["merge", "--abort"], { allowFailure: true });
  if (conflicts.length > 0) {
    throw new RunnerError(
      Reasons.MergeConflict,
      `Merging ${rev} into ${params.branch} conflicts in: ${conflicts.slice(0, 20).join(", ")}${conflicts.length > 20 ? ", …" : ""}. The merge was aborted and nothing was lost; resolve the conflict on ${params.branch} (merge ${params.baseBranch} into it and push), then retry.`,
    );
  }
  throw new RunnerError(Reasons.WorkspaceFailed, `git merge ${rev} failed: ${r.stderr.split("\n").slice(-3).join(" | ")}`);
}

/**
 * Clones with the git directory where the work tree's owner wants it (the channel's private
 * directory): the `.git` link file clone leaves in the work tree is removed, so nothing in the
 * work tree points at it. The clone goes into the (empty) directory as it is, never a new one:
 * the agent container starts alongside the channel and kubelet bind-mounts this very directory
 * into it, so replacing it would leave the agent an empty, deleted one.
 */
async function cloneInto(opts: PrepareOptions): Promise<void> {
  const { git, repoDir, remoteUrl } = opts;
  fs.mkdirSync(repoDir, { recursive: true });
  const gitDir = git.gitDirOf(repoDir);
  if (gitDir === path.join(repoDir, ".git")) {
    await git.remote(opts.scratchDir, ["clone", "--no-tags", "--", remoteUrl, repoDir]);
    return;
  }
  fs.rmSync(gitDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(gitDir), { recursive: true, mode: 0o700 });
  await git.remote(opts.scratchDir, ["clone", "--no-tags", `--separate-git-dir=${gitDir}`, "--", remoteUrl, repoDir]);
  fs.rmSync(path.join(repoDir, ".git"), { force: true });
}

/**
 * Whether the workspace already holds a clone of the run's repository (guarded, origin set to
 * the run's URL); false for an empty or missing directory. Anything else is refused.
 */
async function existingClone(opts: PrepareOptions): Promise<boolean> {
  const { git, params, repoDir, remoteUrl } = opts;
  if (!fs.existsSync(repoDir)) return false;
  // Asked at once, once there is a git directory (without one, git would look for a repository above).
  const [isRepository, origin] = fs.existsSync(git.gitDirOf(repoDir))
    ? await Promise.all([git.isRepository(repoDir), git.guardClone(repoDir)])
    : [false, null];
  if (!isRepository) {
    if (fs.readdirSync(repoDir).length > 0) throw foreignWorkspace(params, repoDir, "files that are not a git clone");
    return false;
  }
  if (!origin || !sameRepository(origin, remoteUrl))
    throw foreignWorkspace(params, repoDir, origin ? `a clone of ${redactUrl(origin)}` : "a clone without an origin");
  if (origin !== remoteUrl) await git.run(repoDir, ["remote", "set-url", "origin", remoteUrl]);
  return true;
}

/** Converges the clone to: params.branch checked out, up to date with its remote and the base branch. */
export async function prepareRepository(opts: PrepareOptions): Promise<void> {
  const { git, params, repoDir, log } = opts;
  fs.mkdirSync(path.dirname(repoDir), { recursive: true });
  const cloned = !(await existingClone(opts));
  if (cloned) {
    try {
      await cloneInto(opts);
    } catch (err) {
      throw unreachable(params.repositoryUrl, err, "repository");
    }
    log.info({ repository: redactUrl(params.repositoryUrl), dir: repoDir }, "Cloned repository");
  }

  git.ensureExcluded(repoDir, opts.excludes);
  if (!cloned) {
    // The fetch only moves remote-tracking refs, so it runs beside the rescue of leftover work
    // (which commits on a local branch); the clone was guarded just above.
    const [rescue, fetch] = await Promise.allSettled([
      rescueLeftovers(opts),
      git.remote(repoDir, ["fetch", "--prune", "--no-tags", "origin"], { guarded: true }),
    ]);
    if (rescue.status === "rejected") throw rescue.reason;
    if (fetch.status === "rejected") throw unreachable(params.repositoryUrl, fetch.reason, "repository");
  }
  const refs = {
    base: `refs/remotes/origin/${params.baseBranch}`,
    local: `refs/heads/${params.branch}`,
    remote: `refs/remotes/origin/${params.branch}`,
  };
  const { found, head } = await git.commitRefs(repoDir, Object.values(refs));
  const [hasLocal, hasRemote] = [found.has(refs.local), found.has(refs.remote)];
  if (!found.has(refs.base)) {
    throw new RunnerError(
      Reasons.BranchNotFound,
      `The base branch ${params.baseBranch} does not exist in ${redactUrl(params.repositoryUrl)}. Check the base branch (DocsRun sourceBranch, or the controller's agent.baseBranch).`,
    );
  }

  let created: string | undefined;
  if (hasLocal) {
    if (head !== refs.local) await git.run(repoDir, ["switch", params.branch]);
    // Someone (a reviewer, an earlier attempt from another node) may have pushed to the branch.
    if (hasRemote) await mergeOrFail(opts, `origin/${params.branch}`);
  } else if (hasRemote) {
    await git.run(repoDir, ["switch", "-c", params.branch, "--track", `origin/${params.branch}`]);
  } else {
    await git.run(repoDir, ["switch", "--no-track", "-c", params.branch, `origin/${params.baseBranch}`]);
    created = found.get(refs.base);
  }
  // A branch just made from the base has nothing of it to merge, and its head is the base's commit.
  if (!created) await mergeOrFail(opts, `origin/${params.baseBranch}`);
  log.info(
    {
      branch: params.branch,
      base: params.baseBranch,
      existed: hasLocal || hasRemote,
      head: created ?? (await git.revParse(repoDir, "HEAD")),
    },
    "Prepared branch",
  );
}
