/** The run reconciler's decisions as tables: observed world → next status, Events, action. */
import { describe, expect, it } from "vitest";
import type { CodeRun, RunStatus } from "../../src/api/index.js";
import { completeDecision, decideRun, decideStarted, type RunWorld } from "../../src/controller/decide.js";
import type { JobObservation } from "../../src/controller/status.js";

const NOW = Date.parse("2026-01-01T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

function world(status: RunStatus | undefined, over: Partial<RunWorld> = {}, spec: Partial<CodeRun["spec"]> = {}): RunWorld {
  const run: CodeRun = {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name: "r", namespace: "ns", uid: "0123456789ab", generation: 2 },
    spec: {
      taskId: 7,
      service: "api",
      repositoryUrl: "https://github.com/a/b.git",
      docsRepositoryUrl: "https://github.com/a/b.git",
      model: "m",
      ...spec,
    },
    ...(status ? { status } : {}),
  };
  return { run, attempts: status?.attempts ?? 0, now: NOW, maxRetries: 2, backoff: { baseSeconds: 30, maxSeconds: 600 }, ...over };
}
const job = (obs: JobObservation) => ({ name: "code-r-01234567-t7-v1-a1", obs });

describe("decideRun", () => {
  it.each<[string, RunWorld, Record<string, unknown>]>([
    ["a new run starts attempt 1", world(undefined), { start: 1, stopJobs: false, events: [] }],
    [
      "a finished run stays finished (nothing to start)",
      world({ phase: "Succeeded", attempts: 1 }),
      { stopJobs: false, next: { phase: "Succeeded" } },
    ],
    [
      "a cancelled run keeps stopping its Jobs",
      world({ phase: "Cancelled", attempts: 1 }),
      { stopJobs: true, next: { phase: "Cancelled" } },
    ],
    [
      "spec.cancel ends the run Cancelled",
      world({ phase: "Running", attempts: 1 }, {}, { cancel: true }),
      { stopJobs: true, next: { phase: "Cancelled", reason: "Cancelled" }, events: [expect.objectContaining({ reason: "Cancelled" })] },
    ],
    [
      "a Job without a running pod: Running, JobCreated",
      world({ phase: "Running", attempts: 1 }, { current: job({ state: "active" }) }),
      { next: { phase: "Running", reason: "JobCreated", jobName: "code-r-01234567-t7-v1-a1" }, events: [] },
    ],
    [
      "a running pod: AgentRunning and a Started Event",
      world({ phase: "Running", attempts: 1 }, { current: job({ state: "running", startedAt: iso(NOW - 5000) }) }),
      {
        next: { phase: "Running", reason: "AgentRunning", startTime: iso(NOW - 5000) },
        events: [expect.objectContaining({ reason: "Started", attempt: 1 })],
      },
    ],
    [
      "a completed Job: Succeeded with the PR and the Job's finish time",
      world(
        { phase: "Running", attempts: 1 },
        {
          current: job({
            state: "succeeded",
            finishedAt: iso(NOW - 1000),
            result: { outcome: "succeeded", pullRequestUrl: "https://github.com/a/b/pull/1" },
          }),
        },
      ),
      {
        next: { phase: "Succeeded", pullRequestUrl: "https://github.com/a/b/pull/1", completionTime: iso(NOW - 1000), workCompleted: true },
        events: [expect.objectContaining({ reason: "Succeeded" })],
      },
    ],
    [
      "a failed Job with retries left: Pending in backoff until failure + 30 s",
      world(
        { phase: "Running", attempts: 1 },
        { current: job({ state: "failed", reason: "PushFailed", message: "rejected", finishedAt: iso(NOW - 10_000) }) },
      ),
      {
        next: { phase: "Pending", reason: "PushFailed", nextRetryTime: iso(NOW + 20_000) },
        requeueAfterMs: 20_050,
        events: [expect.objectContaining({ reason: "AttemptFailed" })],
      },
    ],
    [
      "a failure no retry can fix (task documents missing): Failed at once, retries unused",
      world(
        { phase: "Running", attempts: 1 },
        { current: job({ state: "failed", reason: "TaskDocsMissing", message: "Task documents missing", finishedAt: iso(NOW) }) },
      ),
      {
        next: {
          phase: "Failed",
          reason: "TaskDocsMissing",
          message: expect.stringContaining("Failed after 1 attempt(s): TaskDocsMissing"),
        },
        events: [expect.objectContaining({ reason: "Failed" })],
      },
    ],
    [
      "a failed Job whose backoff is over: start attempt 2",
      world({ phase: "Running", attempts: 1 }, { current: job({ state: "failed", reason: "PushFailed", finishedAt: iso(NOW - 60_000) }) }),
      { start: 2, next: { phase: "Running" } },
    ],
    [
      "a failed last attempt: Failed with the reason",
      world(
        { phase: "Running", attempts: 3 },
        { current: job({ state: "failed", reason: "AgentFailed", message: "boom", finishedAt: iso(NOW) }) },
      ),
      {
        next: { phase: "Failed", reason: "AgentFailed", message: "Failed after 3 attempt(s): AgentFailed: boom" },
        events: [expect.objectContaining({ reason: "Failed", type: "Warning" })],
      },
    ],
    [
      "the Job vanished before it finished: JobDeleted counts as a failed attempt",
      world({ phase: "Running", attempts: 1 }),
      { next: { phase: "Pending", reason: "JobDeleted" }, requeueAfterMs: 30_050 },
    ],
  ])("%s", (_name, w, expected) => {
    expect(decideRun(w)).toMatchObject(expected);
  });
});

describe("decideStarted", () => {
  const w = world(undefined);
  const d = decideRun(w);
  it.each<[string, Parameters<typeof decideStarted>[2], Record<string, unknown>]>([
    [
      "a slot is busy: Pending, WaitingForSlot, recheck in 30 s",
      { waiting: "Waiting for a slot" },
      { next: { phase: "Pending", reason: "WaitingForSlot", message: "Waiting for a slot" }, requeueAfterMs: 30_000 },
    ],
    [
      "over the requester's quota: Pending, WaitingForQuota, recheck in 30 s",
      { waiting: "Waiting for the quota", reason: "WaitingForQuota" },
      { next: { phase: "Pending", reason: "WaitingForQuota", message: "Waiting for the quota" }, requeueAfterMs: 30_000 },
    ],
    [
      "the Job was created: Running, attempt 1",
      { jobName: "code-r-a1" },
      {
        next: {
          phase: "Running",
          reason: "JobCreated",
          attempts: 1,
          jobName: "code-r-a1",
          contextVersion: 1,
          configmapName: expect.stringMatching(/-files$/),
        },
      },
    ],
    [
      "a missing Secret: Failed with a ConfigError condition",
      { problem: { reason: "SecretMissing", message: "Secret ns/x does not exist." } },
      {
        next: {
          phase: "Failed",
          reason: "SecretMissing",
          conditions: expect.arrayContaining([expect.objectContaining({ type: "ConfigError", reason: "SecretMissing" })]),
        },
        events: [expect.objectContaining({ reason: "SecretMissing", attempt: 1 })],
      },
    ],
  ])("%s", (_name, outcome, expected) => {
    expect(decideStarted(w, d, outcome)).toMatchObject(expected);
  });
});

describe("completeDecision", () => {
  it("adds the Event of a newly recorded Job (Retrying from attempt 2), retryCount and lastUpdate", () => {
    const w = world({ phase: "Pending", attempts: 1, jobName: "old" }, { attempts: 1 });
    const started = decideStarted(w, { next: w.run.status!, events: [], stopJobs: false, start: 2 }, { jobName: "new" });
    const done = completeDecision(w, started);
    expect(done.events[0]).toMatchObject({ reason: "Retrying", attempt: 2 });
    expect(done.next).toMatchObject({ retryCount: 1, lastUpdate: iso(NOW) });
  });
});

describe("GitHub action Events", () => {
  const actions = [
    {
      tool: "submit_pull_request_review",
      at: "2026-01-01T11:00:00.000Z",
      pullRequest: 3,
      detail: "Submitted a APPROVE review on pull request #3.",
      url: "https://github.com/a/b/pull/3#r1",
    },
    {
      tool: "remove_pull_request_label",
      at: "2026-01-01T11:00:01.000Z",
      detail: "Refused: pull request #9 is not this run's pull request (#3 in a/b).",
      refused: true,
    },
    { tool: "future_tool", at: "2026-01-01T11:00:02.000Z", detail: "Did something." },
  ];
  const finished = (state: "succeeded" | "failed", resultFrom: "channel" | "agent") =>
    world(
      { phase: "Running", attempts: 1 },
      {
        attempts: 1,
        maxRetries: 0,
        current: job({ state, resultFrom, result: { outcome: state === "failed" ? "failed" : "succeeded", githubActions: actions } }),
      },
    );

  it.each(["succeeded", "failed"] as const)("a %s attempt: one Event per action in the channel's record, refused ones Warning", (state) => {
    const events = decideRun(finished(state, "channel")).events.filter((e) => e.reason.startsWith("GitHub"));
    expect(events).toEqual([
      {
        reason: "GitHubReviewSubmitted",
        type: "Normal",
        attempt: 1,
        key: "0/2026-01-01T11:00:00.000Z",
        message:
          "Submitted a APPROVE review on pull request #3. https://github.com/a/b/pull/3#r1 (submit_pull_request_review at 2026-01-01T11:00:00.000Z)",
      },
      {
        reason: "GitHubLabelRefused",
        type: "Warning",
        attempt: 1,
        key: "1/2026-01-01T11:00:01.000Z",
        message:
          "Refused remove_pull_request_label at 2026-01-01T11:00:01.000Z: Refused: pull request #9 is not this run's pull request (#3 in a/b).",
      },
      {
        reason: "GitHubAction",
        type: "Normal",
        attempt: 1,
        key: "2/2026-01-01T11:00:02.000Z",
        message: "Did something. (https://github.com/a/b.git) (future_tool at 2026-01-01T11:00:02.000Z)",
      },
    ]);
  });

  it("none from a result the agent container wrote (it could name actions that never happened)", () => {
    expect(decideRun(finished("succeeded", "agent")).events.map((e) => e.reason)).toEqual(["Succeeded"]);
  });
});
