/** Pure parts of the CLI and the run reporter: request completion, flag parsing, settings, output. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { CodeRun } from "../../src/api/types.js";
import { countLogLine, finalSummary, progressLine, type LiveCounters } from "../../src/cli/watch.js";
import { formatDuration } from "../../src/cli/output.js";
import {
  completeCodeRequest,
  completeDocsRequest,
  InputError,
  parseEnvFromSecrets,
  parseEnvPairs,
  parseTaskList,
} from "../../src/client/requests.js";
import { readCliSettings, writeCliFile } from "../../src/config/cli.js";
import { ConfigError } from "../../src/config/config.js";
import { buildRefusalReply, buildTrackingComment, originOf, runCheckState } from "../../src/reporter/run-report.js";

const git = { root: "/r", origin: "git@github.com:acme/api.git", relativeDir: "svc", branch: "feat", userName: "dev-user" };

function run(status: CodeRun["status"] = {}, annotations: Record<string, string> = {}): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name: "gh-abc", namespace: "orch", annotations },
    spec: { taskId: 7, service: "api", repositoryUrl: "r", docsRepositoryUrl: "d", model: "claude-x" },
    status,
  };
}

describe("request completion from git (upstream's defaults)", () => {
  it("task code: repositories from origin, identity from user.name, explicit values win", () => {
    expect(completeCodeRequest({ task_id: 7, service: "api" }, git)).toEqual({
      body: { task_id: 7, service: "api", repository_url: git.origin, docs_repository_url: git.origin, github_user: "dev-user" },
      notes: ["Using GitHub user dev-user (from git config user.name); pass --github-user or --github-app to choose."],
    });
    expect(
      completeCodeRequest(
        { task_id: 7, service: "api", repository_url: "x", github_app: "rex" },
        { relativeDir: ".", branch: "main", userName: "Jane Doe" },
      ).body,
    ).toEqual({ task_id: 7, service: "api", repository_url: "x", docs_repository_url: "x", github_app: "rex" });
    expect(
      completeCodeRequest({ task_id: 7, service: "api", repository_url: "x" }, { relativeDir: ".", branch: "main", userName: "Jane Doe" })
        .body.github_user,
    ).toBe("claude-agent-1");
    expect(() => completeCodeRequest({ task_id: 7, service: "api" }, { relativeDir: ".", branch: "main" })).toThrow(InputError);
  });

  it("docs generate: working directory and branch from the checkout", () => {
    expect(completeDocsRequest({}, git).body).toEqual({
      repository_url: git.origin,
      working_directory: "svc",
      source_branch: "feat",
      github_user: "dev-user",
    });
  });

  it("parses upstream's --env, --env-from-secrets and --tasks forms", () => {
    expect(parseEnvPairs(["A=1,B=x,y", 'C={"a":1,"b":2}'])).toEqual({ A: "1", B: "x,y", C: '{"a":1,"b":2}' });
    expect(() => parseEnvPairs(["novalue"])).toThrow(/expected NAME=VALUE/);
    expect(parseEnvFromSecrets(["DB:db:url,KEY:k:v"])).toEqual([
      { name: "DB", secretName: "db", secretKey: "url" },
      { name: "KEY", secretName: "k", secretKey: "v" },
    ]);
    expect(() => parseEnvFromSecrets(["DB:db"])).toThrow(/name:secretName:secretKey/);
    expect(parseTaskList("7, 8 9")).toEqual([7, 8, 9]);
    expect(() => parseTaskList("7,x")).toThrow(/"x" is not a task id/);
  });
});

describe("CLI settings: flags over environment over context", () => {
  it("resolves URL and token and names a missing context", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-settings-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "cli.yaml");
    writeFileSync(join(dir, "tok"), "from-file\n");
    writeCliFile(file, {
      currentContext: "dev",
      contexts: { dev: { apiUrl: "http://dev:8080/api/v1", tokenFile: join(dir, "tok") }, prod: { apiUrl: "https://prod", token: "p" } },
    });
    const env = { ORCHESTRATOR_CLI_CONFIG: file };
    expect(readCliSettings({}, env)).toEqual({ baseUrl: "http://dev:8080", token: "from-file", source: "context dev", contextName: "dev" });
    expect(readCliSettings({ context: "prod" }, env)).toMatchObject({ baseUrl: "https://prod", token: "p" });
    expect(
      readCliSettings({ apiUrl: "http://flag" }, { ...env, ORCHESTRATOR_API_URL: "http://env", ORCHESTRATOR_TOKEN: "t" }),
    ).toMatchObject({ baseUrl: "http://flag", token: "t", source: "--api-url" });
    expect(readCliSettings({}, { ORCHESTRATOR_CLI_CONFIG: join(dir, "none.yaml") })).toEqual({
      baseUrl: "http://orchestrator.orchestrator.svc.cluster.local",
      source: "the default URL",
    });
    expect(() => readCliSettings({ context: "nope" }, env)).toThrow(ConfigError);
    expect(() => readCliSettings({ apiUrl: "ftp://x" }, env)).toThrow(/not an http\(s\) URL/);
  });
});

describe("progress and summaries", () => {
  it("counts turns and tools from the runner's log lines", () => {
    const c: LiveCounters = {};
    for (const l of [
      '{"msg":"Agent called tool","turn":2,"tool":"Bash"}',
      '{"msg":"Agent called tool","turn":3}',
      "not json",
      '{"msg":"Claude Code exited","turns":4,"costUsd":0.5}',
    ])
      countLogLine(l, c);
    expect(c).toEqual({ turns: 4, tools: 2, costUsd: 0.5 });
    expect(progressLine(run({ phase: "Running", reason: "AgentRunning", attempts: 1 }), c, 65_000)).toBe(
      "CodeRun/gh-abc · Running (AgentRunning) · attempt 1 · turns 4 · tools 2 · $0.5000 · 1m5s",
    );
    expect(formatDuration(3_725_000)).toBe("1h2m");
  });

  it("says what to do after a failure and prints the PR after a success", () => {
    expect(finalSummary(run({ phase: "Failed", reason: "AgentFailed", message: "boom" }), 2000)).toBe(
      "CodeRun gh-abc Failed after 2s\nReason: AgentFailed: boom\nNext: orchestrator runs logs coderun/gh-abc  ·  orchestrator runs retry coderun/gh-abc",
    );
    expect(
      finalSummary(
        run({ phase: "Succeeded", pullRequestUrl: "https://pr", result: { outcome: "succeeded", turns: 2, costUsd: 0.01 } }),
        1000,
      ),
    ).toBe("CodeRun gh-abc Succeeded after 1s (turns 2 · $0.0100)\nPull request: https://pr");
  });
});

describe("run reporter content", () => {
  it("knows a webhook run's origin and derives the check state from the phase", () => {
    const a = {
      "orchestrator.platform/github-repository": "acme/api",
      "orchestrator.platform/github-issue": "5",
      "orchestrator.platform/github-comment": "99",
      "orchestrator.platform/github-pull-request": "true",
    };
    expect(originOf(run({}, a))).toEqual({ repo: { owner: "acme", repo: "api" }, issue: 5, commentId: 99, pullRequest: true });
    expect(originOf(run())).toBeNull();
    expect(["Pending", "Running", "Succeeded", "Failed", "Cancelled"].map((p) => runCheckState(run({ phase: p as never })))).toEqual([
      "in_progress",
      "in_progress",
      "completed:success",
      "completed:failure",
      "completed:cancelled",
    ]);
  });

  it("builds the tracking comment from the run alone (same run, same text) and a short refusal", () => {
    const r = run({ phase: "Running", reason: "AgentRunning", attempts: 2, jobName: "gh-abc-2" });
    const body = buildTrackingComment(r, "https://o.example.com/");
    expect(body).toBe(buildTrackingComment(structuredClone(r), "https://o.example.com/"));
    expect(body.split("\n")).toEqual([
      "<!-- orchestrator-run:orch/gh-abc -->",
      "👀 On it: task 7 of `api` runs as CodeRun `gh-abc` (namespace `orch`, model `claude-x`).",
      "",
      "| | |",
      "| --- | --- |",
      "| Phase | 🔄 Running (AgentRunning) |",
      "| Attempt | 2 |",
      "| Logs | [gh-abc](https://o.example.com/api/v1/runs/CodeRun/gh-abc/logs) |",
      "",
      "This comment is updated as the run goes.",
    ]);
    expect(
      buildRefusalReply({
        delivery: "d1",
        repo: { owner: "a", repo: "b" },
        issue: 1,
        login: "x",
        reason: "already-running",
        detail: "",
        run: "gh-1",
      }),
    ).toBe(
      "<!-- orchestrator-refusal:d1 -->\n@x I did not start an agent: this task already has an active run (CodeRun `gh-1`). Wait for it to finish, or cancel it (`orchestrator runs cancel coderun/gh-1`) and ask again.",
    );
  });
});
