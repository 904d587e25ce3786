/**
 * What `task code` and `docs generate` detect from the current git checkout, like upstream's
 * CLI: the origin URL, the working directory relative to the repository root ("." at the root),
 * the current branch (fallback main) and user.name. Read-only: the CLI never commits or pushes
 * the user's files; when something is uncommitted it prints the commands that would do it.
 */
import { execa } from "execa";

export interface GitInfo {
  /** Repository root, or undefined outside a git checkout. */
  root?: string;
  origin?: string;
  /** cwd relative to the root; "." at the root. */
  relativeDir: string;
  branch: string;
  userName?: string;
}

async function git(cwd: string, args: string[]): Promise<string | undefined> {
  const r = await execa("git", args, { cwd, reject: false, stdin: "ignore" });
  return r.exitCode === 0 ? String(r.stdout).trim() || undefined : undefined;
}

export async function detectGit(cwd: string): Promise<GitInfo> {
  const root = await git(cwd, ["rev-parse", "--show-toplevel"]);
  if (!root) return { relativeDir: ".", branch: "main" };
  const [origin, prefix, branch, userName] = await Promise.all([
    git(cwd, ["remote", "get-url", "origin"]),
    git(cwd, ["rev-parse", "--show-prefix"]),
    git(cwd, ["rev-parse", "--abbrev-ref", "HEAD"]),
    git(cwd, ["config", "user.name"]),
  ]);
  return {
    root,
    ...(origin ? { origin } : {}),
    relativeDir: prefix ? prefix.replace(/\/+$/, "") : ".",
    // A detached HEAD prints "HEAD": not a branch anyone can clone.
    branch: branch && branch !== "HEAD" ? branch : "main",
    ...(userName ? { userName } : {}),
  };
}

/** Uncommitted or unpushed changes under `path` (relative to cwd), as `git status --porcelain` lines. */
export async function uncommitted(cwd: string, path: string): Promise<string[]> {
  const out = await git(cwd, ["status", "--porcelain", "--", path]);
  return out ? out.split("\n") : [];
}

/** Commits on the current branch that its upstream does not have yet (0 without an upstream). */
export async function unpushedCount(cwd: string): Promise<number> {
  const out = await git(cwd, ["rev-list", "--count", "@{upstream}..HEAD"]);
  return out ? Number(out) || 0 : 0;
}

/** Shell-quotes one argument for a command line the user may copy. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
