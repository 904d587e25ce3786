/**
 * The GitHub calls the runner makes, behind a small port: check access to the repository, find or
 * create the run's pull request, label it. The adapter uses @octokit/rest against the run's API
 * URL (api.github.com, GHES, or a test server), with retries on 5xx and network errors.
 */
import { Octokit } from "@octokit/rest";
import type { Logger } from "pino";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";

export interface PullRequest {
  number: number;
  htmlUrl: string;
  title: string;
  body: string;
}

export interface NewPullRequest {
  title: string;
  body: string;
  head: string;
  base: string;
}

/** What the runner needs from GitHub. */
export interface GitHubPort {
  /** Throws RunnerError(AuthFailed | RepoUnreachable) when the token cannot see the repository. */
  checkRepositoryAccess(): Promise<void>;
  findOpenPullRequest(head: string, base: string): Promise<PullRequest | null>;
  createPullRequest(input: NewPullRequest): Promise<PullRequest>;
  updatePullRequest(number: number, text: { title: string; body: string }): Promise<void>;
  addLabels(issueNumber: number, labels: string[]): Promise<void>;
  /** Removes one label; a label the PR does not carry is not an error. */
  removeLabel(issueNumber: number, label: string): Promise<void>;
  /** Returns the comment's URL. */
  createComment(issueNumber: number, body: string): Promise<string>;
  /** Returns the review's URL. */
  submitReview(pullNumber: number, review: { event: ReviewEvent; body: string }): Promise<string>;
}

export type ReviewEvent = "APPROVE" | "REQUEST_CHANGES" | "COMMENT";

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown })?.status;
  return typeof status === "number" ? status : undefined;
}

/** Transient: 5xx, 429, or no HTTP status at all (connection refused, reset, DNS). */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  return status === undefined || status >= 500 || status === 429;
}

/** Runs `fn`, retrying transient failures with exponential backoff. */
export async function withRetry<T>(what: string, fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  const base = options.baseDelayMs ?? 500;
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !isTransient(err)) throw err;
      const delay = base * 2 ** (attempt - 1);
      options.log?.warn({ what, attempt, status: statusOf(err), delayMs: delay, err: (err as Error).message }, "Retrying GitHub call");
      await sleep(delay);
    }
  }
}

export interface GitHubClientOptions {
  baseUrl: string;
  owner: string;
  repo: string;
  /** Called per request, so a GitHub App installation token can be refreshed. */
  token: () => Promise<string>;
  log: Logger;
  retry?: RetryOptions;
}

function describe(err: unknown): string {
  const status = statusOf(err);
  const message = (err as Error)?.message ?? String(err);
  return status ? `HTTP ${status}: ${message}` : message;
}

/** Why the run cannot use the repository, from GitHub's answer to reading it (what to fix, by status). */
export function repositoryAccessError(err: unknown, where: { baseUrl: string; owner: string; repo: string }): RunnerError {
  const { baseUrl, owner, repo } = where;
  switch (statusOf(err)) {
    case 401:
      return new RunnerError(
        Reasons.AuthFailed,
        `GitHub rejected the credentials (HTTP 401 Bad credentials) at ${baseUrl}. Check the run's token secret (github-token-{user}) or GitHub App secret and that it has not expired.`,
      );
    case 403:
      return new RunnerError(
        Reasons.AuthFailed,
        `GitHub denied access to ${owner}/${repo} (HTTP 403). Grant the run's GitHub user or App access to the repository.`,
      );
    case 404:
      return new RunnerError(
        Reasons.RepoUnreachable,
        `GitHub repository ${owner}/${repo} was not found at ${baseUrl}, or the run's credentials cannot see it. Check repositoryUrl and that the GitHub user or App has access.`,
      );
    default:
      return new RunnerError(
        Reasons.RepoUnreachable,
        `Could not reach the GitHub API at ${baseUrl} (${describe(err)}). Check githubApiUrl and the network.`,
        { cause: err },
      );
  }
}

function toPullRequest(p: { number: number; html_url: string; title: string; body: string | null }): PullRequest {
  return { number: p.number, htmlUrl: p.html_url, title: p.title, body: p.body ?? "" };
}

/** The Octokit adapter of GitHubPort. */
export function createGitHubClient(options: GitHubClientOptions): GitHubPort {
  const { owner, repo, log } = options;
  const retry = { log, ...options.retry };
  const client = async () =>
    new Octokit({
      auth: await options.token(),
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      userAgent: "orchestrator-agent-runner",
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    });

  /** One REST call with the runner's retries. */
  const call = <T>(what: string, fn: (octokit: Octokit) => Promise<T>): Promise<T> =>
    withRetry(what, async () => fn(await client()), retry);

  return {
    async checkRepositoryAccess() {
      try {
        await call("get repository", (o) => o.rest.repos.get({ owner, repo }));
      } catch (err) {
        throw repositoryAccessError(err, options);
      }
    },
    async findOpenPullRequest(head, base) {
      const { data } = await call("list pull requests", (o) =>
        o.rest.pulls.list({ owner, repo, state: "open", head: `${owner}:${head}`, base, per_page: 100 }),
      );
      const match = data.find((p) => p.head.ref === head && p.base.ref === base);
      return match ? toPullRequest(match) : null;
    },
    async createPullRequest(input) {
      const { title, body, head, base } = input;
      return toPullRequest((await call("create pull request", (o) => o.rest.pulls.create({ owner, repo, title, body, head, base }))).data);
    },
    async updatePullRequest(number, text) {
      await call("update pull request", (o) =>
        o.rest.pulls.update({ owner, repo, pull_number: number, title: text.title, body: text.body }),
      );
    },
    async addLabels(issueNumber, labels) {
      if (labels.length === 0) return;
      await call("add labels", (o) => o.rest.issues.addLabels({ owner, repo, issue_number: issueNumber, labels }));
    },
    async removeLabel(issueNumber, name) {
      try {
        await call("remove label", (o) => o.rest.issues.removeLabel({ owner, repo, issue_number: issueNumber, name }));
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
    async createComment(issueNumber, body) {
      return (await call("create comment", (o) => o.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body }))).data
        .html_url;
    },
    async submitReview(pullNumber, review) {
      const { event, body } = review;
      return (await call("submit review", (o) => o.rest.pulls.createReview({ owner, repo, pull_number: pullNumber, event, body }))).data
        .html_url;
    },
  };
}

export interface EnsuredPullRequest {
  pullRequest: PullRequest;
  created: boolean;
}

/**
 * Exactly one open pull request head → base: the existing one, or a new one. A 422 on create
 * means another writer won the race (or the PR appeared meanwhile): list again and use it.
 * `replaceText`: the agent wrote PR_DESCRIPTION.md in this run, so an existing PR takes its
 * title and body (a later run describes the branch as it is now).
 */
export async function ensurePullRequest(
  port: GitHubPort,
  input: NewPullRequest & { labels: string[]; replaceText?: boolean },
): Promise<EnsuredPullRequest> {
  try {
    let pullRequest = await port.findOpenPullRequest(input.head, input.base);
    let created = false;
    if (!pullRequest) {
      try {
        pullRequest = await port.createPullRequest(input);
        created = true;
      } catch (err) {
        if (statusOf(err) !== 422) throw err;
        pullRequest = await port.findOpenPullRequest(input.head, input.base);
        if (!pullRequest) throw err;
      }
    }
    if (!created && input.replaceText && (pullRequest.title !== input.title || pullRequest.body !== input.body)) {
      await port.updatePullRequest(pullRequest.number, { title: input.title, body: input.body });
      pullRequest = { ...pullRequest, title: input.title, body: input.body };
    }
    await port.addLabels(pullRequest.number, input.labels);
    return { pullRequest, created };
  } catch (err) {
    if (err instanceof RunnerError) throw err;
    const hint =
      statusOf(err) === 401 || statusOf(err) === 403
        ? "Check that the run's GitHub token or App may create pull requests."
        : "The branch is pushed; the next attempt retries.";
    throw new RunnerError(
      Reasons.PullRequestFailed,
      `Could not open the pull request ${input.head} → ${input.base}: ${describe(err)}. ${hint}`,
      { cause: err },
    );
  }
}
