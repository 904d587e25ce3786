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
  const toPullRequest = (p: { number: number; html_url: string; title: string; body: string | null }): PullRequest => ({
    number: p.number,
    htmlUrl: p.html_url,
    title: p.title,
    body: p.body ?? "",
  });

  return {
    async checkRepositoryAccess() {
      try {
        await withRetry("get repository", async () => (await client()).rest.repos.get({ owner, repo }), retry);
      } catch (err) {
        const status = statusOf(err);
        if (status === 401) {
          throw new RunnerError(
            Reasons.AuthFailed,
            `GitHub rejected the credentials (HTTP 401 Bad credentials) at ${options.baseUrl}. Check the run's token secret (github-token-{user}) or GitHub App secret and that it has not expired.`,
          );
        }
        if (status === 403) {
          throw new RunnerError(
            Reasons.AuthFailed,
            `GitHub denied access to ${owner}/${repo} (HTTP 403). Grant the run's GitHub user or App access to the repository.`,
          );
        }
        if (status === 404) {
          throw new RunnerError(
            Reasons.RepoUnreachable,
            `GitHub repository ${owner}/${repo} was not found at ${options.baseUrl}, or the run's credentials cannot see it. Check repositoryUrl and that the GitHub user or App has access.`,
          );
        }
        throw new RunnerError(
          Reasons.RepoUnreachable,
          `Could not reach the GitHub API at ${options.baseUrl} (${describe(err)}). Check githubApiUrl and the network.`,
          { cause: err },
        );
      }
    },

    async findOpenPullRequest(head, base) {
      const { data } = await withRetry(
        "list pull requests",
        async () => (await client()).rest.pulls.list({ owner, repo, state: "open", head: `${owner}:${head}`, base, per_page: 100 }),
        retry,
      );
      const match = data.find((p) => p.head.ref === head && p.base.ref === base);
      return match ? toPullRequest(match) : null;
    },

    async createPullRequest(input) {
      const { data } = await withRetry(
        "create pull request",
        async () =>
          (await client()).rest.pulls.create({ owner, repo, title: input.title, body: input.body, head: input.head, base: input.base }),
        retry,
      );
      return toPullRequest(data);
    },

    async updatePullRequest(number, text) {
      await withRetry(
        "update pull request",
        async () => (await client()).rest.pulls.update({ owner, repo, pull_number: number, title: text.title, body: text.body }),
        retry,
      );
    },

    async addLabels(issueNumber, labels) {
      if (labels.length === 0) return;
      await withRetry(
        "add labels",
        async () => (await client()).rest.issues.addLabels({ owner, repo, issue_number: issueNumber, labels }),
        retry,
      );
    },

    async removeLabel(issueNumber, name) {
      try {
        await withRetry(
          "remove label",
          async () => (await client()).rest.issues.removeLabel({ owner, repo, issue_number: issueNumber, name }),
          retry,
        );
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },

    async createComment(issueNumber, body) {
      const { data } = await withRetry(
        "create comment",
        async () => (await client()).rest.issues.createComment({ owner, repo, issue_number: issueNumber, body }),
        retry,
      );
      return data.html_url;
    },

    async submitReview(pullNumber, review) {
      const { data } = await withRetry(
        "submit review",
        async () =>
          (await client()).rest.pulls.createReview({ owner, repo, pull_number: pullNumber, event: review.event, body: review.body }),
        retry,
      );
      return data.html_url;
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
