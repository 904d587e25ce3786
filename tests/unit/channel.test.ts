/**
 * The agent's channel: the model proxy (key replacement, metering at list prices, the dollar
 * budget) against the scripted Messages API, and the scoped GitHub tools as an MCP client sees
 * them, against the OpenAPI-checked GitHub test server.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GitHubAction } from "../../src/api/types.js";
import { CHANNEL_MCP_PATH } from "../../src/api/runner-contract.js";
import { startChannelServer, type ChannelServer } from "../../src/runner/channel-server.js";
import { createGitHubClient } from "../../src/runner/github.js";
import type { GitHubToolsOptions } from "../../src/runner/github-tools.js";
import { createModelProxy, UsageReader, type CostMeter, type ModelProxy } from "../../src/runner/model-proxy.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { startModelServer, type ModelServer } from "../support/model-server.js";

const log = pino({ level: "silent" });
const REAL_KEY = "sk-ant-real-key-0123456789";
const SONNET = "claude-sonnet-4-20250514";
/** The scripted model answers every streamed request with 120 input and 30 output tokens. */
const STREAMED_COST = (120 * 3 + 30 * 15) / 1_000_000;

let model: ModelServer;
let channel: ChannelServer | undefined;

beforeAll(async () => {
  model = await startModelServer();
});
afterAll(async () => {
  await model?.close();
});
afterEach(async () => {
  await channel?.close();
  channel = undefined;
  model.requests.length = 0;
});

async function openProxy(maxCostUsd?: number): Promise<{ proxy: ModelProxy; spent: CostMeter[] }> {
  const spent: CostMeter[] = [];
  const proxy = createModelProxy({
    upstream: model.url,
    apiKey: REAL_KEY,
    ...(maxCostUsd ? { maxCostUsd } : {}),
    log,
    onBudgetSpent: (m) => spent.push(m),
  });
  channel = await startChannelServer({ port: 0, handlers: { proxy }, log });
  return { proxy, spent };
}

async function ask(opts: { stream?: boolean; model?: string; path?: string } = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${channel!.url}${opts.path ?? "/v1/messages"}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "placeholder", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({
      model: opts.model ?? SONNET,
      max_tokens: 100,
      stream: opts.stream ?? true,
      tools: [{ name: "Bash" }],
      messages: [{ role: "user", content: "hello" }],
    }),
  });
  return { status: res.status, text: await res.text() };
}

describe("model proxy", () => {
  it("sends the real key upstream, never the agent's, and relays the stream unchanged", async () => {
    await openProxy();
    const r = await ask();
    expect(r.status).toBe(200);
    expect(r.text).toContain("event: message_stop");
    expect(model.requests).toHaveLength(1);
    expect(model.requests[0]!.headers["x-api-key"]).toBe(REAL_KEY);
    expect(model.requests[0]!.headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("meters streamed and plain answers at list prices", async () => {
    const { proxy } = await openProxy();
    await ask();
    await ask();
    await ask({ stream: false });
    expect(proxy.meter()).toMatchObject({ requests: 3, inputTokens: 250, outputTokens: 65, unpricedRequests: 0, budgetSpent: false });
    expect(proxy.meter().costUsd).toBeCloseTo(2 * STREAMED_COST + (10 * 3 + 5 * 15) / 1_000_000, 9);
  });

  it("stops at the dollar budget: tells its owner once, then refuses without calling upstream", async () => {
    const { proxy, spent } = await openProxy(1.5 * STREAMED_COST);
    expect((await ask()).status).toBe(200);
    expect(spent).toEqual([]);
    expect((await ask()).status).toBe(200);
    expect(spent).toHaveLength(1);
    const refused = await ask();
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(refused.text).toContain("dollar budget");
    expect(model.mainRequests()).toHaveLength(2);
    expect(proxy.meter()).toMatchObject({ requests: 2, refusedRequests: 1, budgetSpent: true });
    expect(spent).toHaveLength(1);
  });

  it("with a budget, refuses a model it cannot price instead of letting it run unmetered", async () => {
    await openProxy(1);
    const r = await ask({ model: "claude-unknown-9" });
    expect(r.status).toBe(400);
    expect(r.text).toContain("has no known price");
    expect(model.requests).toHaveLength(0);
  });

  it("forwards only the Messages API", async () => {
    await openProxy();
    const r = await ask({ path: "/v1/files" });
    expect(r.status).toBe(404);
    expect(model.requests).toHaveLength(0);
  });

  it("reads usage from events split across chunks", () => {
    const reader = new UsageReader();
    const events =
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":7,"cache_read_input_tokens":3,"output_tokens":1}}}\n\n' +
      'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":42}}\n\n';
    for (let i = 0; i < events.length; i += 13) reader.push(events.slice(i, i + 13));
    expect(reader.usage).toEqual({ inputTokens: 7, outputTokens: 42, cacheWriteTokens: 0, cacheReadTokens: 3 });
  });
});

describe("scoped GitHub tools", () => {
  const TOKEN = "ghp_channelToolsToken";
  let github: GitHubServer;
  let client: Client;
  const actions: GitHubAction[] = [];
  let prNumber: number;

  beforeAll(async () => {
    github = await startGitHubServer({ tokens: [TOKEN], repos: ["acme/shop", "acme/other"], users: { [TOKEN]: "impl-agent" } });
    const port = createGitHubClient({
      baseUrl: github.url,
      owner: "acme",
      repo: "shop",
      token: async () => TOKEN,
      log,
      retry: { baseDelayMs: 1 },
    });
    await port.createPullRequest({ title: "Someone else's", body: "", head: "feature/other", base: "main" });
    prNumber = (await port.createPullRequest({ title: "Task 7", body: "", head: "feature/task-7-implementation", base: "main" })).number;
    const tools: GitHubToolsOptions = {
      github: port,
      scope: { owner: "acme", repo: "shop", branch: "feature/task-7-implementation", baseBranch: "main", labels: ["ready-for-qa"] },
      record: (a) => actions.push(a),
      log,
      version: "test",
    };
    const proxy = createModelProxy({ upstream: model.url, apiKey: REAL_KEY, log });
    const server = await startChannelServer({ port: 0, handlers: { proxy, tools }, log });
    channel = undefined;
    client = new Client({ name: "test-agent", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}${CHANNEL_MCP_PATH}`)));
    afterAll(async () => {
      await client.close();
      await server.close();
      await github.close();
    });
  });

  const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("");
  const pull = () => github.pullsFor("acme", "shop").find((p) => p.number === prNumber)!;

  it("offers exactly the four scoped tools", async () => {
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(["add_pull_request_label", "comment_on_pull_request", "remove_pull_request_label", "submit_pull_request_review"]);
  });

  it("comments, labels and reviews this run's pull request with the run's identity", async () => {
    expect((await call("comment_on_pull_request", { body: "Looks good to me." })).isError).toBeFalsy();
    expect((await call("add_pull_request_label", { label: "Ready-For-QA", pull_number: prNumber })).isError).toBeFalsy();
    expect(pull().labels).toEqual(["ready-for-qa"]);
    expect((await call("submit_pull_request_review", { event: "APPROVE", repository: "acme/shop" })).isError).toBeFalsy();
    expect((await call("remove_pull_request_label", { label: "ready-for-qa" })).isError).toBeFalsy();
    expect(pull().labels).toEqual([]);
    expect(github.state.comments.filter((c) => c.issueNumber === prNumber)).toMatchObject([
      { body: "Looks good to me.", user: "impl-agent" },
    ]);
    expect(github.state.reviews).toMatchObject([{ pullNumber: prNumber, state: "APPROVED", user: "impl-agent" }]);
    expect(github.state.violations).toEqual([]);
  });

  it.each([
    ["another pull request", "comment_on_pull_request", { body: "hi", pull_number: 1 }, "is not this run's pull request"],
    ["another repository", "comment_on_pull_request", { body: "hi", repository: "acme/other" }, "is not this run's repository"],
    ["a label that is not a stage label", "add_pull_request_label", { label: "approved" }, "is not a stage label"],
    ["removing a label that is not a stage label", "remove_pull_request_label", { label: "task-7" }, "is not a stage label"],
    [
      "a review on another pull request",
      "submit_pull_request_review",
      { event: "APPROVE", pull_number: 1 },
      "is not this run's pull request",
    ],
    ["a change request without a reason", "submit_pull_request_review", { event: "REQUEST_CHANGES" }, "needs a body"],
  ])("refuses %s with a clear message and changes nothing", async (_what, tool, args, message) => {
    const before = { comments: github.state.comments.length, reviews: github.state.reviews.length, labels: [...pull().labels] };
    const r = await call(tool, args);
    expect(r.isError).toBe(true);
    expect(text(r)).toContain(message);
    expect(text(r)).toMatch(/^Refused: /);
    expect({ comments: github.state.comments.length, reviews: github.state.reviews.length, labels: pull().labels }).toEqual(before);
    expect(actions.at(-1)).toMatchObject({ tool, refused: true });
  });

  it("records every call, done or refused", () => {
    expect(actions.filter((a) => !a.refused).map((a) => a.tool)).toEqual([
      "comment_on_pull_request",
      "add_pull_request_label",
      "submit_pull_request_review",
      "remove_pull_request_label",
    ]);
    expect(actions.filter((a) => a.refused)).toHaveLength(6);
  });
});
