/**
 * git, through execa. Every command runs non-interactively with the agent HOME, no system config
 * and the C locale; remote commands add the credentials of the run (the token as a header for
 * the GitHub origin and a credential helper reading it, both from the git process's environment,
 * or GIT_SSH_COMMAND), so no secret is ever written to a config file or passed on a command line.
 */
import fs from "node:fs";
import path from "node:path";
import { execa } from "execa";
import type { Logger } from "pino";
import type { Redactor } from "./redact.js";

/** How git authenticates to remotes for one command. */
export interface GitAuth {
  /** Extra environment for the git process (GIT_SSH_COMMAND, the token and its header). */
  env: Record<string, string>;
  /** `-c key=value` pairs placed before the subcommand. */
  config: string[];
}

export type GitAuthProvider = () => Promise<GitAuth>;

export class GitError extends Error {
  override readonly name = "GitError";
  constructor(
    message: string,
    readonly args: string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface Author {
  name: string;
  email: string;
}

export interface GitOptions {
  env: Record<string, string>;
  auth: GitAuthProvider;
  redactor: Redactor;
  log: Logger;
  /** Upper bound for one network command. */
  remoteTimeoutMs?: number;
  /** The URL `origin` must have before any remote command in a clone (the agent may have changed it). */
  origin?: string;
  /**
   * Work tree → its git directory, kept where the agent cannot write. Commands in a listed work
   * tree run with GIT_DIR and GIT_WORK_TREE, so a .git the agent made there is never read.
   */
  gitDirs?: Record<string, string>;
}

/**
 * Config on every command: the agent can write .git/config and .git/hooks, and the runner's git
 * holds credentials, so hooks and fsmonitor commands never run under the runner.
 */
export const HARDENING_CONFIG = [
  "core.hooksPath=/dev/null",
  "core.fsmonitor=false",
  "protocol.ext.allow=never",
  "core.sshCommand=ssh",
  "http.sslVerify=true",
];

/**
 * Keys of a clone's own config (.git/config, writable by the agent) that could send the runner's
 * remote commands elsewhere or run a program while its credentials are in the environment:
 * URL rewriting, proxies and TLS settings, credential helpers, includes, SSH and askpass programs.
 * They are removed before every remote command in a clone.
 */
export const UNSAFE_LOCAL_CONFIG =
  /^(url\..*|https?\..*|credential\..*|include\..*|includeif\..*|core\.(sshcommand|askpass|gitproxy)|remote\.[^.]+\.(proxy|uploadpack|receivepack|pushurl|vcs|proxyauthmethod)|protocol\..*)$/i;

const NO_AUTH: GitAuthProvider = async () => ({ env: {}, config: [] });

export class Git {
  private readonly remoteTimeoutMs: number;

  constructor(private readonly opts: GitOptions) {
    this.remoteTimeoutMs = opts.remoteTimeoutMs ?? 10 * 60_000;
  }

  static withoutAuth(opts: Omit<GitOptions, "auth">): Git {
    return new Git({ ...opts, auth: NO_AUTH });
  }

  /** A local command. Throws GitError unless `allowFailure`. */
  async run(cwd: string, args: string[], options: { allowFailure?: boolean; input?: string } = {}): Promise<GitResult> {
    return this.exec(cwd, args, { env: {}, config: [] }, { ...options, timeoutMs: this.remoteTimeoutMs });
  }

  /** A command that talks to a remote (clone, fetch, push, ls-remote): adds the credentials. */
  async remote(cwd: string, args: string[], options: { allowFailure?: boolean; guarded?: boolean } = {}): Promise<GitResult> {
    // guarded: the caller ran guardClone with the run's origin just before (a second pass finds nothing).
    if (!options.guarded && fs.existsSync(this.gitDirOf(cwd))) await this.guardClone(cwd, this.opts.origin);
    const auth = await this.opts.auth();
    return this.exec(cwd, args, auth, { ...options, timeoutMs: this.remoteTimeoutMs });
  }

  private async exec(
    cwd: string,
    args: string[],
    auth: GitAuth,
    options: { allowFailure?: boolean; input?: string; timeoutMs: number },
  ): Promise<GitResult> {
    const argv = [...[...HARDENING_CONFIG, ...auth.config].flatMap((c) => ["-c", c]), ...args];
    const shown = this.opts.redactor.scrub(args.join(" "));
    const gitDir = this.opts.gitDirs?.[cwd];
    const started = performance.now();
    const result = await execa("git", argv, {
      cwd,
      env: { ...this.opts.env, ...auth.env, ...(gitDir ? { GIT_DIR: gitDir, GIT_WORK_TREE: cwd } : {}) },
      extendEnv: false,
      reject: false,
      stripFinalNewline: true,
      timeout: options.timeoutMs,
      ...(options.input !== undefined ? { input: options.input } : { stdin: "ignore" as const }),
    });
    const stdout = typeof result.stdout === "string" ? result.stdout : "";
    const stderr = this.opts.redactor.scrub(typeof result.stderr === "string" ? result.stderr : "");
    const exitCode = result.exitCode ?? -1;
    this.opts.log.debug({ git: shown, cwd, exitCode, ms: Math.round(performance.now() - started) }, "Ran git");
    if (exitCode !== 0 && !options.allowFailure) {
      const why = result.timedOut ? `timed out after ${options.timeoutMs / 1000}s` : summarizeGitStderr(stderr) || `exit code ${exitCode}`;
      throw new GitError(`git ${shown} failed: ${why}`, args, result.exitCode, stderr);
    }
    return { stdout, stderr, exitCode };
  }

  /**
   * Removes config an agent could have planted in the clone and resets origin to `origin`, before
   * credentials are used there. Returns origin's URL as the clone then has it (null without one):
   * read from the same listing, as written (no URL rewriting applies: its keys are removed).
   */
  async guardClone(dir: string, origin?: string): Promise<string | null> {
    const listed = await this.run(dir, ["config", "--local", "--list", "-z"], { allowFailure: true });
    const entries = listed.stdout
      .split("\0")
      .filter(Boolean)
      .map((entry) => {
        const newline = entry.indexOf("\n");
        return newline < 0 ? { key: entry, value: "" } : { key: entry.slice(0, newline), value: entry.slice(newline + 1) };
      });
    const unsafe = [...new Set(entries.map((e) => e.key).filter((k) => UNSAFE_LOCAL_CONFIG.test(k)))];
    for (const key of unsafe) await this.run(dir, ["config", "--local", "--unset-all", key], { allowFailure: true });
    if (unsafe.length > 0) this.opts.log.warn({ keys: unsafe }, "Removed unsafe settings from the clone's git config");
    const found = entries.find((e) => e.key === "remote.origin.url")?.value ?? null;
    if (!origin || found === origin) return found;
    await this.run(dir, ["remote", "set-url", "origin", origin], { allowFailure: true });
    return origin;
  }

  // ---- queries -------------------------------------------------------------------------------

  /** The git directory of the work tree `dir`: its private one, or `dir/.git`. */
  gitDirOf(dir: string): string {
    return this.opts.gitDirs?.[dir] ?? path.join(dir, ".git");
  }

  async isRepository(dir: string): Promise<boolean> {
    if (!fs.existsSync(this.gitDirOf(dir))) return false;
    const r = await this.run(dir, ["rev-parse", "--is-inside-work-tree"], { allowFailure: true });
    return r.exitCode === 0 && r.stdout === "true";
  }

  async currentBranch(dir: string): Promise<string | null> {
    const r = await this.run(dir, ["symbolic-ref", "--quiet", "--short", "HEAD"], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() : null;
  }

  async revParse(dir: string, rev: string): Promise<string | null> {
    const r = await this.run(dir, ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() : null;
  }

  /**
   * Which of `refs` (full names, e.g. refs/heads/main) exist and name a commit (and that commit),
   * and which of them HEAD is on (null: none of them, or detached): one `git for-each-ref` for all.
   */
  async commitRefs(dir: string, refs: string[]): Promise<{ found: Map<string, string>; head: string | null }> {
    const r = await this.run(dir, ["for-each-ref", "--format=%(refname)%00%(objecttype)%00%(HEAD)%00%(objectname)", "--", ...refs]);
    const found = new Map<string, string>();
    let head: string | null = null;
    for (const line of r.stdout.split("\n")) {
      const [name = "", type, current, commit = ""] = line.split("\0");
      // for-each-ref also lists refs below a pattern (refs/heads/a matches refs/heads/a/b): keep exact names.
      if (!refs.includes(name) || type !== "commit") continue;
      found.set(name, commit);
      if (current === "*") head = name;
    }
    return { found, head };
  }

  /** `git status --porcelain` lines, optionally limited to pathspecs. Ignored/excluded files are not listed. */
  async status(dir: string, pathspecs: string[] = []): Promise<string[]> {
    const r = await this.run(dir, ["status", "--porcelain", "--untracked-files=all", "--", ...pathspecs]);
    return r.stdout.split("\n").filter(Boolean);
  }

  /** Whether a merge, rebase, cherry-pick or revert was left in progress. */
  async operationInProgress(dir: string): Promise<"merge" | "rebase" | "cherry-pick" | "revert" | null> {
    const gitDir = this.gitDirOf(dir);
    if (fs.existsSync(path.join(gitDir, "MERGE_HEAD"))) return "merge";
    if (fs.existsSync(path.join(gitDir, "rebase-merge")) || fs.existsSync(path.join(gitDir, "rebase-apply"))) return "rebase";
    if (fs.existsSync(path.join(gitDir, "CHERRY_PICK_HEAD"))) return "cherry-pick";
    if (fs.existsSync(path.join(gitDir, "REVERT_HEAD"))) return "revert";
    return null;
  }

  async conflictedPaths(dir: string): Promise<string[]> {
    const r = await this.run(dir, ["diff", "--name-only", "--diff-filter=U"], { allowFailure: true });
    return r.stdout.split("\n").filter(Boolean);
  }

  /** Number of commits in `to` that are not in `from`. */
  async countCommits(dir: string, from: string, to: string): Promise<number> {
    const r = await this.run(dir, ["rev-list", "--count", `${from}..${to}`]);
    return Number.parseInt(r.stdout.trim(), 10) || 0;
  }

  /** A file's content at a revision, or null when it does not exist there. */
  async showFile(dir: string, rev: string, file: string): Promise<string | null> {
    const spec = `${rev}:${file}`;
    const exists = await this.run(dir, ["cat-file", "-e", spec], { allowFailure: true });
    if (exists.exitCode !== 0) return null;
    const r = await this.run(dir, ["show", spec]);
    return r.stdout + (r.stdout.endsWith("\n") ? "" : "\n");
  }

  /** Which of `files` (paths relative to the work tree `dir`) the repository tracks: one `git ls-files` for all. */
  async tracked(dir: string, files: string[]): Promise<Set<string>> {
    if (files.length === 0) return new Set();
    const r = await this.run(dir, ["ls-files", "-z", "--full-name", "--", ...files.map((f) => `:(literal)${f}`)]);
    const listed = r.stdout.split("\0").filter(Boolean);
    // A path the repository tracks as a directory counts as tracked too.
    return new Set(files.filter((f) => listed.some((l) => l === f || l.startsWith(`${f}/`))));
  }

  // ---- changes -------------------------------------------------------------------------------

  /**
   * Stages everything under `pathspecs` (default: the whole tree) except `excludes`, and commits
   * it as `author`. Returns the new commit, or null when there was nothing to commit.
   */
  async commitAll(
    dir: string,
    message: string,
    author: Author,
    options: { pathspecs?: string[]; excludes?: string[] } = {},
  ): Promise<string | null> {
    const pathspecs = options.pathspecs?.length ? options.pathspecs : ["."];
    const excludes = (options.excludes ?? []).map((e) => `:(exclude,top)${e}`);
    // `git add` fails on a pathspec that matches nothing; nothing to match means nothing to commit.
    if ((await this.status(dir, [...pathspecs, ...excludes])).length === 0) return null;
    await this.run(dir, ["add", "--all", "--", ...pathspecs]);
    // Unstage instead of excluding in `git add`: an exclude pathspec naming an ignored path fails the add.
    if (options.excludes?.length)
      await this.run(dir, ["reset", "--quiet", "--", ...options.excludes.map((e) => `:(top)${e}`)], { allowFailure: true });
    const staged = await this.run(dir, ["diff", "--cached", "--quiet"], { allowFailure: true });
    if (staged.exitCode === 0) return null;
    await this.run(
      dir,
      [
        "-c",
        `user.name=${author.name}`,
        "-c",
        `user.email=${author.email}`,
        "commit",
        "--quiet",
        "--no-verify",
        "--author",
        `${author.name} <${author.email}>`,
        "-F",
        "-",
      ],
      { input: message },
    );
    return this.revParse(dir, "HEAD");
  }

  /** Appends lines to .git/info/exclude that are not there yet. */
  ensureExcluded(dir: string, patterns: string[]): void {
    const file = path.join(this.gitDirOf(dir), "info", "exclude");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const lines = new Set(existing.split("\n").map((l) => l.trim()));
    const missing = patterns.filter((p) => !lines.has(p));
    if (missing.length === 0) return;
    const prefix = existing === "" || existing.endsWith("\n") ? "" : "\n";
    fs.appendFileSync(file, `${prefix}# Added by the orchestrator agent runner: never committed\n${missing.join("\n")}\n`);
  }
}

/**
 * A push git refused because the remote branch has commits we lack: `git push` exits 1 and
 * reports the ref as ` ! [rejected]  HEAD -> b (fetch first | non-fast-forward)`. A fetch and
 * merge may fix that. A hook or branch protection says `! [remote rejected]` and is final.
 * Only git's own phrases count: URLs, repository names and ports in stderr may hold any digits.
 */
export function isNonFastForward(err: unknown): boolean {
  return err instanceof GitError && err.exitCode === 1 && /^ ! \[rejected\] .*\((fetch first|non-fast-forward)\)$/m.test(err.stderr);
}

/** git's phrases for refused credentials (HTTP 401/403 as git reports them, SSH, missing username). */
const AUTH_FAILURE = [
  /^fatal: Authentication failed for /m,
  /^fatal: unable to access '.*': The requested URL returned error: 40[13]$/m,
  /^fatal: could not read (Username|Password) for /m,
  /^remote: Permission to \S+ denied to /m,
  /^remote: Invalid username or (password|token)/m,
  /Permission denied \(publickey/,
  /^Host key verification failed\.$/m,
];

/** True when git's error says the remote refused our credentials (git exits 128 for these). */
export function isAuthFailure(err: unknown): boolean {
  return err instanceof GitError && err.exitCode === 128 && AUTH_FAILURE.some((re) => re.test(err.stderr));
}

/** True when the remote answered a redirect (a renamed or transferred repository), which the runner's git does not follow. */
export function isRedirected(err: unknown): boolean {
  return err instanceof GitError && /^fatal: unable to access '.*': The requested URL returned error: 30[1278]$/m.test(err.stderr);
}

/**
 * The lines of git's stderr that say what went wrong: every ` ! [rejected]` / `! [remote
 * rejected]` ref line, then the last two other lines; `hint:` lines are advice, not the error.
 */
export function summarizeGitStderr(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() && !l.startsWith("hint:"));
  const refs = lines.filter((l) => /^ ?! \[/.test(l));
  const others = lines.filter((l) => !/^ ?! \[/.test(l)).slice(-2);
  return [...refs.map((l) => l.trim().replace(/\s+/g, " ")), ...others].join(" | ");
}
