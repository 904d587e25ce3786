/**
 * Helpers for running the agent runner as the Job runs it: bare git repositories on disk, an
 * AGENT_ROOT with the mounted layout of the runner contract (task-files rendered by the real
 * templates, run.json, managed settings, secrets, termination log), and the runner started as a
 * child process with the Job's environment.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Container, V1Job, V1Volume } from "@kubernetes/client-node";
import { execa } from "execa";
import { AgentPaths, TaskFileKeys, type RunParameters } from "../../src/api/runner-contract.js";
import type { AgentResult, AnyRun } from "../../src/api/types.js";
import { parseConfig } from "../../src/config/config.js";
import { freePorts } from "../../src/controlplane/index.js";
import { buildJob } from "../../src/manifests/index.js";
import { loadTemplates, renderRunFiles } from "../../src/templates/index.js";

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(PROJECT_ROOT, "node_modules", ".bin");

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      HOME: os.tmpdir(),
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.com",
    },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** Creates a bare repository at `bare` whose `branch` holds `files` (path → content). */
export function createBareRepo(bare: string, files: Record<string, string>, branch = "main"): void {
  fs.mkdirSync(bare, { recursive: true });
  git(bare, "init", "--quiet", "--bare", `--initial-branch=${branch}`);
  // Smart HTTP pushes need this on the served repository.
  git(bare, "config", "http.receivepack", "true");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "seed-"));
  git(work, "init", "--quiet", `--initial-branch=${branch}`);
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
    fs.writeFileSync(path.join(work, file), content);
  }
  git(work, "add", "--all");
  git(work, "commit", "--quiet", "-m", "Initial commit");
  git(work, "push", "--quiet", bare, `${branch}:${branch}`);
  fs.rmSync(work, { recursive: true, force: true });
}

export function branchExists(bare: string, branch: string): boolean {
  try {
    git(bare, "rev-parse", "--verify", "--quiet", `refs/heads/${branch}`);
    return true;
  } catch {
    return false;
  }
}

/** Files on `branch` of a bare repository. */
export function listFiles(bare: string, branch: string): string[] {
  return git(bare, "ls-tree", "-r", "--name-only", branch).split("\n").filter(Boolean);
}

export function readFileAt(bare: string, branch: string, file: string): string {
  return git(bare, "show", `${branch}:${file}`);
}

export const DEFAULT_ALLOW = ["Bash", "Edit", "Read", "Write", "MultiEdit", "Glob", "Grep", "LS", "TodoWrite"];

export interface AgentRoot {
  root: string;
  workspace: string;
  repo: string;
  /** The clone's private git directory (the channel's, outside the workspace). */
  gitDir: string;
  /** git on the clone as the channel runs it: its private git directory, the work tree. */
  repoGit(...args: string[]): string;
  writeRun(params: RunParameters, extra?: { promptModification?: string }): void;
  writeSecret(dir: "github-ssh" | "github-app", files: Record<string, string>): void;
  terminationMessage(): AgentResult | null;
  /** The channel's own termination message (its record of the run's result). */
  channelTerminationMessage(): AgentResult | null;
}

/** A termination message file: kubelet creates it empty, so empty is "nothing written". */
function readTermination(file: string): AgentResult | null {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  return text ? (JSON.parse(text) as AgentResult) : null;
}

/** A temporary AGENT_ROOT laid out like the Job's container. */
export function createAgentRoot(parent: string, name: string): AgentRoot {
  const root = path.join(parent, name);
  const at = (p: string) => path.join(root, p);
  fs.mkdirSync(at(AgentPaths.workspace), { recursive: true });
  fs.mkdirSync(path.dirname(at(AgentPaths.terminationMessage)), { recursive: true });
  return {
    root,
    workspace: at(AgentPaths.workspace),
    repo: path.join(at(AgentPaths.workspace), "target-repo"),
    gitDir: path.join(at(AgentPaths.channel), "target-repo.git"),
    repoGit: (...args) =>
      git(
        root,
        `--git-dir=${path.join(at(AgentPaths.channel), "target-repo.git")}`,
        `--work-tree=${path.join(at(AgentPaths.workspace), "target-repo")}`,
        ...args,
      ),
    writeRun(params, extra = {}) {
      const files = renderRunFiles(loadTemplates(), { params, permissions: { allow: DEFAULT_ALLOW, deny: [] }, ...extra });
      const dir = at(AgentPaths.taskFiles);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      for (const [key, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, key), content);
      fs.writeFileSync(path.join(dir, TaskFileKeys.runJson), JSON.stringify(params, null, 2));
      // The Job mounts the same ConfigMap key as Claude Code's managed settings.
      fs.mkdirSync(path.dirname(at(AgentPaths.managedSettings)), { recursive: true });
      fs.writeFileSync(at(AgentPaths.managedSettings), files[TaskFileKeys.managedSettings]!);
      fs.rmSync(at(AgentPaths.terminationMessage), { force: true });
      fs.rmSync(at(AgentPaths.channelTerminationMessage), { force: true });
    },
    writeSecret(dir, files) {
      const base = at(dir === "github-ssh" ? AgentPaths.sshSecret : AgentPaths.githubAppSecret);
      fs.mkdirSync(base, { recursive: true });
      for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(base, k), v);
    },
    terminationMessage() {
      const file = at(AgentPaths.terminationMessage);
      return readTermination(file);
    },
    channelTerminationMessage() {
      const file = at(AgentPaths.channelTerminationMessage);
      return readTermination(file);
    },
  };
}

export interface RunnerRun {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Parsed pino lines. */
  logs: Record<string, unknown>[];
  result: AgentResult | null;
  /** The channel's own termination message. */
  channelResult: AgentResult | null;
  /** The channel's exit code: 0 for a delivered outcome, 1 otherwise (undefined when it had to be killed). */
  channelExitCode: number | undefined;
}

/** Variables only the channel gets: the agent container has no credentials. */
const CHANNEL_ONLY = /^(ANTHROPIC_API_KEY|ANTHROPIC_BASE_URL|ANTHROPIC_AUTH_TOKEN|GITHUB_TOKEN|GH_TOKEN)$/;

function parseLogs(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { unparsed: l };
      }
    });
}

/** The Job the controller would build for `params` (only what its volumes depend on: kind and identity). */
export function jobFor(params: RunParameters): V1Job {
  const identity = {
    ...(params.githubUser ? { githubUser: params.githubUser } : {}),
    ...(params.githubApp ? { githubApp: params.githubApp } : {}),
  };
  const metadata = { name: params.runName, namespace: params.namespace, uid: "00000000-0000-0000-0000-000000000000" };
  const run =
    params.kind === "code"
      ? {
          apiVersion: "orchestrator.platform/v1",
          kind: "CodeRun",
          metadata,
          spec: { taskId: params.taskId, service: params.service, repositoryUrl: params.repositoryUrl, ...identity },
        }
      : {
          apiVersion: "orchestrator.platform/v1",
          kind: "DocsRun",
          metadata,
          spec: { repositoryUrl: params.repositoryUrl, workingDirectory: ".", ...identity },
        };
  return buildJob(run as AnyRun, params.attempt, parseConfig("", {}), "workspace");
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Where a volume's content is on the test's disk: the workspace volume is the agent root itself. */
function volumeSource(volume: V1Volume | undefined, host: string): string | null {
  if (!volume) return null;
  if (volume.name === "workspace") return host;
  if (volume.configMap) return path.join(host, AgentPaths.taskFiles);
  if (volume.secret?.secretName?.startsWith("github-ssh-")) return path.join(host, AgentPaths.sshSecret);
  if (volume.secret?.secretName?.startsWith("github-app-")) return path.join(host, AgentPaths.githubAppSecret);
  return null; // emptyDirs at /tmp: the test shares the machine's
}

/**
 * A shell script that, in a private mount namespace, replaces the agent root with exactly the
 * container's mounts (as kubelet mounts them: subPaths of the volumes, read-only where asked, the
 * termination log) and hides the rest of the volumes: the process sees what the container would.
 */
function podMountScript(root: string, stash: string, container: V1Container, volumes: V1Volume[]): string {
  const lines = ["set -eu", `mount --bind ${quote(root)} ${quote(stash)}`, `mount -t tmpfs tmpfs ${quote(root)}`];
  const bind = (src: string, dst: string, readOnly = false) => {
    lines.push(
      `if [ -f ${quote(src)} ]; then mkdir -p ${quote(path.dirname(dst))}; touch ${quote(dst)}; else mkdir -p ${quote(src)} ${quote(dst)}; fi`,
      `mount --bind ${quote(src)} ${quote(dst)}`,
      ...(readOnly ? [`mount -o remount,bind,ro ${quote(dst)}`] : []),
    );
  };
  // kubelet's own mount: the container's termination message file, created empty.
  const termination = container.terminationMessagePath ?? AgentPaths.terminationMessage;
  lines.push(`mkdir -p ${quote(path.dirname(path.join(stash, termination)))}`, `touch ${quote(path.join(stash, termination))}`);
  bind(path.join(stash, termination), path.join(root, termination));
  const mounts = [...(container.volumeMounts ?? [])].sort((a, b) => a.mountPath.length - b.mountPath.length);
  for (const m of mounts) {
    const source = volumeSource(
      volumes.find((v) => v.name === m.name),
      stash,
    );
    if (source) bind(path.join(source, m.subPath ?? ""), path.join(root, m.mountPath), m.readOnly === true);
  }
  lines.push(`umount -l ${quote(stash)}`, 'exec "$@"');
  return lines.join("\n");
}

/** `command` run in a mount namespace that shows it the container's view of the agent root. */
function inContainer(agentRoot: AgentRoot, job: V1Job, name: "channel" | "agent", command: string[]): [string, string[]] {
  const pod = job.spec!.template.spec!;
  const container = pod.containers.find((c) => (name === "channel") === (c.name === "channel"))!;
  const stash = `${agentRoot.root}.${name}-volumes`;
  fs.mkdirSync(stash, { recursive: true });
  const script = podMountScript(agentRoot.root, stash, container, pod.volumes ?? []);
  return ["unshare", ["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", ...command]];
}

export interface LaunchOptions {
  timeoutMs?: number;
  /**
   * Run each container in a mount namespace holding only the mounts the Job gives it (the
   * workspace volume being the agent root). Default: the Job the controller builds for run.json.
   */
  job?: V1Job;
  /** The built entries in dist/ on this Node, as the image runs them (no TypeScript loader). */
  compiled?: boolean;
  /** Run this in the agent container instead of the agent runner (an agent that misbehaves). */
  agentCommand?: string[];
}

/**
 * Runs an attempt the way the Job does, as two processes: the channel (`src/cmd/channel.ts`, all
 * of the Job's variables, credentials included) and the agent (`src/cmd/runner.ts`, no
 * credential: only the channel's URL). Nothing stops the channel: it must end by itself once the
 * agent has exited, as in the pod. Logs are the channel's, then the agent's.
 */
export async function launchRunner(agentRoot: AgentRoot, env: Record<string, string>, launch: LaunchOptions = {}): Promise<RunnerRun> {
  const { timeoutMs = 120_000 } = launch;
  const job =
    launch.job ??
    jobFor(JSON.parse(fs.readFileSync(path.join(agentRoot.root, AgentPaths.taskFiles, TaskFileKeys.runJson), "utf8")) as RunParameters);
  const started = Date.now();
  // Outside the root: in a container's namespace the root holds only the container's mounts.
  const home = `${agentRoot.root}.container-home`;
  fs.mkdirSync(home, { recursive: true });
  // The pod's /tmp is an emptyDir; here the machine's is shared, so temporary files (Claude Code's
  // /tmp/claude-<uid>, git's scratch directories) go beside the root and go with it.
  const tmp = `${agentRoot.root}.tmp`;
  fs.mkdirSync(tmp, { recursive: true });
  const [port] = (await freePorts(1)) as [number];
  const base = {
    PATH: `${BIN}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: home,
    TMPDIR: tmp,
    AGENT_ROOT: agentRoot.root,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
  };
  const agentEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !CHANNEL_ONLY.test(k)));
  const options = { cwd: PROJECT_ROOT, extendEnv: false, reject: false, timeout: timeoutMs, stdin: "ignore" as const };
  const start = (entry: "channel" | "runner") =>
    launch.compiled
      ? [process.execPath, path.join(PROJECT_ROOT, `dist/agent/${entry}.js`)]
      : // tsx as a loader, not its CLI: the CLI relays SIGTERM and kills a child that is busy for 60 ms.
        [process.execPath, "--import", "tsx", path.join(PROJECT_ROOT, `src/cmd/${entry}.ts`)];
  const [channelBin, channelArgs] = inContainer(agentRoot, job, "channel", start("channel"));
  // Past the timeout, SIGTERM: the channel may then wait 15 s for the agent's /finish, so a kill follows only after kubelet's grace period.
  const channel = execa(channelBin, channelArgs, {
    ...options,
    env: { ...base, ...env, CHANNEL_PORT: String(port) },
    forceKillAfterDelay: 30_000,
  });
  // As kubelet does, the agent container starts right after the channel, in the same pass, its mounts made (and a
  // missing subPath directory created) while the channel may still be preparing the workspace.
  const [agentBin, agentArgs] = inContainer(agentRoot, job, "agent", launch.agentCommand ?? start("runner"));
  const agent = await execa(agentBin, agentArgs, { ...options, env: { ...base, ...agentEnv, CHANNEL_URL: `http://127.0.0.1:${port}` } });
  const ch = await channel;
  const stdout = `${String(ch.stdout)}\n${String(agent.stdout)}`;
  return {
    exitCode: agent.exitCode,
    stdout,
    stderr: `${String(ch.stderr)}\n${String(agent.stderr)}`,
    durationMs: Date.now() - started,
    logs: parseLogs(stdout),
    result: agentRoot.terminationMessage(),
    channelResult: agentRoot.channelTerminationMessage(),
    channelExitCode: ch.exitCode,
  };
}

/** All files under `dir` whose content contains `needle` (small text files only). */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && fs.statSync(full).size < 5_000_000 && fs.readFileSync(full).includes(needle)) hits.push(full);
    }
  };
  walk(dir);
  return hits;
}
