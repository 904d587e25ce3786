/**
 * The controller's GitHub adapter (@octokit/rest): the Play reconciler's reads and the
 * reporter's writes, one REST call per method (lists follow pagination). Base URL from config
 * github.apiUrl (api.github.com, GHES, or a test server).
 *
 * Authentication: a GitHub App (GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY, installation from
 * GITHUB_APP_INSTALLATION_ID or looked up per repository) or a token (GITHUB_TOKEN). On
 * github.com only an App may create check runs; with a token the reporter's check-run writes
 * fail (403) and are logged, while the progress comment and the Play itself work.
 */
import { createAppAuth } from "@octokit/auth-app";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import { Octokit as RestOctokit } from "@octokit/rest";
import Bottleneck from "bottleneck";
import type { Logger } from "../observability/logger.js";
import type {
  CheckRunInfo,
  CommentInfo,
  CommitInfo,
  LabelEventInfo,
  PlayGitHubReader,
  PullState,
  RepoRef,
  ReviewCommentInfo,
  ReviewInfo,
} from "../play/ports.js";
import type { ReporterGitHub } from "../reporter/play-reporter.js";
import type { RunReporterGitHub } from "../reporter/run-reporter.js";
import type { CheckRunContent } from "../reporter/progress.js";

export interface GitHubAuthOptions {
  token?: string;
  app?: { appId: string; privateKey: string; installationId?: number };
}

export interface PlayGitHubOptions {
  apiUrl: string;
  auth: GitHubAuthOptions;
  userAgent?: string;
  log?: Logger;
  /** Spacing of writes (POST/PATCH/...): GitHub asks integrations for 1 s; tests of the logic may use 0. */
  writeIntervalMs?: number;
}

/**
 * Octokit with GitHub's recommended client behaviour: 5xx answers and network errors are
 * retried with backoff (plugin-retry, 3 times), rate limits are waited out (plugin-throttling,
 * which also spaces writes by 1 s as GitHub asks of integrations).
 */
const Octokit = RestOctokit.plugin(retry, throttling);
type Octokit = InstanceType<typeof Octokit>;

/** Rate-limit waits longer than this fail the call instead; the reconciler retries the pass later. */
const MAX_RATE_LIMIT_WAIT_SECONDS = 60;

function clientBehaviour(log: Logger | undefined, writeIntervalMs: number) {
  const onLimit =
    (kind: string) =>
    (retryAfter: number, options: { method?: string; url?: string }, _octokit: unknown, retryCount: number): boolean => {
      const wait = retryCount < 2 && retryAfter <= MAX_RATE_LIMIT_WAIT_SECONDS;
      log?.warn(
        { request: `${options.method} ${options.url}`, retryAfterSeconds: retryAfter, retryCount, waiting: wait },
        `Hit GitHub's ${kind} rate limit`,
      );
      return wait;
    };
  // One write group per adapter (plugin-throttling's default group is shared by the whole process).
  const write = new Bottleneck.Group({ maxConcurrent: 1, minTime: writeIntervalMs });
  return { throttle: { onRateLimit: onLimit("primary"), onSecondaryRateLimit: onLimit("secondary"), write } };
}

export type PlayGitHub = PlayGitHubReader & ReporterGitHub & Pick<RunReporterGitHub, "addReaction">;

function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown })?.status;
  return typeof s === "number" ? s : undefined;
}

async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (statusOf(e) === 404) return null;
    throw e;
  }
}

type Json = Record<string, unknown>;
const login = (u: unknown): string => String((u as Json | null)?.login ?? "");
const loginOrNull = (u: unknown): string | null => ((u as Json | null)?.login ? String((u as Json).login) : null);

function toCheckRun(c: Json): CheckRunInfo {
  const output = (c.output ?? {}) as Json;
  return {
    id: Number(c.id),
    name: String(c.name ?? ""),
    headSha: String(c.head_sha ?? ""),
    status: String(c.status ?? ""),
    conclusion: c.conclusion === null || c.conclusion === undefined ? null : String(c.conclusion),
    externalId: c.external_id === null || c.external_id === undefined ? null : String(c.external_id),
    ...((c.app as Json | null)?.slug ? { app: String((c.app as Json).slug) } : {}),
    ...(c.html_url ? { url: String(c.html_url) } : {}),
    ...(output.title ? { title: String(output.title) } : {}),
  };
}

function toComment(c: Json): CommentInfo {
  return {
    id: Number(c.id),
    login: login(c.user),
    body: String(c.body ?? ""),
    ...(c.author_association ? { association: String(c.author_association) } : {}),
    ...(c.html_url ? { url: String(c.html_url) } : {}),
  };
}

function checkRunBody(content: CheckRunContent) {
  return {
    name: content.name,
    external_id: content.externalId,
    status: content.status,
    ...(content.conclusion ? { conclusion: content.conclusion as "success" } : {}),
    ...(content.startedAt ? { started_at: content.startedAt } : {}),
    ...(content.completedAt ? { completed_at: content.completedAt } : {}),
    ...(content.detailsUrl ? { details_url: content.detailsUrl } : {}),
    output: { title: content.title, summary: content.summary },
    actions: content.actions,
  };
}

type ClientOf = (repo: RepoRef) => Promise<Octokit>;
type OctokitBase = ConstructorParameters<typeof Octokit>[0];
const r = (repo: RepoRef) => ({ owner: repo.owner, repo: repo.repo });

/** The client for a repository: a token's or a fixed installation's, else the App's installation on that repository (looked up once). */
function installationClients(opts: PlayGitHubOptions, base: OctokitBase): ClientOf {
  const app = opts.auth.app;
  const shared = app
    ? app.installationId
      ? new Octokit({
          ...base,
          authStrategy: createAppAuth,
          auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
        })
      : undefined
    : new Octokit({ ...base, ...(opts.auth.token ? { auth: opts.auth.token } : {}) });
  // An App without a fixed installation: one client per installation, found per repository.
  const appClient =
    app && !app.installationId
      ? new Octokit({ ...base, authStrategy: createAppAuth, auth: { appId: app.appId, privateKey: app.privateKey } })
      : undefined;
  const perRepo = new Map<string, Promise<Octokit>>();
  return (repo: RepoRef): Promise<Octokit> => {
    if (shared) return Promise.resolve(shared);
    const key = `${repo.owner}/${repo.repo}`.toLowerCase();
    let c = perRepo.get(key);
    if (!c) {
      c = appClient!.rest.apps.getRepoInstallation({ owner: repo.owner, repo: repo.repo }).then(
        ({ data }) =>
          new Octokit({
            ...base,
            authStrategy: createAppAuth,
            auth: { appId: app!.appId, privateKey: app!.privateKey, installationId: data.id },
          }),
      );
      // A failed lookup (App not installed yet) is retried on the next call.
      c.catch(() => perRepo.delete(key));
      perRepo.set(key, c);
    }
    return c;
  };
}

type PullData = Awaited<ReturnType<Octokit["rest"]["pulls"]["get"]>>["data"];
type ReviewData = Awaited<ReturnType<Octokit["rest"]["pulls"]["listReviews"]>>["data"][number];

function toPull(p: PullData): PullState {
  return {
    number: p.number,
    url: p.html_url,
    state: p.state === "closed" ? "closed" : "open",
    merged: Boolean(p.merged),
    ...(p.merged_at ? { mergedAt: p.merged_at } : {}),
    headSha: p.head.sha,
    headRef: p.head.ref,
    baseRef: p.base.ref,
    labels: (p.labels ?? []).map((l) => (typeof l === "string" ? l : String(l.name ?? ""))),
    author: login(p.user),
    title: p.title,
  };
}

function toReview(v: ReviewData): ReviewInfo {
  return {
    id: v.id,
    login: login(v.user),
    state: v.state,
    commitId: v.commit_id ?? null,
    body: v.body ?? "",
    ...(v.author_association ? { association: v.author_association } : {}),
    ...(v.html_url ? { url: v.html_url } : {}),
  };
}

/** What a Play pass reads about a task's PR. */
function pullReads(
  client: ClientOf,
): Pick<
  PlayGitHub,
  "findPullNumbers" | "getPull" | "listPullCommits" | "listReviews" | "listReviewComments" | "listIssueComments" | "listLabelEvents"
> {
  return {
    async findPullNumbers(repo, label) {
      const o = await client(repo);
      const items = await o.paginate(o.rest.issues.listForRepo, { ...r(repo), labels: label, state: "all", per_page: 100 });
      return items.filter((i) => i.pull_request).map((i) => i.number);
    },
    async getPull(repo, number): Promise<PullState | null> {
      const o = await client(repo);
      const res = await orNull(o.rest.pulls.get({ ...r(repo), pull_number: number }));
      if (!res) return null;
      return toPull(res.data);
    },
    async listPullCommits(repo, number): Promise<CommitInfo[]> {
      const o = await client(repo);
      const items = await o.paginate(o.rest.pulls.listCommits, { ...r(repo), pull_number: number, per_page: 100 });
      return items.map((c) => ({ sha: c.sha, author: loginOrNull(c.author), committer: loginOrNull(c.committer) }));
    },
    async listReviews(repo, number): Promise<ReviewInfo[]> {
      const o = await client(repo);
      const items = await o.paginate(o.rest.pulls.listReviews, { ...r(repo), pull_number: number, per_page: 100 });
      return items.map(toReview);
    },
    async listReviewComments(repo, number): Promise<ReviewCommentInfo[]> {
      const o = await client(repo);
      const items = await o.paginate(o.rest.pulls.listReviewComments, { ...r(repo), pull_number: number, per_page: 100 });
      return items.map((c) => ({ ...toComment(c as unknown as Json), ...(c.path ? { path: c.path } : {}), line: c.line ?? null }));
    },
    async listIssueComments(repo, number) {
      const o = await client(repo);
      const items = await o.paginate(o.rest.issues.listComments, { ...r(repo), issue_number: number, per_page: 100 });
      return items.map((c) => toComment(c as unknown as Json));
    },
    async listLabelEvents(repo, number): Promise<LabelEventInfo[]> {
      const o = await client(repo);
      const items = (await o.paginate(o.rest.issues.listEvents, { ...r(repo), issue_number: number, per_page: 100 })) as unknown as Json[];
      return items
        .filter((e) => e.event === "labeled" || e.event === "unlabeled")
        .map((e) => ({
          id: Number(e.id),
          event: e.event as "labeled",
          label: String((e.label as Json | undefined)?.name ?? ""),
          actor: login(e.actor),
        }));
    },
  };
}

/** Check runs, comments, labels and reactions: what the reporters write. */
function reportWrites(client: ClientOf): Omit<PlayGitHub, keyof ReturnType<typeof pullReads>> {
  return {
    async listCheckRuns(repo, sha) {
      const o = await client(repo);
      const items = await o.paginate(o.rest.checks.listForRef, { ...r(repo), ref: sha, filter: "all", per_page: 100 });
      return items.map((c) => toCheckRun(c as unknown as Json));
    },
    async removeLabel(repo, number, label) {
      const o = await client(repo);
      await orNull(o.rest.issues.removeLabel({ ...r(repo), issue_number: number, name: label }));
    },
    async getCheckRun(repo, id) {
      const o = await client(repo);
      const res = await orNull(o.rest.checks.get({ ...r(repo), check_run_id: id }));
      return res ? toCheckRun(res.data as unknown as Json) : null;
    },
    async createCheckRun(repo, headSha, content) {
      const o = await client(repo);
      const res = await o.rest.checks.create({ ...r(repo), head_sha: headSha, ...checkRunBody(content) });
      return toCheckRun(res.data as unknown as Json);
    },
    async updateCheckRun(repo, id, content) {
      const o = await client(repo);
      await o.rest.checks.update({ ...r(repo), check_run_id: id, ...checkRunBody(content) });
    },
    async createComment(repo, issueNumber, body) {
      const o = await client(repo);
      const res = await o.rest.issues.createComment({ ...r(repo), issue_number: issueNumber, body });
      return toComment(res.data as unknown as Json);
    },
    async updateComment(repo, id, body) {
      const o = await client(repo);
      await o.rest.issues.updateComment({ ...r(repo), comment_id: id, body });
    },
    async addReaction(repo, target, content) {
      const o = await client(repo);
      if (target.commentId !== undefined)
        await o.rest.reactions.createForIssueComment({ ...r(repo), comment_id: target.commentId, content });
      else await o.rest.reactions.createForIssue({ ...r(repo), issue_number: target.issueNumber, content });
    },
  };
}

export function createPlayGitHub(opts: PlayGitHubOptions): PlayGitHub {
  const base = {
    baseUrl: opts.apiUrl.replace(/\/+$/, ""),
    userAgent: opts.userAgent ?? "orchestrator-play",
    ...clientBehaviour(opts.log, opts.writeIntervalMs ?? 1000),
  };
  const client = installationClients(opts, base);
  return { ...pullReads(client), ...reportWrites(client) };
}
