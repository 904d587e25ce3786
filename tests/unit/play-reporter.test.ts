/**
 * The reporter's exactly-once bookkeeping against an in-memory GitHub: a state is written once,
 * a crash between the GitHub write and the status write (the result thrown away) is repaired by
 * reading GitHub, completed check runs are final, and failures are collected, not thrown.
 */
import { describe, expect, it } from "vitest";
import type { PlayReported } from "../../src/api/index.js";
import { createLogger } from "../../src/observability/logger.js";
import type { CheckState, StageRunView, TaskView } from "../../src/play/decide.js";
import type { CheckRunInfo, CommentInfo, RepoRef, TaskSnapshot } from "../../src/play/ports.js";
import { EMPTY_SNAPSHOT } from "../../src/play/snapshot.js";
import { reportTask, type ReporterGitHub } from "../../src/reporter/play-reporter.js";
import { buildCheckRun, buildProgressComment, type CheckRunContent } from "../../src/reporter/progress.js";

const repo: RepoRef = { owner: "acme", repo: "api" };
const target = { namespace: "ns", play: "demo", publicUrl: "https://orch.example.com" };
const log = createLogger({ level: "silent" });

class FakeGitHub implements ReporterGitHub {
  checkRuns: CheckRunInfo[] = [];
  comments: (CommentInfo & { issue: number })[] = [];
  calls: string[] = [];
  failCreate = false;
  private id = 100;
  async listCheckRuns(_r: RepoRef, sha: string) {
    this.calls.push(`list ${sha.slice(0, 3)}`);
    return this.checkRuns.filter((c) => c.headSha === sha).map((c) => ({ ...c }));
  }
  async getCheckRun(_r: RepoRef, id: number) {
    this.calls.push(`get ${id}`);
    const c = this.checkRuns.find((x) => x.id === id);
    return c ? { ...c } : null;
  }
  async createCheckRun(_r: RepoRef, headSha: string, content: CheckRunContent) {
    if (this.failCreate) throw new Error("403 Resource not accessible by personal access token");
    this.calls.push(`create ${content.externalId.split(":").pop()} ${content.status}${content.conclusion ? `:${content.conclusion}` : ""}`);
    const c: CheckRunInfo = {
      id: ++this.id,
      name: content.name,
      headSha,
      status: content.status,
      conclusion: content.conclusion ?? null,
      externalId: content.externalId,
    };
    this.checkRuns.push(c);
    return { ...c };
  }
  async updateCheckRun(_r: RepoRef, id: number, content: CheckRunContent) {
    this.calls.push(`update ${id} ${content.status}${content.conclusion ? `:${content.conclusion}` : ""}`);
    const c = this.checkRuns.find((x) => x.id === id)!;
    c.status = content.status;
    c.conclusion = content.conclusion ?? null;
  }
  async createComment(_r: RepoRef, issue: number, body: string) {
    this.calls.push(`comment ${issue}`);
    const c = { id: ++this.id, login: "bot", body, issue };
    this.comments.push(c);
    return c;
  }
  async updateComment(_r: RepoRef, id: number, body: string) {
    this.calls.push(`edit ${id}`);
    this.comments.find((c) => c.id === id)!.body = body;
  }
  /** What the reconciler would read at the start of a pass. */
  snapshot(head: string): TaskSnapshot {
    return {
      ...EMPTY_SNAPSHOT,
      pull: VIEW.pull,
      checkRuns: this.checkRuns.filter((c) => c.headSha === head).map((c) => ({ ...c })),
      comments: this.comments.map(({ issue: _i, ...c }) => ({ ...c })),
    };
  }
}

const HEAD = "a".repeat(40);
const run = (name: string, stage: StageRunView["stage"], check: CheckState): StageRunView => ({
  name,
  stage,
  index: 0,
  agent: "rex",
  check,
  note: "n",
});
const VIEW: TaskView = {
  taskId: 7,
  taskIndex: 0,
  taskCount: 1,
  pull: {
    number: 3,
    url: "https://github.com/acme/api/pull/3",
    state: "open",
    merged: false,
    headSha: HEAD,
    headRef: "feature/task-7-implementation",
    baseRef: "main",
    labels: [],
    author: "rex",
    title: "t",
  },
  stage: "implementation",
  merged: false,
  agents: { implementation: "rex", quality: "cleo", testing: "tess" },
  agent: "rex",
  iteration: 0,
  maxIterations: 3,
  round: 0,
  qualityPassed: false,
  testingPassed: false,
  phase: "Running",
  reason: "AgentRunning",
  message: "m",
  runs: [run("impl-0", "implementation", "in_progress")],
  history: [],
};

async function pass(gh: FakeGitHub, view: TaskView, reported: PlayReported, head = HEAD) {
  return reportTask({ gh, repo, view, snapshot: gh.snapshot(head), reported, target, knownShas: [], log });
}

describe("reportTask", () => {
  it("creates a check run and the comment once, then writes nothing while nothing changes", async () => {
    const gh = new FakeGitHub();
    const first = await pass(gh, VIEW, {});
    expect(gh.calls).toEqual(["create impl-0 in_progress", "comment 3"]);
    expect(first.reported.checkRuns).toEqual([{ key: "impl-0", id: 101, headSha: HEAD, state: "in_progress" }]);
    gh.calls = [];
    const second = await pass(gh, VIEW, first.reported);
    expect(gh.calls).toEqual([]);
    expect(second.writes).toBe(0);
  });

  it("a crash after the create (status never written) does not create twice", async () => {
    const gh = new FakeGitHub();
    await pass(gh, VIEW, {}); // result lost
    gh.calls = [];
    const after = await pass(gh, VIEW, {});
    expect(gh.calls).toEqual([]);
    expect(after.reported).toMatchObject({
      checkRuns: [{ key: "impl-0", id: 101, state: "in_progress" }],
      comment: { taskId: 7, id: 102 },
    });
  });

  it("in progress → completed is one update; a crash after it does not update again; completed is final", async () => {
    const gh = new FakeGitHub();
    const r1 = (await pass(gh, VIEW, {})).reported;
    const done: TaskView = {
      ...VIEW,
      reason: "StageStarted",
      stage: "quality",
      runs: [run("impl-0", "implementation", "completed:success")],
    };
    gh.calls = [];
    await pass(gh, done, r1); // result lost
    expect(gh.calls).toEqual(["update 101 completed:success", "edit 102"]);
    gh.calls = [];
    const r2 = (await pass(gh, done, r1)).reported;
    expect(gh.calls).toEqual([]);
    expect(r2.checkRuns?.[0]?.state).toBe("completed:success");
    const flipped: TaskView = { ...done, runs: [run("impl-0", "implementation", "completed:failure")] };
    await pass(gh, flipped, r2);
    expect(gh.calls.filter((c) => c.startsWith("update"))).toEqual([]);
  });

  it("a check run on an older head is read by id, not looked up on the new head", async () => {
    const gh = new FakeGitHub();
    const r1 = (await pass(gh, VIEW, {})).reported;
    const NEW = "b".repeat(40);
    const moved: TaskView = {
      ...VIEW,
      pull: { ...VIEW.pull!, headSha: NEW },
      runs: [run("impl-0", "implementation", "completed:success")],
    };
    gh.calls = [];
    await pass(gh, moved, r1, NEW);
    expect(gh.calls.slice(0, 2)).toEqual(["get 101", "update 101 completed:success"]);
  });

  it("GitHub failures are collected and retried on the next pass, never thrown", async () => {
    const gh = new FakeGitHub();
    gh.failCreate = true;
    const r = await pass(gh, VIEW, {});
    expect(r.errors).toEqual(["check run for impl-0: 403 Resource not accessible by personal access token"]);
    expect(r.reported.checkRuns).toEqual([]);
    expect(r.reported.comment).toBeDefined();
  });

  it("builds check runs with a logs link, the re-run action and an external id the webhook maps back", () => {
    const c = buildCheckRun(VIEW, run("demo-111111-t7-quality-0", "quality", "completed:failure"), target);
    expect(c).toMatchObject({
      name: "Play: quality review",
      status: "completed",
      conclusion: "failure",
      externalId: "play:ns/demo:demo-111111-t7-quality-0",
      detailsUrl: "https://orch.example.com/api/v1/runs/CodeRun/demo-111111-t7-quality-0/logs",
      title: "Quality review by rex: failed",
      actions: [{ label: "Re-run stage", description: "Run this Play stage again", identifier: "rerun" }],
    });
    expect(c.actions[0]!.label.length).toBeLessThanOrEqual(20);
    expect(c.actions[0]!.description.length).toBeLessThanOrEqual(40);
  });

  it("the progress comment depends on the stage, not on how a run is doing inside it", () => {
    const a = buildProgressComment({ ...VIEW, reason: "StageStarted", message: "Started implementation (x)" }, target);
    const b = buildProgressComment({ ...VIEW, reason: "AgentRunning", message: "rex is implementing (x)" }, target);
    expect(a).toBe(b);
    expect(a.split("\n")[0]).toBe("<!-- orchestrator-play:ns/demo:task-7 -->");
    expect(a).toContain("| Implementation | rex | 🔄 running |");
    const stopped = buildProgressComment(
      { ...VIEW, stage: "remediation", phase: "Failed", reason: "MaxRemediationIterations", message: "Task 7 reached 3" },
      target,
    );
    expect(stopped).toContain("| Implementation | rex | ❌ stopped |");
    expect(stopped).toContain("**Failed:** Task 7 reached 3");
  });
});
