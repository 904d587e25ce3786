/**
 * The Octokit adapter against the GitHub test server: every read and write the Play controller
 * makes is a valid GitHub REST call (checked against @octokit/openapi), with a token or as a
 * GitHub App whose installation is looked up per repository.
 */
import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlayGitHub, type PlayGitHub } from "../../src/github/octokit.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { GitHubSim } from "../support/play-github.js";

const repo = { owner: "acme", repo: "api" };
const keys = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
let github: GitHubServer;
let sim: GitHubSim;

beforeAll(async () => {
  github = await startGitHubServer({
    users: { ghp_controller: "orchestrator-bot" },
    apps: [
      { appId: "4242", publicKey: keys.publicKey.export({ type: "spki", format: "pem" }).toString(), installationId: 99, account: "acme" },
    ],
  });
  sim = new GitHubSim(github, "acme", "api");
  const { pull } = sim.openTaskPull(7, "rex-agent");
  sim.push(pull.number, "cleo-agent");
  sim.addLabel(pull.number, "ready-for-qa", "cleo-agent");
  sim.review(pull.number, "tess-agent", "APPROVED", "ok", "NONE");
  sim.comment(pull.number, "maintainer", "/remediate", "OWNER");
  sim.reviewComment(pull.number, "maintainer", "rename", "a.rs", 3);
  sim.checkRun(pull.number, "ci", "failure");
  sim.openTaskPull(8, "rex-agent");
});
afterAll(() => github.close());

async function exercise(gh: PlayGitHub) {
  const numbers = await gh.findPullNumbers(repo, "task-7");
  expect(numbers).toEqual([1]);
  const pull = await gh.getPull(repo, 1);
  expect(pull).toMatchObject({
    number: 1,
    state: "open",
    merged: false,
    headRef: "feature/task-7-implementation",
    labels: ["task-7", "ready-for-qa"],
    author: "rex-agent",
  });
  expect(await gh.getPull(repo, 404)).toBeNull();
  const commits = await gh.listPullCommits(repo, 1);
  expect(commits.map((c) => c.author)).toEqual(["rex-agent", "cleo-agent"]);
  expect(commits[1]?.sha).toBe(pull?.headSha);
  expect((await gh.listReviews(repo, 1))[0]).toMatchObject({
    login: "tess-agent",
    state: "APPROVED",
    commitId: pull?.headSha,
    body: "ok",
    association: "NONE",
  });
  expect((await gh.listReviewComments(repo, 1))[0]).toMatchObject({
    login: "maintainer",
    body: "rename",
    path: "a.rs",
    line: 3,
    association: "MEMBER",
  });
  expect((await gh.listIssueComments(repo, 1))[0]).toMatchObject({ login: "maintainer", body: "/remediate", association: "OWNER" });
  expect((await gh.listLabelEvents(repo, 1)).map((e) => `${e.event}:${e.label}:${e.actor}`).slice(0, 2)).toEqual([
    "labeled:task-7:rex-agent",
    "labeled:ready-for-qa:cleo-agent",
  ]);
  expect((await gh.listCheckRuns(repo, pull!.headSha))[0]).toMatchObject({
    name: "ci",
    status: "completed",
    conclusion: "failure",
    externalId: null,
    app: "ci",
  });

  const content = {
    name: "Play: testing",
    externalId: "play:ns/demo:run-1",
    status: "in_progress" as const,
    title: "Testing by tess: running",
    summary: "s",
    detailsUrl: "https://o.example.com/logs",
    startedAt: "2025-06-01T12:00:00Z",
    actions: [{ label: "Re-run stage", description: "Run this Play stage again", identifier: "rerun" }],
  };
  const created = await gh.createCheckRun(repo, pull!.headSha, content);
  expect(created).toMatchObject({ name: "Play: testing", status: "in_progress", externalId: "play:ns/demo:run-1" });
  await gh.updateCheckRun(repo, created.id, {
    ...content,
    status: "completed",
    conclusion: "success",
    completedAt: "2025-06-01T12:05:00Z",
  });
  expect(await gh.getCheckRun(repo, created.id)).toMatchObject({ status: "completed", conclusion: "success" });
  expect(await gh.getCheckRun(repo, 999_999)).toBeNull();
  const comment = await gh.createComment(repo, 1, "<!-- marker -->\nhello");
  await gh.updateComment(repo, comment.id, "<!-- marker -->\nbye");
  await gh.removeLabel(repo, 1, "ready-for-qa");
  await gh.removeLabel(repo, 1, "ready-for-qa"); // already gone: 404 is success
  expect((await gh.getPull(repo, 1))?.labels).toEqual(["task-7"]);
  sim.addLabel(1, "ready-for-qa", "cleo-agent");
}

describe("Octokit adapter", () => {
  it("with a token: every call is a valid GitHub REST call", async () => {
    await exercise(createPlayGitHub({ apiUrl: github.url, auth: { token: "ghp_controller" }, writeIntervalMs: 0 }));
    expect(github.state.violations).toEqual([]);
    expect(github.state.checkRuns.find((c) => c.externalId === "play:ns/demo:run-1")?.app).toBe("orchestrator-bot");
  });

  it("as a GitHub App: the installation is looked up per repository and its token used", async () => {
    const before = github.state.installationTokens.length;
    await exercise(
      createPlayGitHub({
        apiUrl: github.url,
        auth: { app: { appId: "4242", privateKey: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString() } },
        writeIntervalMs: 0,
      }),
    );
    expect(github.state.violations).toEqual([]);
    expect(github.state.installationTokens.length).toBeGreaterThan(before);
    expect(github.state.requests.filter((r) => r.path === "/repos/acme/api/installation")).toHaveLength(1);
  });
});

describe("Octokit adapter: GitHub's failures", () => {
  const gh = () => createPlayGitHub({ apiUrl: github.url, auth: { token: "ghp_controller" }, writeIntervalMs: 0 });
  const calls = (path: string) => github.state.requests.filter((r) => r.path === path).length;

  it("spaces writes by 1 s by default, as GitHub asks of integrations", async () => {
    const client = createPlayGitHub({ apiUrl: github.url, auth: { token: "ghp_controller" } });
    const started = Date.now();
    await Promise.all([client.createComment(repo, 1, "one"), client.createComment(repo, 1, "two")]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("retries a 5xx answer", async () => {
    github.failNext("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", 1, 502);
    const before = calls("/repos/acme/api/pulls/1");
    expect(await gh().getPull(repo, 1)).toMatchObject({ number: 1 });
    expect(calls("/repos/acme/api/pulls/1") - before).toBe(2);
  });

  it("waits out a secondary rate limit (403 with retry-after) and then writes", async () => {
    github.failNext("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 1, 403, {
      message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
      headers: { "retry-after": "1" },
    });
    const started = Date.now();
    const comment = await gh().createComment(repo, 1, "after the limit");
    expect(comment.body).toBe("after the limit");
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("waits for the primary rate limit's reset (x-ratelimit-remaining: 0) and then reads", async () => {
    const reset = String(Math.floor(Date.now() / 1000) + 1);
    github.failNext("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", 1, 403, {
      message: "API rate limit exceeded for installation ID 99.",
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000", "x-ratelimit-reset": reset },
    });
    expect((await gh().listReviews(repo, 1))[0]).toMatchObject({ login: "tess-agent" });
  });

  it("fails a call whose rate limit resets later than a minute, so the pass is retried later instead of blocking a worker", async () => {
    github.failNext("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", 1, 403, {
      message: "API rate limit exceeded for installation ID 99.",
      headers: {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-limit": "5000",
        "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
      },
    });
    await expect(gh().listPullCommits(repo, 1)).rejects.toMatchObject({ status: 403 });
  });
});
