import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitHubClient, ensurePullRequest, repositoryAccessError, withRetry, type GitHubPort } from "../../src/runner/github.js";
import { checkRequest, matchOperation, startGitHubServer, type GitHubServer } from "../support/github-server.js";

const TOKEN = "ghp_unitTestToken";
const log = pino({ level: "silent" });
let github: GitHubServer;
let port: GitHubPort;

beforeAll(async () => {
  github = await startGitHubServer({ tokens: [TOKEN], repos: ["acme/shop"] });
  port = createGitHubClient({ baseUrl: github.url, owner: "acme", repo: "shop", token: async () => TOKEN, log, retry: { baseDelayMs: 1 } });
});
afterAll(async () => {
  await github?.close();
});

describe("the fake GitHub's OpenAPI checks", () => {
  it("finds operations and rejects what GitHub's description rejects", () => {
    const create = matchOperation("POST", "/repos/acme/shop/pulls")!;
    expect(create.operation.operationId).toBe("pulls/create");
    expect(checkRequest(create, new URLSearchParams(), { title: "t", head: "b", base: "main" }, true)).toEqual([]);
    expect(checkRequest(create, new URLSearchParams(), { title: "t", base: "main" }, true)).toEqual([
      'body: missing required property "head"',
    ]);
    expect(checkRequest(create, new URLSearchParams(), { title: 7, head: "b", base: "main" }, true)).toEqual([
      "body.title: must be string, got integer",
    ]);
    const list = matchOperation("GET", "/repos/acme/shop/pulls")!;
    expect(checkRequest(list, new URLSearchParams({ state: "merged" }), undefined, false)).toEqual([
      'query.state: must be one of ["open","closed","all"]',
    ]);
    expect(checkRequest(list, new URLSearchParams({ colour: "red" }), undefined, false)).toEqual([
      "query parameter colour is not part of pulls/list",
    ]);
    const labels = matchOperation("POST", "/repos/acme/shop/issues/x/labels")!;
    expect(checkRequest(labels, new URLSearchParams(), { labels: ["a"] }, true)).toContain(
      "path.issue_number: must be integer, got string",
    );
    expect(matchOperation("POST", "/repos/acme/shop/pull-requests")).toBeNull();
  });

  it("answers invalid requests like GitHub and records them", async () => {
    const before = github.state.violations.length;
    const res = await fetch(`${github.url}/repos/acme/shop/pulls`, {
      method: "POST",
      headers: { authorization: `token ${TOKEN}` },
      body: JSON.stringify({ title: "t", base: "main" }),
    });
    expect(res.status).toBe(422);
    const unknown = await fetch(`${github.url}/repos/acme/shop/nonsense`, { headers: { authorization: `token ${TOKEN}` } });
    expect(unknown.status).toBe(404);
    const unauthorized = await fetch(`${github.url}/repos/acme/shop`, { headers: { authorization: "token nope" } });
    expect(unauthorized.status).toBe(401);
    expect(github.state.violations.length).toBe(before + 2);
    github.state.violations.length = before;
  });
});

describe("GitHub adapter", () => {
  it("checks access and maps failures to reasons", async () => {
    await expect(port.checkRepositoryAccess()).resolves.toBeUndefined();
    const wrongToken = createGitHubClient({ baseUrl: github.url, owner: "acme", repo: "shop", token: async () => "bad", log });
    await expect(wrongToken.checkRepositoryAccess()).rejects.toMatchObject({ reason: "AuthFailed" });
    const missing = createGitHubClient({ baseUrl: github.url, owner: "acme", repo: "nope", token: async () => TOKEN, log });
    await expect(missing.checkRepositoryAccess()).rejects.toMatchObject({
      reason: "RepoUnreachable",
      message: expect.stringMatching(/acme\/nope/),
    });
  });

  it("ensures exactly one pull request, retrying 5xx", async () => {
    github.failNext("GET", "/repos/{owner}/{repo}/pulls", 2, 502);
    github.failNext("POST", "/repos/{owner}/{repo}/pulls", 1, 503);
    const first = await ensurePullRequest(port, { title: "Add it", body: "Body", head: "feature/x", base: "main", labels: ["task-1"] });
    expect(first.created).toBe(true);
    const second = await ensurePullRequest(port, {
      title: "Add it again",
      body: "Body",
      head: "feature/x",
      base: "main",
      labels: ["task-1"],
    });
    expect(second).toMatchObject({ created: false, pullRequest: { number: first.pullRequest.number } });
    expect(github.pullsFor("acme", "shop")).toHaveLength(1);
    expect(github.pullsFor("acme", "shop")[0]).toMatchObject({ title: "Add it", labels: ["task-1"] });
    expect(github.state.violations).toEqual([]);
  });

  it("gives an existing pull request the title and body of a later run's PR_DESCRIPTION.md, and keeps it otherwise", async () => {
    const first = await ensurePullRequest(port, {
      title: "feat: first try",
      body: "First body",
      head: "feature/later",
      base: "main",
      labels: [],
    });
    const kept = await ensurePullRequest(port, {
      title: "feat(api): implement task 9",
      body: "Default text",
      head: "feature/later",
      base: "main",
      labels: [],
    });
    expect(kept.pullRequest).toMatchObject({ number: first.pullRequest.number, title: "feat: first try" });
    const later = await ensurePullRequest(port, {
      title: "feat: rate limiter, second pass",
      body: "Now with tests",
      head: "feature/later",
      base: "main",
      labels: [],
      replaceText: true,
    });
    expect(later).toMatchObject({
      created: false,
      pullRequest: { number: first.pullRequest.number, title: "feat: rate limiter, second pass" },
    });
    expect(github.pullsFor("acme", "shop").find((p) => p.head === "feature/later")).toMatchObject({
      title: "feat: rate limiter, second pass",
      body: "Now with tests",
    });
    expect(github.state.violations).toEqual([]);
  });

  it("uses the pull request another writer created meanwhile (422 on create)", async () => {
    let listed = 0;
    const racing: GitHubPort = {
      ...port,
      findOpenPullRequest: async (head, base) => (listed++ === 0 ? null : port.findOpenPullRequest(head, base)),
    };
    await port.createPullRequest({ title: "Theirs", body: "", head: "feature/race", base: "main" });
    const ensured = await ensurePullRequest(racing, { title: "Mine", body: "", head: "feature/race", base: "main", labels: [] });
    expect(ensured).toMatchObject({ created: false, pullRequest: { title: "Theirs" } });
    expect(github.pullsFor("acme", "shop").filter((p) => p.head === "feature/race")).toHaveLength(1);
  });

  it("gives up on persistent failures with PullRequestFailed", async () => {
    github.failNext("GET", "/repos/{owner}/{repo}/pulls", 10, 500);
    await expect(ensurePullRequest(port, { title: "t", body: "", head: "feature/down", base: "main", labels: [] })).rejects.toMatchObject({
      reason: "PullRequestFailed",
    });
  });

  it("withRetry does not retry client errors", async () => {
    let calls = 0;
    await expect(
      withRetry(
        "x",
        async () => {
          calls++;
          throw Object.assign(new Error("nope"), { status: 404 });
        },
        { sleep: async () => {} },
      ),
    ).rejects.toThrow("nope");
    expect(calls).toBe(1);
  });
});

describe("repositoryAccessError", () => {
  const where = { baseUrl: "https://ghe.example.com/api/v3", owner: "acme", repo: "api" };
  it.each([
    { status: 401, reason: "AuthFailed", says: "github-token-{user}" },
    { status: 403, reason: "AuthFailed", says: "Grant the run's GitHub user or App access" },
    { status: 404, reason: "RepoUnreachable", says: "Check repositoryUrl" },
    { status: 502, reason: "RepoUnreachable", says: "HTTP 502" },
    { status: undefined, reason: "RepoUnreachable", says: "Check githubApiUrl and the network" },
  ])("HTTP $status → $reason, saying what to fix", ({ status, reason, says }) => {
    const e = repositoryAccessError(Object.assign(new Error("x"), status ? { status } : {}), where);
    expect(e.reason).toBe(reason);
    expect(e.message).toContain(says);
  });
});
