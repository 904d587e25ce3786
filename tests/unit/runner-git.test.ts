/**
 * How the runner classifies git failures, against real git: local bare repositories (file
 * paths) and the smart-HTTP test server. Classification must rest on git's own phrases and exit
 * codes, never on digits that happen to be in a URL, a repository name or a port.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Git, GitError, isAuthFailure, isNonFastForward } from "../../src/runner/git.js";
import { Redactor } from "../../src/runner/redact.js";
import { pushBranch } from "../../src/runner/run.js";
import { unreachable } from "../../src/runner/workspace.js";
import { startGitHttpServer, type GitHttpServer } from "../support/git-http-server.js";

const log = pino({ level: "silent" });
let root: string;
let server: GitHttpServer;
const TOKEN = "good-token";

function sh(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: root, LC_ALL: "C" },
  });
}

function git(auth: Record<string, string> = {}): Git {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: root,
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_NOSYSTEM: "1",
    LC_ALL: "C",
    ...auth,
  };
  return Git.withoutAuth({ env, redactor: new Redactor(), log });
}

/** A bare repository `name` with one commit on main, and `clones` working copies of it. */
function seed(name: string, clones: string[]): string {
  const bare = path.join(root, name);
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare]);
  const first = path.join(root, `${name}-seed`);
  sh(root, "clone", "--quiet", bare, first);
  fs.writeFileSync(path.join(first, "README.md"), "seed\n");
  sh(first, "add", ".");
  sh(first, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "seed");
  sh(first, "push", "--quiet", "origin", "HEAD:main");
  for (const c of clones) sh(root, "clone", "--quiet", bare, path.join(root, c));
  return bare;
}

function commit(dir: string, file: string): void {
  fs.writeFileSync(path.join(dir, file), `${file}\n`);
  sh(dir, "add", ".");
  sh(dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", file);
}

async function failure(p: Promise<unknown>): Promise<GitError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GitError);
  return err as GitError;
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "runner-git-"));
  server = await startGitHttpServer(root, [TOKEN]);
});
afterAll(async () => {
  await server.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a push rejected because the remote branch moved", () => {
  it("is merged and pushed again, also when the repository's name contains 403", async () => {
    const bare = seed("legacy-403-shop.git", ["shop-a", "shop-b"]);
    commit(path.join(root, "shop-a"), "a.txt");
    sh(path.join(root, "shop-a"), "push", "--quiet", "origin", "HEAD:refs/heads/feature");
    commit(path.join(root, "shop-b"), "b.txt");
    const repoDir = path.join(root, "shop-b");
    sh(repoDir, "config", "user.name", "agent");
    sh(repoDir, "config", "user.email", "agent@example.com");

    const err = await failure(git().remote(repoDir, ["push", "origin", "HEAD:refs/heads/feature"]));
    expect(err.stderr).toContain("legacy-403-shop");
    expect(isNonFastForward(err)).toBe(true);
    // The failure message keeps git's ref line (hint: lines are dropped, not the error).
    expect(err.message).toMatch(/! \[rejected\] +HEAD -> feature \(fetch first\)/);

    await pushBranch(
      git({
        GIT_AUTHOR_NAME: "agent",
        GIT_AUTHOR_EMAIL: "agent@example.com",
        GIT_COMMITTER_NAME: "agent",
        GIT_COMMITTER_EMAIL: "agent@example.com",
      }),
      repoDir,
      { branch: "feature", repositoryUrl: bare },
      log,
    );
    const files = sh(root, "--git-dir", bare, "ls-tree", "--name-only", "feature").split("\n");
    expect(files).toEqual(expect.arrayContaining(["a.txt", "b.txt"]));
  });

  it("is not retried when a hook declines it (remote rejected)", async () => {
    const bare = seed("hooked.git", ["hooked-a"]);
    fs.writeFileSync(path.join(bare, "hooks", "pre-receive"), "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n", { mode: 0o755 });
    commit(path.join(root, "hooked-a"), "c.txt");
    const err = await failure(git().remote(path.join(root, "hooked-a"), ["push", "origin", "HEAD:refs/heads/main"]));
    expect(isNonFastForward(err)).toBe(false);
    expect(err.message).toMatch(/! \[remote rejected\] HEAD -> main \(pre-receive hook declined\)/);
  });
});

describe("an unreachable repository", () => {
  const lsRemote = (url: string) => git().remote(root, ["ls-remote", "--heads", "--", url]);

  it("is RepoUnreachable when a repository named docs-403 does not exist", async () => {
    const url = path.join(root, "docs-403.git");
    const err = await failure(lsRemote(url));
    expect(isAuthFailure(err)).toBe(false);
    expect(unreachable(url, err, "repository").reason).toBe("RepoUnreachable");
  });

  it("is RepoUnreachable over HTTP when the port holds 401 or 403", async () => {
    // Nothing listens on port 40193 / 40393 on loopback in the test machine's ephemeral range.
    for (const port of [40193, 40393]) {
      const err = await failure(lsRemote(`http://127.0.0.1:${port}/org/repo.git`));
      expect(unreachable(`http://127.0.0.1:${port}/org/repo.git`, err, "repository").reason).toBe("RepoUnreachable");
    }
  });

  it("is AuthFailed when the server refuses the credentials (HTTP 401)", async () => {
    seed("private.git", []);
    const url = server.url.replace("://", "://x-access-token:wrong@") + "/private.git";
    const err = await failure(lsRemote(url));
    expect(isAuthFailure(err)).toBe(true);
    expect(unreachable(url, err, "repository").reason).toBe("AuthFailed");
    const noUser = await failure(lsRemote(`${server.url}/private.git`));
    expect(isAuthFailure(noUser)).toBe(true);
  });
});
