/**
 * Task documents (task.md, acceptance-criteria.md, prompt.md, architecture.md) from the docs
 * repository into `{workdir}/task/`. Two layouts:
 * - single-repo (docs repo == target repo): read from the docs branch with `git show`, without
 *   touching the checked-out feature branch;
 * - multi-repo: a shallow clone into a temporary directory, removed afterwards.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import type { RunParameters } from "../api/runner-contract.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";
import { GitError, type Git } from "./git.js";
import { redactUrl } from "./repo-url.js";
import { unreachable } from "./workspace.js";

export const TASK_DIR = "task";

export interface TaskDocPaths {
  /** Directory of the task's documents inside the docs repository. */
  dir: string;
  architecture: string;
}

/** Where a task's documents live in the docs repository (pure). */
export function computeTaskDocPaths(projectDirectory: string, taskId: number): TaskDocPaths {
  const docs = path.posix.join(projectDirectory || ".", ".taskmaster", "docs");
  return { dir: path.posix.join(docs, `task-${taskId}`), architecture: path.posix.join(docs, "architecture.md") };
}

type Reader = (file: string) => Promise<string | null>;

async function collect(read: Reader, paths: TaskDocPaths, source: string): Promise<Record<string, string>> {
  const task = (await read(`${paths.dir}/task.md`)) ?? (await read(`${paths.dir}/task.txt`));
  const prompt = await read(`${paths.dir}/prompt.md`);
  const missing = [
    ...(task === null ? [`${paths.dir}/task.md (or task.txt)`] : []),
    ...(prompt === null ? [`${paths.dir}/prompt.md`] : []),
  ];
  if (missing.length > 0) {
    throw new RunnerError(
      Reasons.TaskDocsMissing,
      `Task documents missing in ${source}: ${missing.join(", ")}. Generate them with a DocsRun, or check taskId, docsProjectDirectory and docsBranch.`,
    );
  }
  const docs: Record<string, string> = { "task.md": task!, "prompt.md": prompt! };
  const criteria = await read(`${paths.dir}/acceptance-criteria.md`);
  if (criteria !== null) docs["acceptance-criteria.md"] = criteria;
  const architecture = await read(paths.architecture);
  if (architecture !== null) docs["architecture.md"] = architecture;
  return docs;
}

export interface FetchTaskDocsOptions {
  git: Git;
  params: RunParameters;
  repoDir: string;
  /** The URL git uses for the docs repository. */
  docsRemoteUrl: string;
  /** The docs live in the target repository itself (fetched there, not cloned). */
  docsIsTarget: boolean;
  log: Logger;
}

/** The docs branch is missing: a clear error naming the setting, else the repository is unreachable. */
function fetchFailure(err: unknown, pattern: RegExp, branch: string, docsUrl: string): Error {
  if (err instanceof GitError && pattern.test(err.stderr))
    return new RunnerError(Reasons.BranchNotFound, `The docs branch ${branch} does not exist in ${redactUrl(docsUrl)}. Check docsBranch.`);
  return unreachable(docsUrl, err, "docs repository");
}

/** Single-repo layout: the docs branch is fetched into the target repository and read from there. */
async function docsFromTarget(opts: FetchTaskDocsOptions, branch: string, paths: TaskDocPaths, source: string) {
  const { git, repoDir } = opts;
  const docsUrl = opts.params.docsRepositoryUrl!;
  try {
    await git.remote(repoDir, ["fetch", "--no-tags", "origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
  } catch (err) {
    throw fetchFailure(err, /couldn't find remote ref/i, branch, docsUrl);
  }
  const docs = await collect((file) => git.showFile(repoDir, `refs/remotes/origin/${branch}`, file), paths, source);
  opts.log.info({ layout: "single-repo", source, files: Object.keys(docs) }, "Fetched task documents");
  return docs;
}

/** Multi-repo layout: a shallow clone of the docs branch in a temporary directory. */
async function docsFromClone(opts: FetchTaskDocsOptions, branch: string, paths: TaskDocPaths, source: string) {
  const docsUrl = opts.params.docsRepositoryUrl!;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-docs-"));
  try {
    const clone = path.join(tmp, "docs");
    const args = ["clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", "--branch", branch, "--", opts.docsRemoteUrl, clone];
    try {
      await opts.git.remote(tmp, args);
    } catch (err) {
      throw fetchFailure(err, /Remote branch .* not found/i, branch, docsUrl);
    }
    const read: Reader = async (file) => {
      const full = path.join(clone, file);
      return fs.existsSync(full) && fs.statSync(full).isFile() ? fs.readFileSync(full, "utf8") : null;
    };
    const docs = await collect(read, paths, source);
    opts.log.info({ layout: "multi-repo", source, files: Object.keys(docs) }, "Fetched task documents");
    return docs;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Reads the task's documents. The multi-repo layout touches nothing of the target repository, so
 * it may run while the workspace is prepared; the single-repo layout fetches into the clone and
 * must wait for it.
 */
export async function readTaskDocs(opts: FetchTaskDocsOptions): Promise<Record<string, string>> {
  const { params } = opts;
  const branch = params.docsBranch || "main";
  const paths = computeTaskDocPaths(params.docsProjectDirectory ?? ".", params.taskId!);
  const source = `${redactUrl(params.docsRepositoryUrl!)}@${branch}`;
  return opts.docsIsTarget ? docsFromTarget(opts, branch, paths, source) : docsFromClone(opts, branch, paths, source);
}

/** Writes the documents into `{workDir}/task/`, replacing what was there. */
export function writeTaskDocs(workDir: string, docs: Record<string, string>): void {
  const target = path.join(workDir, TASK_DIR);
  fs.rmSync(target, { recursive: true, force: true });
  fs.mkdirSync(target, { recursive: true });
  for (const [name, content] of Object.entries(docs)) fs.writeFileSync(path.join(target, name), content);
}
