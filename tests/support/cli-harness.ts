/** Runs the `orchestrator` CLI in-process (runCli) with captured output, or as the package bin. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { execa } from "execa";
import { runCli } from "../../src/cli/program.js";

export class Capture extends Writable {
  text = "";
  constructor(
    readonly isTTY = false,
    readonly columns = 160,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with the given environment and working directory. */
export async function cli(args: string[], o: { env: NodeJS.ProcessEnv; cwd: string; tty?: boolean }): Promise<CliResult> {
  const stdout = new Capture(o.tty ?? false);
  const stderr = new Capture();
  const code = await runCli(args, { env: o.env, cwd: o.cwd, stdout, stderr }, "test");
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Runs bin/orchestrator.js as a user would (`npx orchestrator ...`). */
export async function cliProcess(args: string[], o: { env: NodeJS.ProcessEnv; cwd: string }): Promise<CliResult> {
  const r = await execa(process.execPath, [join(process.cwd(), "bin/orchestrator.js"), ...args], {
    env: o.env,
    extendEnv: false,
    cwd: o.cwd,
    reject: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * A git checkout whose origin is a bare repository next to it, with a Task Master project
 * committed and pushed: what `task code` / `docs generate` detect from.
 */
/** `remove` deletes the checkout and its bare repository (call it in afterAll). */
export async function gitCheckout(): Promise<{ dir: string; origin: string; remove: () => void }> {
  // The origin a user would have (the API only accepts GitHub repository URLs); pushes go to a
  // local bare repository instead (pushurl), so "pushed or not" is real git state.
  const url = "https://github.com/acme/cli-test.git";
  const root = mkdtempSync(join(tmpdir(), "orchestrator-cli-git-"));
  const origin = join(root, "origin.git");
  const dir = join(root, "work");
  const git = (args: string[], cwd = dir) => execa("git", args, { cwd });
  await execa("git", ["init", "--bare", "-b", "main", origin]);
  mkdirSync(join(dir, "docs", ".taskmaster", "tasks"), { recursive: true });
  await git(["init", "-b", "main"]);
  await git(["config", "user.email", "dev@example.com"]);
  await git(["config", "user.name", "dev-user"]);
  writeFileSync(join(dir, "docs", ".taskmaster", "tasks", "tasks.json"), JSON.stringify({ master: { tasks: [{ id: 1, title: "One" }] } }));
  await git(["add", "."]);
  await git(["commit", "-m", "init"]);
  await git(["remote", "add", "origin", url]);
  await git(["remote", "set-url", "--push", "origin", origin]);
  await git(["push", "-u", "origin", "main"]);
  await git(["update-ref", "refs/remotes/origin/main", "HEAD"]);
  return { dir, origin: url, remove: () => rmSync(root, { recursive: true, force: true }) };
}
