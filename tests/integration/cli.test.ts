/**
 * The `orchestrator` CLI against the running system: the orchestrator process (src/cmd/main.ts:
 * controller, Play controller, REST API) on the kwok-backed control plane. Every command in the
 * table format and as JSON/YAML, `--wait` to success and to failure, and the exit codes. Pods are
 * simulated by kwok: a run "succeeds" with the agent result given in KWOK_TERMINATION_MESSAGE and
 * fails with KWOK_FAIL.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { AnyRun, CodeRun, DocsRun } from "../../src/api/types.js";
import type { Play } from "../../src/api/play.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { cli, cliProcess, gitCheckout } from "../support/cli-harness.js";
import { freePorts } from "../../src/controlplane/index.js";
import { createAgentSecrets, runsApi, startControllerProcess, waitFor } from "../support/controller-harness.js";

const cluster = useControlPlane("full", { crdPaths: ["infra/charts/orchestrator/crds"] });

let proc: Awaited<ReturnType<typeof startControllerProcess>>;
let env: NodeJS.ProcessEnv;
let repo: Awaited<ReturnType<typeof gitCheckout>>;
let ns: string;
const PR = "https://github.com/acme/api/pull/42";
const RESULT = JSON.stringify({ outcome: "succeeded", pullRequestUrl: PR, turns: 3, toolCalls: 5, costUsd: 0.0123 });

beforeAll(async () => {
  const cp = cluster();
  ns = await newNamespace("cli");
  await createAgentSecrets(cp.kubeConfig, ns);
  proc = await startControllerProcess(cp.kubeconfigPath, ns, "job: {maxRetries: 0}\ncontroller: {resyncSeconds: 30}\n");
  await proc.ready(90_000).catch(async (e) => {
    proc.child.kill("SIGKILL");
    const out = String((await proc.child).all ?? "");
    console.error(out);
    throw new Error(`${(e as Error).message}\n${out.slice(-3000)}`);
  });
  repo = await gitCheckout();
  env = {
    PATH: process.env.PATH,
    HOME: repo.dir,
    ORCHESTRATOR_API_URL: `http://127.0.0.1:${proc.port}`,
    ORCHESTRATOR_TOKEN: "test-token",
    ORCHESTRATOR_CLI_CONFIG: join(repo.dir, "..", "cli.yaml"),
  };
});

afterAll(async () => {
  proc?.child.kill("SIGTERM");
  await proc?.child;
  proc?.cleanup();
  repo.remove();
});

const run = (args: string[], o: { tty?: boolean; env?: NodeJS.ProcessEnv; cwd?: string } = {}) =>
  cli(args, { env: o.env ?? env, cwd: o.cwd ?? repo.dir, tty: o.tty });

describe("orchestrator CLI against the running system", () => {
  it("task code --wait follows a run to success on a terminal: live progress, PR URL, exit 0; the CodeRun has the detected spec", async () => {
    const r = await run(
      [
        "task",
        "code",
        "7",
        "-s",
        "api",
        "--github-user",
        "alice",
        "--env",
        `KWOK_RUN_DURATION=2s,KWOK_TERMINATION_MESSAGE=${RESULT}`,
        "--wait",
      ],
      { tty: true },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // The live line (rewritten in place by log-update) showed phase, turns, tools, cost, elapsed.
    expect(r.stdout).toMatch(/CodeRun\/code-7-\S+ · Running/);
    expect(r.stdout).toMatch(/Succeeded( \(\w+\))? · attempt 1 · turns 3 · tools 5 · \$0\.0123 · \d+s/);
    expect(r.stdout).toContain(`Pull request: ${PR}`);
    const name = /CodeRun (code-7-\S+) submitted/.exec(r.stdout)![1]!;
    const cr = (await runsApi(cluster().kubeConfig).get("CodeRun", ns, name)) as CodeRun;
    expect(cr.spec).toMatchObject({
      taskId: 7,
      service: "api",
      repositoryUrl: repo.origin,
      docsRepositoryUrl: repo.origin,
      githubUser: "alice",
      docsBranch: "main",
      contextVersion: 1,
    });
    expect(cr.spec.env?.KWOK_TERMINATION_MESSAGE).toBe(RESULT);
  });

  it("task code --wait -o json to failure: one JSON document with the failed run, exit 1", async () => {
    const r = await run([
      "task",
      "code",
      "8",
      "-s",
      "api-fail",
      "--github-user",
      "alice",
      "--env",
      "KWOK_FAIL=true",
      "--env",
      "KWOK_RUN_DURATION=1s",
      "--wait",
      "-o",
      "json",
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as AnyRun;
    expect(doc.status?.phase).toBe("Failed");
    expect(doc.metadata.name).toMatch(/^code-8-/);
  });

  it("--wait without a terminal prints one line per phase change and the reason and next steps on failure", async () => {
    const r = await run([
      "task",
      "code",
      "9",
      "-s",
      "api-fail2",
      "--github-user",
      "alice",
      "--env",
      "KWOK_FAIL=true,KWOK_RUN_DURATION=1s",
      "--wait",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain("\u001b[");
    expect(r.stdout).toMatch(/^\d\d:\d\d:\d\d CodeRun\/code-9-\S+ · (Pending|Running)/m);
    expect(r.stdout).toMatch(/Failed after/);
    expect(r.stdout).toMatch(/^Reason: \S+: .+/m);
    expect(r.stdout).toMatch(/^Next: orchestrator runs logs coderun\/code-9-\S+ {2}· {2}orchestrator runs retry coderun\/code-9-\S+$/m);
  });

  it("--wait-timeout stops waiting with exit 5 and leaves the run going", async () => {
    const r = await run([
      "task",
      "code",
      "10",
      "-s",
      "api-slow",
      "--github-user",
      "alice",
      "--env",
      "KWOK_RUN_DURATION=60s",
      "--wait",
      "--wait-timeout",
      "2",
    ]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/Stopped waiting after 2 s; CodeRun code-10-\S+ goes on/);
    const name = /CodeRun (code-10-\S+) submitted/.exec(r.stdout)![1]!;
    // runs cancel, then runs watch: the cancelled run exits 3.
    const c = await run(["runs", "cancel", name]);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain(`Cancel requested for CodeRun ${name}`);
    const w = await run(["runs", "watch", `coderun/${name}`]);
    expect(w.code).toBe(3);
    expect(w.stdout).toMatch(/Cancelled after/);
    const again = await run(["runs", "cancel", name]);
    expect(again.code).toBe(4);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toMatch(
      /^error: CodeRun code-10-\S+ already finished \(phase Cancelled\); there is nothing to cancel\. \(HTTP 409\)$/m,
    );
  });

  it("runs list / get in table, JSON and YAML", async () => {
    const table = await run(["runs", "list", "--service", "api"]);
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^KIND\s+NAME\s+TASK\s+SERVICE\s+PHASE\s+ATTEMPTS\s+TURNS\s+COST\s+AGE\s+PULL REQUEST$/);
    expect(table.stdout).toMatch(new RegExp(`CodeRun\\s+code-7-\\S+\\s+7\\s+api\\s+Succeeded\\s+1\\s+3\\s+\\$0\\.0123\\s+\\d+s\\s+${PR}`));
    const json = JSON.parse((await run(["runs", "list", "-o", "json", "--phase", "Failed"])).stdout) as AnyRun[];
    expect(json.map((r) => r.status?.phase)).toEqual(["Failed", "Failed"]);
    const yaml = parse((await run(["runs", "ls", "--kind", "coderun", "--task", "7", "-o", "yaml"])).stdout) as AnyRun[];
    expect(yaml).toHaveLength(1);
    const name = yaml[0]!.metadata.name!;
    const detail = await run(["runs", "get", name]);
    expect(detail.stdout).toMatch(/^Phase:\s+Succeeded$/m);
    expect(detail.stdout).toMatch(/^Turns:\s+3$/m);
    expect(detail.stdout).toMatch(new RegExp(`^Pull request:\\s+${PR}$`, "m"));
    expect(detail.stdout).toMatch(/^Tools:\s+5$/m);
    const asYaml = parse((await run(["runs", "get", `cr/${name}`, "-o", "yaml"])).stdout) as CodeRun;
    expect(asYaml.status?.result?.costUsd).toBe(0.0123);
    const missing = await run(["runs", "get", "no-such-run"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe("error: No CodeRun or DocsRun named no-such-run. List them with: orchestrator runs list (HTTP 404)\n");
  });

  it("runs retry creates the next context version; --wait follows it; -o json prints the submission", async () => {
    const list = JSON.parse((await run(["runs", "list", "--task", "7", "-o", "json"])).stdout) as CodeRun[];
    const r = await run(["runs", "retry", `coderun/${list[0]!.metadata.name}`, "--prompt-modification", "Also add tests.", "-o", "json"]);
    expect(r.code).toBe(0);
    const data = JSON.parse(r.stdout) as { coderun_name: string; context_version: number; retry_of: string };
    expect(data).toMatchObject({ context_version: 2, retry_of: list[0]!.metadata.name });
    const cr = (await runsApi(cluster().kubeConfig).get("CodeRun", ns, data.coderun_name)) as CodeRun;
    expect(cr.spec).toMatchObject({ contextVersion: 2, continueSession: true, promptModification: "Also add tests." });
    const w = await run(["runs", "watch", data.coderun_name]);
    expect(w.code).toBe(0);
  });

  it("runs logs: the API's answer in one line when the run's pod has no logs (kwok simulates pods)", async () => {
    const list = JSON.parse((await run(["runs", "list", "--task", "7", "-o", "json"])).stdout) as CodeRun[];
    const r = await run(["runs", "logs", list[0]!.metadata.name!, "-f", "--tail", "10"]);
    // kwok's pods have no container runtime behind them, so the API server cannot serve logs.
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(/^error: .+\(HTTP (404|409|500|502|503)\)$/);
    // The channel container's log: the API server is asked for the `channel` container of the same pod.
    const channel = await run(["runs", "logs", list[0]!.metadata.name!, "--container", "channel"]);
    expect(channel.code).toBe(4);
    expect(channel.stderr.trim()).toMatch(/^error: .+\/channel\b.*\(HTTP 502\)$/);
    const other = await run(["runs", "logs", list[0]!.metadata.name!, "--container", "claude-code"]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/argument 'claude-code' is invalid\. Allowed choices are agent, channel/);
  });

  it("docs generate detects repository, directory and branch; refuses unpushed .taskmaster changes with the git commands", async () => {
    const cwd = join(repo.dir, "docs");
    const r = await run(["docs", "generate", "-o", "json"], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Using GitHub user dev-user (from git config user.name)");
    const data = JSON.parse(r.stdout) as { docsrun_name: string; repository_url: string };
    const dr = (await runsApi(cluster().kubeConfig).get("DocsRun", ns, data.docsrun_name)) as DocsRun;
    expect(dr.spec).toMatchObject({ repositoryUrl: repo.origin, workingDirectory: "docs", sourceBranch: "main", githubUser: "dev-user" });

    writeFileSync(join(cwd, ".taskmaster", "tasks", "tasks.json"), "{}");
    const before = (await runsApi(cluster().kubeConfig).list(ns)).length;
    const dirty = await run(["task", "docs"], { cwd });
    expect(dirty.code).toBe(2);
    expect(dirty.stderr).toContain("The CLI never commits for you");
    expect(dirty.stderr).toMatch(
      /git add \S+\.taskmaster && git commit -m "chore: update \.taskmaster for documentation generation" && git push/,
    );
    expect((await runsApi(cluster().kubeConfig).list(ns)).length).toBe(before);
    expect(readFileSync(join(cwd, ".taskmaster", "tasks", "tasks.json"), "utf8")).toBe("{}");
    const status = await execa("git", ["status", "--porcelain"], { cwd });
    expect(status.stdout).toContain("tasks.json");
    await execa("git", ["checkout", "--", "."], { cwd });

    const none = await run(["docs", "generate"], { cwd: repo.dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/tasks\.json does not exist: run this in a Task Master project/);
  });

  it("play start / list / get / cancel, in table and JSON", async () => {
    const s = await run([
      "play",
      "start",
      "-s",
      "api",
      "--tasks",
      "1,2",
      "--name",
      "sprint-1",
      "--implementation-agent",
      "rex",
      "-o",
      "json",
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ play_name: "sprint-1", tasks: [1, 2], service: "api" });
    const list = await run(["play", "list"]);
    expect(list.stdout.split("\n")[0]).toMatch(/^NAME\s+SERVICE\s+TASK\s+STAGE\s+AGENT\s+PR\s+ITERATION\s+PHASE\s+AGE$/);
    expect(list.stdout).toMatch(/^sprint-1\s+api\s+1\s/m);
    const got = JSON.parse((await run(["play", "get", "sprint-1", "-o", "json"])).stdout) as Play;
    expect(got.spec).toMatchObject({
      tasks: [1, 2],
      repositoryUrl: repo.origin,
      docsRepositoryUrl: repo.origin,
      agents: { implementation: "rex" },
    });
    const human = await run(["play", "get", "sprint-1"]);
    expect(human.stdout).toMatch(/^Tasks:\s+1, 2$/m);
    const c = await run(["play", "cancel", "sprint-1"]);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain("Cancel requested for Play sprint-1");
    const dup = await run(["play", "start", "-s", "api", "--tasks", "1", "--name", "sprint-1"]);
    expect(dup.code).toBe(4);
    expect(dup.stderr).toMatch(/^error: Play sprint-1 already exists: .+\(HTTP 409\)\n$/);
  });

  it("status in table and YAML", async () => {
    const t = await run(["status"]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^Ready:\s+yes$/m);
    expect(t.stdout).toMatch(/^Runs:\s+.*\d+ Succeeded/m);
    const y = parse((await run(["status", "-o", "yaml"])).stdout) as { ready: boolean; namespace: string };
    expect(y).toMatchObject({ ready: true, namespace: ns });
  });

  it("contexts: set, list, use, delete; a token file; flags over env over context", async () => {
    const tokenFile = join(repo.dir, "..", "token");
    writeFileSync(tokenFile, "test-token\n");
    const noEnv = { PATH: env.PATH, HOME: repo.dir, ORCHESTRATOR_CLI_CONFIG: env.ORCHESTRATOR_CLI_CONFIG };
    expect(
      (await run(["context", "set", "local", "--api-url", `${env.ORCHESTRATOR_API_URL}/api/v1`, "--token-file", tokenFile], { env: noEnv }))
        .code,
    ).toBe(0);
    const closed = (await freePorts(1))[0]!;
    expect((await run(["context", "set", "broken", "--api-url", `http://127.0.0.1:${closed}`], { env: noEnv })).code).toBe(0);
    const list = await run(["context", "list"], { env: noEnv });
    expect(list.stdout).toMatch(new RegExp(`^\\*\\s+broken\\s+http://127\\.0\\.0\\.1:${closed}\\s+none$`, "m"));
    const unreachable = await run(["status"], { env: noEnv });
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain(
      `error: Cannot reach the orchestrator API at http://127.0.0.1:${closed} (from context broken): ECONNREFUSED. Check that the service runs`,
    );
    expect((await run(["status", "--context", "local"], { env: noEnv })).code).toBe(0);
    expect((await run(["context", "use", "local"], { env: noEnv })).code).toBe(0);
    expect((await run(["runs", "list"], { env: noEnv })).code).toBe(0);
    const badToken = await run(["runs", "list", "--token", "wrong"], { env: noEnv });
    expect(badToken.code).toBe(4);
    expect(badToken.stderr).toMatch(/^error: .*(token|Bearer).*\(HTTP 401\)\n$/);
    expect((await run(["context", "delete", "broken"], { env: noEnv })).code).toBe(0);
    const unknown = await run(["status", "--context", "broken"], { env: noEnv });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /Context "broken" is not in .+ \(known: local\); create it with `orchestrator context set broken --api-url URL`/,
    );
  });

  it("invalid input: the API's validation detail in one line (exit 4); bad flags exit 2", async () => {
    const r = await run(["task", "code", "11", "-s", "Not_A_Label", "--github-user", "alice"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: Invalid CodeRequest: service: must be a DNS label.*\(HTTP 422\)\n$/);
    const usage = await run(["task", "code", "x", "-s", "api"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("task_id x: expected a whole number.");
    const missing = await run(["task", "code", "3"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '-s, --service <service>' not specified/);
  });

  it("orchestrator serve runs the service as npm start does (JSON log lines when stdout is not a terminal) and stops on SIGTERM", async () => {
    const cp = cluster();
    const port = (await freePorts(1))[0]!;
    const configPath = join(repo.dir, "..", "serve.yaml");
    writeFileSync(configPath, `controller: {enabled: false}\nserver: {host: 127.0.0.1, port: ${port}}\n`);
    const child = execa(process.execPath, [join(process.cwd(), "bin/orchestrator.js"), "serve"], {
      env: {
        PATH: env.PATH,
        HOME: repo.dir,
        KUBECONFIG: cp.kubeconfigPath,
        ORCHESTRATOR_CONFIG: configPath,
        KUBERNETES_NAMESPACE: ns,
        ORCHESTRATOR_API_TOKENS: "serve-token",
      },
      extendEnv: false,
      reject: false,
    });
    try {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200,
        60_000,
        "orchestrator serve /ready",
      );
      const r = await run(["runs", "list", "-o", "json"], {
        env: { ...env, ORCHESTRATOR_API_URL: `http://127.0.0.1:${port}`, ORCHESTRATOR_TOKEN: "serve-token" },
      });
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as unknown[]).length).toBeGreaterThan(0);
    } finally {
      child.kill("SIGTERM");
    }
    const done = await child;
    expect(done.exitCode).toBe(0);
    const first = String(done.stdout).split("\n")[0]!;
    expect(JSON.parse(first)).toMatchObject({ level: expect.any(Number), msg: expect.any(String) });
  });

  it("the package bin: npx orchestrator runs the CLI, status -o json, and prints shell completion", async () => {
    const s = await cliProcess(["status", "-o", "json"], { env, cwd: repo.dir });
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ ready: true });
    const c = await cliProcess(["completion", "bash"], { env, cwd: repo.dir });
    expect(c.code).toBe(0);
    expect(c.stdout).toContain("orchestrator complete --");
    const words = await cliProcess(["complete", "--", "runs", ""], { env, cwd: repo.dir });
    expect(words.stdout.split("\n").map((l) => l.split("\t")[0])).toEqual(
      expect.arrayContaining(["list", "get", "watch", "logs", "cancel", "retry"]),
    );
  });
});
