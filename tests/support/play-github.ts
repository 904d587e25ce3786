/**
 * What the Play's agents (and humans) do on GitHub, simulated on the GitHub test server's state:
 * open the task PR, push, label, review, comment, fail a check, merge. Each helper also returns
 * the webhook delivery GitHub would send for it (a real @octokit/webhooks-examples payload with
 * the repository, PR and sender replaced), so a test can send it, or not.
 */
import { createHash } from "node:crypto";
import type { CheckRunRecord, CommentRecord, GitHubServer, PullRecord, ReviewCommentRecord, ReviewRecord } from "./github-server.js";
import { examplePayload } from "./webhook-fixtures.js";

export interface SimDelivery {
  event: string;
  payload: Record<string, unknown>;
}

export class GitHubSim {
  private shaCounter = 0;

  constructor(
    readonly server: GitHubServer,
    readonly owner: string,
    readonly repo: string,
  ) {}

  sha(): string {
    return createHash("sha1").update(`${this.owner}/${this.repo}/${++this.shaCounter}`).digest("hex");
  }

  private repository() {
    return {
      id: 1,
      name: this.repo,
      full_name: `${this.owner}/${this.repo}`,
      owner: { login: this.owner, id: 1, type: "Organization" },
      private: true,
      html_url: `https://github.com/${this.owner}/${this.repo}`,
      clone_url: `https://github.com/${this.owner}/${this.repo}.git`,
      default_branch: "main",
    };
  }

  private user(login: string) {
    return { login, id: 1, type: login.endsWith("[bot]") ? "Bot" : "User" };
  }

  private pullPayload(p: PullRecord) {
    return {
      number: p.number,
      state: p.state,
      title: p.title,
      html_url: p.html_url,
      merged: p.merged ?? false,
      user: this.user(p.createdBy),
      labels: p.labels.map((name, i) => ({ id: i + 1, name })),
      head: { ref: p.head, sha: p.headSha, repo: this.repository() },
      base: { ref: p.base, sha: "0".repeat(40), repo: this.repository() },
    };
  }

  private delivery(event: string, action: string | undefined, fields: Record<string, unknown>): SimDelivery {
    const base = examplePayload(event, action);
    return { event, payload: { ...base, ...(action ? { action } : {}), repository: this.repository(), ...fields } };
  }

  pull(number: number): PullRecord {
    const p = this.server.pullsFor(this.owner, this.repo).find((x) => x.number === number);
    if (!p) throw new Error(`no PR #${number}`);
    return p;
  }

  /** The implementation agent opens the task PR (label task-N) with one commit. */
  openTaskPull(
    taskId: number,
    author: string,
    branch = `feature/task-${taskId}-implementation`,
  ): { pull: PullRecord; delivery: SimDelivery } {
    const key = `${this.owner}/${this.repo}`.toLowerCase();
    const number = this.server.state.nextNumber.get(key) ?? 1;
    this.server.state.nextNumber.set(key, number + 1);
    const sha = this.sha();
    const pull: PullRecord = {
      owner: this.owner,
      repo: this.repo,
      number,
      title: `Task ${taskId}`,
      body: "",
      head: branch,
      base: "main",
      state: "open",
      draft: false,
      labels: [`task-${taskId}`],
      html_url: `https://github.com/${this.owner}/${this.repo}/pull/${number}`,
      createdBy: author,
      headSha: sha,
      commits: [{ sha, author, committer: author, message: `task ${taskId}` }],
    };
    this.server.state.pulls.push(pull);
    this.server.state.issueEvents.push({
      owner: this.owner,
      repo: this.repo,
      issueNumber: number,
      id: this.server.nextId(),
      event: "labeled",
      label: `task-${taskId}`,
      actor: author,
      createdAt: new Date().toISOString(),
    });
    return {
      pull,
      delivery: this.delivery("pull_request", "opened", { number, pull_request: this.pullPayload(pull), sender: this.user(author) }),
    };
  }

  /** `author` pushes one commit to the PR branch. */
  push(number: number, author: string): SimDelivery {
    return this.pushed(number, author, this.sha());
  }

  addLabel(number: number, label: string, actor: string): SimDelivery {
    const p = this.pull(number);
    if (!p.labels.includes(label)) {
      p.labels.push(label);
      this.server.state.issueEvents.push({
        owner: this.owner,
        repo: this.repo,
        issueNumber: number,
        id: this.server.nextId(),
        event: "labeled",
        label,
        actor,
        createdAt: new Date().toISOString(),
      });
    }
    return this.delivery("pull_request", "labeled", {
      number,
      label: { id: 9, name: label },
      pull_request: this.pullPayload(p),
      sender: this.user(actor),
    });
  }

  review(
    number: number,
    user: string,
    state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED",
    body = "",
    association = "NONE",
  ): { review: ReviewRecord; delivery: SimDelivery } {
    const p = this.pull(number);
    const review: ReviewRecord = {
      owner: this.owner,
      repo: this.repo,
      pullNumber: number,
      id: this.server.nextId(),
      user,
      state,
      body,
      commitId: p.headSha ?? "0".repeat(40),
      association,
      submittedAt: new Date().toISOString(),
    };
    this.server.state.reviews.push(review);
    return { review, delivery: this.reviewed(review) };
  }

  /** The delivery of a review already on the server (one an agent submitted through the API). */
  reviewed(review: ReviewRecord): SimDelivery {
    const payloadReview = {
      id: review.id,
      user: this.user(review.user),
      body: review.body,
      state: review.state.toLowerCase(),
      commit_id: review.commitId,
      author_association: review.association ?? "NONE",
      submitted_at: review.submittedAt,
    };
    return this.delivery("pull_request_review", "submitted", {
      review: payloadReview,
      pull_request: this.pullPayload(this.pull(review.pullNumber)),
      sender: this.user(review.user),
    });
  }

  /** The delivery of a PR already on the server (one an agent opened through the API). */
  opened(number: number): SimDelivery {
    const p = this.pull(number);
    return this.delivery("pull_request", "opened", { number, pull_request: this.pullPayload(p), sender: this.user(p.createdBy) });
  }

  /** The delivery of a push that really happened (git server): the PR's head moves to `after`. */
  pushed(number: number, author: string, after: string): SimDelivery {
    const p = this.pull(number);
    const before = p.headSha;
    p.commits = [...(p.commits ?? []), { sha: after, author, committer: author, message: `change by ${author}` }];
    p.headSha = after;
    return this.delivery("push", undefined, {
      ref: `refs/heads/${p.head}`,
      before,
      after,
      pusher: { name: author },
      sender: this.user(author),
      commits: [],
      head_commit: null,
    });
  }

  comment(number: number, user: string, body: string, association = "OWNER"): { comment: CommentRecord; delivery: SimDelivery } {
    const p = this.pull(number);
    const comment: CommentRecord = {
      owner: this.owner,
      repo: this.repo,
      issueNumber: number,
      id: this.server.nextId(),
      body,
      user,
      association,
    };
    this.server.state.comments.push(comment);
    const issue = {
      number,
      title: p.title,
      state: p.state,
      labels: p.labels.map((name, i) => ({ id: i + 1, name })),
      user: this.user(p.createdBy),
      pull_request: { url: "" },
    };
    return {
      comment,
      delivery: this.delivery("issue_comment", "created", {
        issue,
        comment: { id: comment.id, body, user: this.user(user), author_association: association },
        sender: this.user(user),
      }),
    };
  }

  reviewComment(
    number: number,
    user: string,
    body: string,
    path = "src/main.rs",
    line = 1,
    association = "MEMBER",
  ): { comment: ReviewCommentRecord; delivery: SimDelivery } {
    const p = this.pull(number);
    const comment: ReviewCommentRecord = {
      owner: this.owner,
      repo: this.repo,
      pullNumber: number,
      id: this.server.nextId(),
      reviewId: null,
      user,
      body,
      path,
      line,
      commitId: p.headSha ?? "",
      association,
    };
    this.server.state.reviewComments.push(comment);
    return {
      comment,
      delivery: this.delivery("pull_request_review_comment", "created", {
        comment: { id: comment.id, body, path, line, user: this.user(user), author_association: association },
        pull_request: this.pullPayload(p),
        sender: this.user(user),
      }),
    };
  }

  /** A CI check on the PR head completes with `conclusion`. */
  checkRun(number: number, name: string, conclusion: string, app = "ci"): { run: CheckRunRecord; delivery: SimDelivery } {
    const p = this.pull(number);
    const run: CheckRunRecord = {
      owner: this.owner,
      repo: this.repo,
      id: this.server.nextId(),
      name,
      headSha: p.headSha ?? "",
      status: "completed",
      conclusion,
      externalId: null,
      app,
      detailsUrl: null,
      output: { title: `${name} ${conclusion}` },
      actions: [],
      startedAt: new Date().toISOString(),
      completedAt: new Date().toISOString(),
    };
    this.server.state.checkRuns.push(run);
    const payloadRun = {
      id: run.id,
      name,
      head_sha: run.headSha,
      status: "completed",
      conclusion,
      external_id: "",
      app: { slug: app },
      pull_requests: [{ number, head: { ref: p.head, sha: p.headSha }, base: { ref: p.base, sha: "0".repeat(40) } }],
    };
    return { run, delivery: this.delivery("check_run", "completed", { check_run: payloadRun, sender: this.user(app) }) };
  }

  /** A maintainer clicks "Re-run stage" on one of the Play's check runs. */
  requestAction(checkRunId: number, identifier: string, user = "maintainer"): SimDelivery {
    const run = this.server.state.checkRuns.find((c) => c.id === checkRunId);
    if (!run) throw new Error(`no check run ${checkRunId}`);
    return this.delivery("check_run", "requested_action", {
      check_run: {
        id: run.id,
        name: run.name,
        head_sha: run.headSha,
        status: run.status,
        conclusion: run.conclusion,
        external_id: run.externalId,
        app: { slug: run.app },
        pull_requests: [],
      },
      requested_action: { identifier },
      sender: this.user(user),
    });
  }

  merge(number: number, user = "maintainer"): SimDelivery {
    const p = this.pull(number);
    p.state = "closed";
    p.merged = true;
    p.mergedAt = new Date().toISOString();
    return this.delivery("pull_request", "closed", { number, pull_request: this.pullPayload(p), sender: this.user(user) });
  }
}
