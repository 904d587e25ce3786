import { describe, expect, it } from "vitest";
import type { AgentResult } from "../../src/api/types.js";
import {
  buildClaudeArgs,
  classifyExit,
  computeUsage,
  describeClaudeArgs,
  initialProgress,
  parseStreamLine,
  updateProgress,
  type AgentEvent,
} from "../../src/runner/claude.js";
import { readRunnerEnv } from "../../src/runner/env.js";
import { RunnerError } from "../../src/runner/errors.js";
import { parseRunParameters } from "../../src/runner/params.js";
import { parsePrDescription } from "../../src/runner/pr-description.js";
import { Redactor } from "../../src/runner/redact.js";
import { isSshUrl, parseRepoUrl, redactUrl, sameRepository } from "../../src/runner/repo-url.js";
import { serializeAgentResult, truncateUtf8 } from "../../src/runner/result.js";
import { savedMessage, stoppedMessage } from "../../src/runner/run.js";
import { bindRunRepositories } from "../../src/runner/run.js";
import { computeTaskDocPaths } from "../../src/runner/task-docs.js";

describe("parseRepoUrl", () => {
  it.each([
    ["https://github.com/acme/shop.git", { host: "github.com", owner: "acme", repo: "shop" }],
    ["https://github.com/acme/shop", { host: "github.com", owner: "acme", repo: "shop" }],
    ["https://github.com/acme/shop/", { host: "github.com", owner: "acme", repo: "shop" }],
    ["https://x-access-token:secret@ghe.example.com/acme/shop.git", { host: "ghe.example.com", owner: "acme", repo: "shop" }],
    ["http://127.0.0.1:8080/org/target.git", { host: "127.0.0.1:8080", owner: "org", repo: "target" }],
    ["git@github.com:acme/shop.git", { host: "github.com", owner: "acme", repo: "shop" }],
    ["git@github.com:acme/shop", { host: "github.com", owner: "acme", repo: "shop" }],
    ["ssh://git@github.com/acme/shop.git", { host: "github.com", owner: "acme", repo: "shop" }],
    ["ssh://git@github.com:22/acme/shop.git", { host: "github.com", owner: "acme", repo: "shop" }],
    ["/srv/git/shop.git", null],
    ["./shop", null],
    ["file:///srv/git/acme/shop.git", null],
    ["https://github.com/acme", null],
    ["https://gitlab.com/group/sub/repo.git", null],
    ["not a url", null],
  ])("%s", (url, expected) => {
    expect(parseRepoUrl(url)).toEqual(expected);
  });

  it("tells SSH remotes apart", () => {
    expect(isSshUrl("git@github.com:acme/shop.git")).toBe(true);
    expect(isSshUrl("ssh://git@github.com/acme/shop.git")).toBe(true);
    expect(isSshUrl("https://github.com/acme/shop.git")).toBe(false);
    expect(isSshUrl("/srv/git/shop.git")).toBe(false);
  });

  it("compares repositories across protocols and credentials", () => {
    expect(sameRepository("git@github.com:Acme/Shop.git", "https://github.com/acme/shop")).toBe(true);
    expect(sameRepository("https://token@github.com/acme/shop.git", "https://github.com/acme/shop.git")).toBe(true);
    expect(sameRepository("https://github.com/acme/shop.git", "https://github.com/acme/docs.git")).toBe(false);
    expect(sameRepository("/srv/git/shop.git", "/srv/git/shop")).toBe(true);
    expect(sameRepository("/srv/git/shop.git", "/srv/git/docs.git")).toBe(false);
  });

  it("removes credentials for display", () => {
    expect(redactUrl("https://x-access-token:ghs_abc@github.com/acme/shop.git")).toBe("https://github.com/acme/shop.git");
    expect(redactUrl("git@github.com:acme/shop.git")).toBe("git@github.com:acme/shop.git");
  });

  it("binds the run's repositories to the configured GitHub host before any network call", () => {
    const params = {
      kind: "code",
      repositoryUrl: "acme/shop",
      docsRepositoryUrl: "git@github.com:acme/docs.git",
      githubUrl: "https://github.com",
    } as Parameters<typeof bindRunRepositories>[0];
    expect(bindRunRepositories(params)).toEqual({
      target: { owner: "acme", repo: "shop", key: "acme/shop", httpsUrl: "https://github.com/acme/shop.git" },
      docs: {
        owner: "acme",
        repo: "docs",
        key: "acme/docs",
        httpsUrl: "https://github.com/acme/docs.git",
        sshUrl: "ssh://git@github.com/acme/docs.git",
      },
    });
    for (const repositoryUrl of [
      "/srv/git/shop.git",
      "file:///srv/git/shop.git",
      "http://github.com/acme/shop.git",
      "https://evil.example/acme/shop.git",
      "https://x:y@github.com/acme/shop",
    ]) {
      expect(() => bindRunRepositories({ ...params, repositoryUrl }), repositoryUrl).toThrow(RunnerError);
    }
    expect(() => bindRunRepositories({ ...params, docsRepositoryUrl: "http://127.0.0.1:9/x/y.git" })).toThrow(
      /docsRepositoryUrl http:\/\/127\.0\.0\.1:9\/x\/y\.git was refused before any network call: http:\/\/127\.0\.0\.1:9 is not the configured GitHub host; credentials are only used with https:\/\/github\.com/,
    );
  });
});

describe("parsePrDescription", () => {
  it("uses the first heading as title and the rest as body", () => {
    expect(parsePrDescription("# Add health endpoint\n\n## Summary\nAdds it.\n", "fallback")).toEqual({
      title: "Add health endpoint",
      body: "## Summary\nAdds it.",
    });
  });

  it("accepts any heading level, text before the heading, CRLF and closing hashes", () => {
    expect(parsePrDescription("Intro line\r\n## Fix the thing ##\r\nDetails\r\n", "fallback")).toEqual({
      title: "Fix the thing",
      body: "Intro line\nDetails",
    });
  });

  it("ignores headings inside code fences", () => {
    const text = "```sh\n# not a title\n```\n# Real title\nbody";
    expect(parsePrDescription(text, "fallback")?.title).toBe("Real title");
  });

  it("falls back to the default title without a heading, and to null when empty", () => {
    expect(parsePrDescription("Just a body.\n", "feat(api): implement task 7")).toEqual({
      title: "feat(api): implement task 7",
      body: "Just a body.",
    });
    expect(parsePrDescription("  \n\n", "x")).toBeNull();
  });
});

describe("serializeAgentResult", () => {
  const base: AgentResult = { outcome: "failed", reason: "AgentFailed", branch: "feature/task-7-implementation", turns: 3 };

  it("keeps a small result as is", () => {
    const result = { ...base, message: "short" };
    expect(JSON.parse(serializeAgentResult(result))).toEqual(result);
  });

  it.each([
    ["ascii", "x".repeat(10_000)],
    ["multi-byte", "é😀".repeat(3_000)],
    ["escaped", '"\\\n'.repeat(3_000)],
  ])("truncates a long %s message to fit 4096 bytes", (_name, message) => {
    const text = serializeAgentResult({ ...base, message });
    expect(Buffer.byteLength(text, "utf8")).toBeLessThanOrEqual(4096);
    const parsed = JSON.parse(text) as AgentResult;
    expect(parsed).toMatchObject(base);
    expect(parsed.message!.endsWith("…")).toBe(true);
    expect(message.startsWith(parsed.message!.slice(0, -1))).toBe(true);
    expect(Buffer.byteLength(text, "utf8")).toBeGreaterThan(3500);
  });

  it("drops the message when nothing else fits", () => {
    const text = serializeAgentResult({ ...base, message: "m".repeat(500), pullRequestUrl: "u".repeat(200) }, 260);
    expect(JSON.parse(text)).not.toHaveProperty("message");
  });

  it("never splits a character", () => {
    expect(truncateUtf8("a😀b", 4)).toBe("a");
    expect(truncateUtf8("a😀b", 5)).toBe("a😀");
  });
});

describe("stream-json parsing", () => {
  const lines = [
    `{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Bash","Write"],"model":"claude-sonnet-4","permissionMode":"acceptEdits"}`,
    `{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","id":"t1","name":"Write","input":{}}],"usage":{"input_tokens":100,"output_tokens":10}},"session_id":"s-1"}`,
    `{"type":"user","message":{"role":"user","content":[{"tool_use_id":"t1","type":"tool_result","content":"ok"}]}}`,
    `{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"Running tests"}],"usage":{"input_tokens":120,"output_tokens":5}}}`,
    `{"type":"assistant","message":{"id":"m2","content":[{"type":"tool_use","id":"t2","name":"Bash","input":{}}],"usage":{"input_tokens":120,"output_tokens":5}}}`,
    `{"type":"user","message":{"role":"user","content":[{"tool_use_id":"t2","type":"tool_result","content":[{"type":"text","text":"Exit code 1"}],"is_error":true}]}}`,
    `not json at all`,
    ``,
    `{"type":"result","subtype":"success","is_error":false,"num_turns":3,"total_cost_usd":0.0123,"usage":{"input_tokens":400,"output_tokens":40},"session_id":"s-1","duration_ms":2000,"result":"Done"}`,
  ];

  it("turns each line into an event", () => {
    const events = lines.map(parseStreamLine);
    expect(events[0]).toEqual({ kind: "init", sessionId: "s-1", model: "claude-sonnet-4", tools: 2, permissionMode: "acceptEdits" });
    expect(events[1]).toMatchObject({ kind: "assistant", messageId: "m1", toolCalls: [{ id: "t1", name: "Write" }], inputTokens: 100 });
    expect(events[5]).toEqual({ kind: "tool-results", results: [{ toolUseId: "t2", isError: true, error: "Exit code 1" }] });
    expect(events[6]).toEqual({ kind: "unparsed", line: "not json at all" });
    expect(events[7]).toBeNull();
    expect(events[8]).toMatchObject({ kind: "result", subtype: "success", turns: 3, costUsd: 0.0123, inputTokens: 400, outputTokens: 40 });
  });

  it("accumulates progress, counting a message split over several events once", () => {
    let progress = initialProgress();
    const events = lines.map(parseStreamLine).filter((e): e is AgentEvent => e !== null);
    const turns: number[] = [];
    for (const e of events) {
      progress = updateProgress(progress, e);
      turns.push(progress.turns);
    }
    expect(turns.slice(0, 5)).toEqual([0, 1, 1, 2, 2]);
    expect(progress).toMatchObject({
      sessionId: "s-1",
      turns: 3,
      toolCalls: { Write: 1, Bash: 1 },
      inputTokens: 400,
      outputTokens: 40,
      costUsd: 0.0123,
    });
    expect(progress.pendingTools.t2).toBe("Bash");
  });

  it("classifies how Claude Code ended", () => {
    const withResult = (subtype: string, isError = false) =>
      updateProgress(initialProgress(), {
        kind: "result",
        subtype,
        isError,
        turns: 1,
        costUsd: 0,
        inputTokens: 0,
        outputTokens: 0,
        sessionId: null,
        durationMs: 0,
        text: null,
      });
    expect(classifyExit(withResult("success"), 0)).toBe("completed");
    expect(classifyExit(withResult("success", true), 0)).toBe("failed");
    expect(classifyExit(withResult("error_max_turns", true), 1)).toBe("max-turns");
    expect(classifyExit(withResult("error_during_execution", true), 1)).toBe("failed");
    expect(classifyExit(initialProgress(), 0)).toBe("failed");
  });
});

describe("buildClaudeArgs", () => {
  const inv = {
    prompt: "---\ntitle: front matter\n---\nDo it",
    model: "claude-sonnet-4",
    maxTurns: 30,
    continueSession: false,
    systemPrompt: "SYS",
    settingsPath: "/task-files/managed-settings.json",
  };

  it("puts the prompt last, after --, and adds --continue only when asked", () => {
    const args = buildClaudeArgs(inv);
    expect(args.slice(0, 5)).toEqual(["-p", "--output-format", "stream-json", "--verbose", "--model"]);
    expect(args.slice(-2)).toEqual(["--", inv.prompt]);
    expect(args).toContain("--max-turns");
    expect(args[args.indexOf("--max-turns") + 1]).toBe("30");
    expect(args[args.indexOf("--settings") + 1]).toBe("/task-files/managed-settings.json");
    expect(args[args.indexOf("--append-system-prompt") + 1]).toBe("SYS");
    expect(args).not.toContain("--continue");
    expect(buildClaudeArgs({ ...inv, continueSession: true })).toContain("--continue");
  });

  it("logs argv without the prompt texts", () => {
    const shown = describeClaudeArgs(buildClaudeArgs(inv));
    expect(shown.join(" ")).not.toContain("front matter");
    expect(shown.join(" ")).not.toContain("SYS");
    expect(shown.at(-1)).toBe(`<${inv.prompt.length} chars>`);
  });
});

describe("parseRunParameters", () => {
  const valid = {
    kind: "code",
    runName: "r",
    namespace: "n",
    attempt: 1,
    model: "m",
    repositoryUrl: "https://github.com/a/b",
    workingDirectory: "./services/api/",
    baseBranch: "main",
    branch: "feature/task-1-implementation",
    continueSession: false,
    overwriteMemory: false,
    maxTurns: 10,
    timeBudgetSeconds: 100,
    githubApiUrl: "https://api.github.com",
    prLabels: [],
    taskId: 1,
    docsRepositoryUrl: "https://github.com/a/docs",
    githubUrl: "https://github.com",
  };

  it("normalises directories", () => {
    expect(parseRunParameters(JSON.stringify(valid), "run.json").workingDirectory).toBe("services/api");
  });

  it("names every invalid field", () => {
    const bad = { ...valid, workingDirectory: "../escape", branch: "main", taskId: undefined, maxTurns: 0 };
    expect(() => parseRunParameters(JSON.stringify(bad), "/task-files/run.json")).toThrow(
      /\/task-files\/run\.json is invalid: .*workingDirectory.*maxTurns.*taskId.*branch/s,
    );
    expect(() => parseRunParameters("{", "run.json")).toThrow(/not valid JSON/);
    expect(() => parseRunParameters(JSON.stringify({ ...valid, githubUrl: "http://github.com" }), "run.json")).toThrow(
      /githubUrl must use https:\/\//,
    );
    expect(() => parseRunParameters(JSON.stringify({ ...valid, githubApiUrl: "http://evil.example" }), "run.json")).toThrow(
      /githubApiUrl must use https:\/\//,
    );
  });
});

describe("computeTaskDocPaths", () => {
  it("joins the project directory", () => {
    expect(computeTaskDocPaths(".", 7)).toEqual({ dir: ".taskmaster/docs/task-7", architecture: ".taskmaster/docs/architecture.md" });
    expect(computeTaskDocPaths("projects/shop", 12)).toEqual({
      dir: "projects/shop/.taskmaster/docs/task-12",
      architecture: "projects/shop/.taskmaster/docs/architecture.md",
    });
  });
});

describe("secrets", () => {
  it("scrubs known secrets and URL credentials from text", () => {
    const r = new Redactor();
    r.add("ghp_supersecret123");
    r.add("abc"); // too short to register
    expect(r.scrub("fatal: https://x-access-token:ghp_supersecret123@github.com/a/b.git: denied; token ghp_supersecret123; abc")).toBe(
      "fatal: https://github.com/a/b.git: denied; token [REDACTED]; abc",
    );
  });

  it("keeps GitHub and model credentials out of the agent's environment", () => {
    const env = readRunnerEnv({
      GITHUB_TOKEN: "t0ken",
      ANTHROPIC_API_KEY: "k",
      PATH: "/bin",
      AGENT_ROOT: "/tmp/x",
      GITHUB_REPOSITORY: "a/b",
    });
    expect(env.githubToken).toBe("t0ken");
    expect(env.agentRoot).toBe("/tmp/x");
    expect(env.anthropicApiKey).toBe("k");
    expect(env.agentEnv).toEqual({ PATH: "/bin" });
    expect(env.baseEnv).toEqual({ PATH: "/bin" });
  });
});

describe("computeUsage", () => {
  const progress = (over: Partial<ReturnType<typeof initialProgress>>) => ({
    ...initialProgress(),
    model: "claude-sonnet-4-20250514",
    ...over,
  });
  const result = (turns: number, costUsd: number | null) => ({
    kind: "result" as const,
    subtype: "error_max_turns",
    isError: true,
    turns,
    costUsd,
    inputTokens: null,
    outputTokens: null,
    sessionId: null,
    durationMs: null,
    text: null,
  });

  it.each([
    [
      "Claude Code's own figures",
      progress({ turns: 3, inputTokens: 400, outputTokens: 40, costUsd: 0.0123 }),
      30,
      { turns: 3, inputTokens: 400, outputTokens: 40, costUsd: 0.0123 },
    ],
    [
      "at the turn limit, num_turns counts the refused turn",
      progress({ turns: 3, result: result(3, 0.02), costUsd: 0.02 }),
      2,
      { turns: 2, costUsd: 0.02 },
    ],
    [
      "a budget stop: no result, cost estimated at list prices",
      progress({ turns: 2, inputTokens: 1000, outputTokens: 100, cacheWriteTokens: 800, cacheReadTokens: 10_000 }),
      30,
      { turns: 2, inputTokens: 1000, outputTokens: 100, costUsd: (1000 + 1.25 * 800 + 0.1 * 10_000) * 3e-6 + 100 * 15e-6 },
    ],
  ])("%s", (_name, p, maxTurns, expected) => {
    const usage = computeUsage(p, maxTurns);
    expect(usage).toMatchObject({ ...expected, costUsd: expect.closeTo(expected.costUsd ?? 0, 9) });
  });

  it("reports no cost for a model without a list price", () => {
    expect(computeUsage(progress({ model: "claude-test", turns: 1, inputTokens: 10 }), 5)).not.toHaveProperty("costUsd");
  });

  it("sums prompt-cache tokens of each assistant message once", () => {
    const line = `{"type":"assistant","message":{"id":"m1","content":[],"usage":{"input_tokens":5,"output_tokens":1,"cache_creation_input_tokens":700,"cache_read_input_tokens":9000}}}`;
    let p = initialProgress();
    for (const l of [line, line]) p = updateProgress(p, parseStreamLine(l)!);
    expect([p.cacheWriteTokens, p.cacheReadTokens]).toEqual([700, 9000]);
  });
});

describe("stoppedMessage and savedMessage", () => {
  const outcome = (status: "failed" | "max-turns", extra: { exitCode?: number | null; stderrTail?: string; subtype?: string } = {}) => ({
    status,
    exitCode: extra.exitCode ?? null,
    progress: { ...initialProgress(), ...(extra.subtype ? { result: { subtype: extra.subtype } } : {}) } as never,
    stderrTail: extra.stderrTail ?? "",
    durationMs: 1,
  });
  it.each([
    { name: "a stop that is not a failure", o: outcome("max-turns"), what: "used all its turns", want: "Claude Code used all its turns." },
    { name: "a failure without details", o: outcome("failed"), what: "failed", want: "Claude Code failed (exit code none)." },
    {
      name: "a failure with exit code, result and stderr",
      o: outcome("failed", { exitCode: 1, subtype: "error_during_execution", stderrTail: "boom" }),
      what: "failed",
      want: "Claude Code failed (exit code 1, result error_during_execution: boom).",
    },
  ])("$name", ({ o, what, want }) => {
    expect(stoppedMessage(o, what)).toBe(want);
  });
  it.each([
    { pushed: true, committed: true, want: " Work in progress was committed and pushed to b; the next attempt continues from it." },
    { pushed: true, committed: false, want: " Work in progress pushed to b; the next attempt continues from it." },
    { pushed: false, committed: true, want: " Work in progress was committed in the workspace but could not be pushed." },
    { pushed: false, committed: false, want: " There was no work to save." },
  ])("pushed $pushed, committed $committed", ({ pushed, committed, want }) => {
    expect(savedMessage(pushed, committed, "b")).toBe(want);
  });
});
