/** The Play decision (state → next status and actions), table-driven over GitHub states. */
import { describe, expect, it } from "vitest";
import type { CodeRun, Phase, Play, PlaySpec, PlayStatus } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import { decidePlay, needsGitHub, type Decision } from "../../src/play/decide.js";
import { progressMarker, stageRunName, type RunStage } from "../../src/play/names.js";
import type { TaskSnapshot } from "../../src/play/ports.js";
import { buildStageRun } from "../../src/play/runs.js";
import { isReservedEnvName } from "../../src/api/validation.js";
import { agentLogin, compilePlaySettings, resolvePlayAgents } from "../../src/play/settings.js";
import { EMPTY_SNAPSHOT } from "../../src/play/snapshot.js";

const settings = compilePlaySettings(
  parseConfig(
    `
agents:
  Rex: {githubApp: 5DLabs-Rex, model: claude-rex}
  cleo: {githubApp: 5DLabs-Cleo}
  tess: {githubUser: tess-bot}
play: {maxRemediationIterations: 2}
`,
    {},
  ),
);
const REX = "5dlabs-rex[bot]";
const CLEO = "5dlabs-cleo[bot]";
const TESS = "tess-bot";
const NOW = "2025-06-01T12:00:00.000Z";
const SHA1 = "a".repeat(40);
const SHA2 = "b".repeat(40);

function play(status: PlayStatus = {}, spec: Partial<PlaySpec> = {}, meta: Partial<Play["metadata"]> = {}): Play {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "Play",
    metadata: { name: "demo", namespace: "ns", uid: "11111111-2222-3333-4444-555555555555", generation: 1, ...meta },
    spec: {
      service: "api",
      repositoryUrl: "https://github.com/acme/api",
      docsRepositoryUrl: "https://github.com/acme/docs",
      tasks: [7, 8],
      ...spec,
    },
    status,
  };
}

/** Status of a Play that is on task 7 with PR #3 seen (watermarks at 0). */
function onTask(extra: PlayStatus = {}): PlayStatus {
  return {
    phase: "Running",
    currentTaskIndex: 0,
    currentTask: 7,
    iteration: 0,
    pullRequest: { number: 3, url: "u", headSha: SHA1 },
    task: { round: 0, qaBaseSha: SHA1, qaIteration: 0, seen: { comment: 0, review: 0, reviewComment: 0, checkRun: 0 } },
    ...extra,
  };
}

const P = play();
const agents = (() => {
  const r = resolvePlayAgents(P.spec, settings);
  if (!r.ok) throw new Error(r.message);
  return r.agents;
})();

function run(
  stage: RunStage,
  index: number,
  phase?: Phase,
  opts: { cancel?: boolean; outcome?: "no-changes"; taskId?: number; p?: Play } = {},
): CodeRun {
  const r = buildStageRun({
    play: opts.p ?? P,
    taskId: opts.taskId ?? 7,
    stage,
    index,
    agent: agents[stage === "remediation" ? "implementation" : stage],
    defaultModel: "m",
    readyForQaLabel: "ready-for-qa",
  });
  r.metadata.creationTimestamp = `2025-06-01T10:0${index}:00Z`;
  if (opts.cancel) r.spec.cancel = true;
  if (phase)
    r.status = {
      phase,
      ...(phase !== "Running" ? { completionTime: `2025-06-01T11:0${index}:00Z` } : {}),
      ...(opts.outcome ? { result: { outcome: opts.outcome } } : {}),
    };
  return r;
}

function snap(s: Partial<TaskSnapshot> & { labels?: string[]; head?: string; merged?: boolean; closed?: boolean } = {}): TaskSnapshot {
  const { labels, head, merged, closed, ...rest } = s;
  return {
    ...EMPTY_SNAPSHOT,
    pull: {
      number: 3,
      url: "https://github.com/acme/api/pull/3",
      state: merged || closed ? "closed" : "open",
      merged: Boolean(merged),
      headSha: head ?? SHA1,
      headRef: "feature/task-7-implementation",
      baseRef: "main",
      labels: ["task-7", ...(labels ?? [])],
      author: REX,
      title: "Task 7",
    },
    commits: [{ sha: SHA1, author: REX, committer: REX }],
    ...rest,
  };
}

const labelled = (actor: string) => ({
  labels: ["ready-for-qa"],
  labelEvents: [{ id: 50, event: "labeled" as const, label: "ready-for-qa", actor }],
});
const approved = (commitId = SHA1, id = 60) => ({ id, login: TESS, state: "APPROVED", commitId, body: "" });

function decide(p: Play, runs: CodeRun[], snapshot: TaskSnapshot | null): Decision {
  return decidePlay({ play: p, settings, runs, snapshot, now: NOW });
}

const created = (d: Decision) =>
  d.actions.filter((a) => a.type === "createRun").map((a) => (a.type === "createRun" ? a.run.metadata.name : ""));
const cancelled = (d: Decision) => d.actions.filter((a) => a.type === "cancelRun").map((a) => (a.type === "cancelRun" ? a.name : ""));
const name = (stage: RunStage, n: number, taskId = 7) => stageRunName(P, taskId, stage, n);

describe("decidePlay", () => {
  it.each<
    [
      string,
      Play,
      CodeRun[],
      TaskSnapshot,
      { stage?: string; reason: string; phase?: string; create?: string[]; cancel?: string[]; removeLabel?: boolean },
    ]
  >([
    [
      "a new Play starts implementation",
      play(),
      [],
      EMPTY_SNAPSHOT,
      { stage: "implementation", reason: "StageStarted", create: [name("implementation", 0)] },
    ],
    [
      "the implementation agent is working",
      play(onTask({ pullRequest: undefined })),
      [run("implementation", 0, "Running")],
      EMPTY_SNAPSHOT,
      { stage: "implementation", reason: "AgentRunning" },
    ],
    [
      "the run succeeded, no PR yet",
      play(onTask({ pullRequest: undefined })),
      [run("implementation", 0, "Succeeded")],
      EMPTY_SNAPSHOT,
      { stage: "implementation", reason: "WaitingForPullRequest" },
    ],
    [
      "the run failed and no PR exists",
      play(onTask({ pullRequest: undefined })),
      [run("implementation", 0, "Failed")],
      EMPTY_SNAPSHOT,
      { reason: "ImplementationFailed", phase: "Failed" },
    ],
    [
      "the run made no changes",
      play(onTask({ pullRequest: undefined })),
      [run("implementation", 0, "Succeeded", { outcome: "no-changes" })],
      EMPTY_SNAPSHOT,
      { reason: "NoChanges", phase: "Failed" },
    ],
    [
      "the PR is open while the agent still runs",
      play(onTask()),
      [run("implementation", 0, "Running")],
      snap(),
      { stage: "implementation", reason: "AgentRunning" },
    ],
    [
      "implementation done, PR open: quality starts",
      play(onTask()),
      [run("implementation", 0, "Succeeded")],
      snap(),
      { stage: "quality", reason: "StageStarted", create: [name("quality", 0)] },
    ],
    [
      "the quality agent is reviewing",
      play(onTask()),
      [run("implementation", 0, "Succeeded"), run("quality", 0, "Running")],
      snap(),
      { stage: "quality", reason: "AgentRunning" },
    ],
    [
      "ready-for-qa by the quality agent while its run ends",
      play(onTask()),
      [run("quality", 0, "Running")],
      snap(labelled(CLEO)),
      { stage: "testing", reason: "WaitingForRun" },
    ],
    [
      "ready-for-qa by the quality agent: testing starts",
      play(onTask()),
      [run("quality", 0, "Succeeded")],
      snap(labelled(CLEO)),
      { stage: "testing", reason: "StageStarted", create: [name("testing", 0)] },
    ],
    [
      "ready-for-qa by someone else does not count",
      play(onTask()),
      [run("quality", 0, "Succeeded")],
      snap(labelled("random-user")),
      { stage: "quality", reason: "StageNotPassed" },
    ],
    [
      "the testing agent approved the head",
      play(onTask()),
      [run("quality", 0, "Succeeded"), run("testing", 0, "Succeeded")],
      snap({ ...labelled(CLEO), reviews: [approved()] }),
      { stage: "merge", reason: "WaitingForMerge" },
    ],
    [
      "an approval of an older commit does not count",
      play(onTask({ task: { round: 0, qaBaseSha: SHA2, qaIteration: 0 } })),
      [run("quality", 0, "Succeeded"), run("testing", 0, "Succeeded")],
      snap({
        ...labelled(CLEO),
        head: SHA2,
        reviews: [approved(SHA1)],
        commits: [
          { sha: SHA1, author: REX, committer: REX },
          { sha: SHA2, author: CLEO, committer: CLEO },
        ],
      }),
      { stage: "testing", reason: "StageNotPassed" },
    ],
    [
      "an approval followed by a changes-requested review is feedback",
      play(onTask()),
      [run("testing", 0, "Succeeded")],
      snap({ ...labelled(CLEO), reviews: [approved(), { id: 61, login: TESS, state: "CHANGES_REQUESTED", commitId: SHA1, body: "no" }] }),
      { stage: "remediation", reason: "RemediationStarted", create: [name("remediation", 1)] },
    ],
    [
      "the testing agent's own changes-requested review starts remediation; its run ends on its own (not cancelled)",
      play(onTask()),
      [run("quality", 0, "Succeeded"), run("testing", 0, "Running")],
      snap({
        ...labelled(CLEO),
        reviews: [{ id: 61, login: TESS, state: "CHANGES_REQUESTED", commitId: SHA1, body: "Needs changes: a test." }],
      }),
      { stage: "remediation", reason: "RemediationStarted", create: [name("remediation", 1)] },
    ],
    [
      "someone else's feedback during testing cancels the testing run",
      play(onTask()),
      [run("quality", 0, "Succeeded"), run("testing", 0, "Running")],
      snap({
        ...labelled(CLEO),
        reviews: [
          { id: 61, login: "maintainer", state: "CHANGES_REQUESTED", commitId: SHA1, body: "Needs changes.", association: "OWNER" },
        ],
      }),
      { stage: "remediation", reason: "RemediationStarted", create: [name("remediation", 1)], cancel: [name("testing", 0)] },
    ],
    [
      "a push by the implementation agent during QA restarts it",
      play(onTask()),
      [run("implementation", 0, "Succeeded"), run("quality", 0, "Running")],
      snap({
        ...labelled(CLEO),
        head: SHA2,
        commits: [
          { sha: SHA1, author: REX, committer: REX },
          { sha: SHA2, author: REX, committer: REX },
        ],
      }),
      { stage: "quality", reason: "WaitingForRun", cancel: [name("quality", 0)], removeLabel: true },
    ],
    [
      "a push by the quality agent does not",
      play(onTask()),
      [run("quality", 0, "Running")],
      snap({
        head: SHA2,
        commits: [
          { sha: SHA1, author: REX, committer: REX },
          { sha: SHA2, author: CLEO, committer: CLEO },
        ],
      }),
      { stage: "quality", reason: "AgentRunning" },
    ],
    [
      "a finished remediation starts a new QA round",
      play(onTask({ iteration: 1 })),
      [run("quality", 0, "Cancelled"), run("remediation", 1, "Succeeded")],
      snap(labelled(CLEO)),
      { stage: "quality", reason: "StageStarted", create: [name("quality", 1)], removeLabel: true },
    ],
    [
      "the PR was closed without merging",
      play(onTask()),
      [run("quality", 0, "Running")],
      snap({ closed: true }),
      { reason: "PullRequestClosed", cancel: [name("quality", 0)] },
    ],
    [
      "spec.cancel stops everything",
      play(onTask(), { cancel: true }),
      [run("quality", 0, "Running"), run("testing", 0, "Running", { cancel: true })],
      snap(),
      { reason: "Cancelled", phase: "Cancelled", cancel: [name("quality", 0)] },
    ],
  ])("%s", (_what, p, runs, s, want) => {
    const d = decide(p, runs, s);
    if (want.stage) expect(d.status.stage).toBe(want.stage);
    expect(d.status.reason).toBe(want.reason);
    expect(d.status.phase).toBe(want.phase ?? "Running");
    expect(created(d)).toEqual(want.create ?? []);
    expect(cancelled(d)).toEqual(want.cancel ?? []);
    expect(d.actions.some((a) => a.type === "removeLabel")).toBe(want.removeLabel ?? false);
  });

  it("stage runs set no variable the CRD reserves (the runner sets TASK_ID itself from spec.taskId)", () => {
    const remediation = { prompt: "Address the review.", maxIterations: 2, feedbackTypes: ["review"], feedbackAuthor: TESS };
    const pull = snap().pull!;
    for (const stage of ["implementation", "quality", "testing", "remediation"] as const) {
      const r = buildStageRun({
        play: P,
        taskId: 7,
        stage,
        index: 1,
        agent: agents[stage === "remediation" ? "implementation" : stage],
        defaultModel: "m",
        readyForQaLabel: "ready-for-qa",
        pull,
        ...(stage === "remediation" ? { remediation } : {}),
      });
      expect(Object.keys(r.spec.env ?? {}).filter(isReservedEnvName), stage).toEqual([]);
      expect(r.spec.taskId).toBe(7);
      expect("cluster" in r.spec, stage).toBe(false);
    }
  });

  it("stage runs go to the Play's spec.cluster", () => {
    const p = { ...P, spec: { ...P.spec, cluster: "gpu-east" } };
    const r = buildStageRun({
      play: p,
      taskId: 7,
      stage: "quality",
      index: 0,
      agent: agents.quality,
      defaultModel: "m",
      readyForQaLabel: "ready-for-qa",
      pull: snap().pull!,
    });
    expect(r.spec.cluster).toBe("gpu-east");
  });

  it("is deterministic: the same inputs give the same decision", () => {
    const p = play(onTask());
    const runs = [run("quality", 0, "Running")];
    const s = snap({ comments: [{ id: 5, login: "maintainer", body: "/remediate please", association: "OWNER" }] });
    expect(decide(p, runs, s)).toEqual(decide(p, runs, s));
  });

  it("a merge completes the task, records it and moves to the next; the last one ends the Play", () => {
    const d = decide(play(onTask()), [run("testing", 0, "Succeeded")], snap({ merged: true }));
    expect(d.advanced).toBe(true);
    expect(d.status).toMatchObject({
      currentTaskIndex: 1,
      currentTask: 8,
      stage: "implementation",
      iteration: 0,
      reported: {},
      reason: "TaskMerged",
    });
    expect(d.status.pullRequest).toBeUndefined();
    expect(d.status.history?.at(-1)).toMatchObject({ taskId: 7, stage: "merge", outcome: "Merged", pullRequest: 3 });
    expect(d.view).toMatchObject({ taskId: 7, merged: true });
    const last = decide(play(onTask({ currentTaskIndex: 1, currentTask: 8 })), [], snap({ merged: true }));
    expect(last.status).toMatchObject({ phase: "Succeeded", stage: "complete", reason: "AllTasksMerged" });
    expect(last.advanced).toBe(false);
  });

  describe("remediation triggers", () => {
    const base = () => [run("implementation", 0, "Succeeded"), run("quality", 0, "Running")];
    it.each<[string, Partial<TaskSnapshot>, boolean]>([
      [
        "/remediate from a maintainer",
        { comments: [{ id: 5, login: "maintainer", body: "/remediate\nfix lint", association: "OWNER" }] },
        true,
      ],
      [
        "upstream wording (🔴 required changes)",
        { comments: [{ id: 5, login: "lead", body: "🔴 Required changes: tests fail", association: "MEMBER" }] },
        true,
      ],
      [
        "/remediate from someone without write access",
        { comments: [{ id: 5, login: "drive-by", body: "/remediate", association: "NONE" }] },
        false,
      ],
      [
        "/remediate from the implementation agent itself",
        { comments: [{ id: 5, login: REX, body: "/remediate", association: "NONE" }] },
        false,
      ],
      ["an ordinary comment", { comments: [{ id: 5, login: "maintainer", body: "Looks good so far", association: "OWNER" }] }, false],
      [
        "the Play's own progress comment",
        { comments: [{ id: 5, login: "maintainer", body: `${progressMarker("ns", "demo", 7)}\nchanges requested`, association: "OWNER" }] },
        false,
      ],
      ["a comment older than the watermark", { comments: [{ id: 5, login: "maintainer", body: "/remediate" }] }, false],
      [
        "changes requested by the testing agent (a bot without association)",
        { reviews: [{ id: 9, login: TESS, state: "CHANGES_REQUESTED", commitId: SHA1, body: "" }] },
        true,
      ],
      [
        "an inline review comment",
        { reviewComments: [{ id: 9, login: "maintainer", body: "rename", association: "COLLABORATOR", path: "a.rs", line: 3 }] },
        true,
      ],
      [
        "a failing CI check on the head",
        { checkRuns: [{ id: 9, name: "ci", headSha: SHA1, status: "completed", conclusion: "failure", externalId: null }] },
        true,
      ],
      [
        "a failing check on an older commit",
        { checkRuns: [{ id: 9, name: "ci", headSha: SHA2, status: "completed", conclusion: "failure", externalId: null }] },
        false,
      ],
      [
        "the Play's own failing check run",
        {
          checkRuns: [
            {
              id: 9,
              name: "Play: quality review",
              headSha: SHA1,
              status: "completed",
              conclusion: "failure",
              externalId: "play:ns/demo:x",
            },
          ],
        },
        false,
      ],
      [
        "a failure after a check still running",
        {
          checkRuns: [
            { id: 8, name: "slow", headSha: SHA1, status: "in_progress", conclusion: null, externalId: null },
            { id: 9, name: "ci", headSha: SHA1, status: "completed", conclusion: "failure", externalId: null },
          ],
        },
        false,
      ],
    ])("%s → %s", (what, s, triggers) => {
      const status = onTask();
      if (what.includes("older than the watermark")) status.task!.seen!.comment = 5;
      const d = decide(play(status), base(), snap(s));
      if (!triggers) {
        expect(created(d)).toEqual([]);
        return;
      }
      expect(created(d)).toEqual([name("remediation", 1)]);
      expect(cancelled(d)).toEqual([name("quality", 0)]);
      expect(d.status).toMatchObject({ stage: "remediation", iteration: 1, agent: "rex" });
      const r = (d.actions[d.actions.length - 1] as { run: CodeRun }).run;
      expect(r.spec).toMatchObject({
        continueSession: true,
        githubApp: "5DLabs-Rex",
        model: "claude-rex",
        env: { REMEDIATION_MODE: "true", ITERATION_COUNT: "1" },
      });
      expect(r.spec.promptModification).toContain("untrusted-github-content");
      // The watermarks moved past the feedback: the same state does not trigger again.
      const again = decide(play({ ...d.status }), [...base(), run("remediation", 1, "Running")], snap(s));
      expect(created(again)).toEqual([]);
    });

    it("stops the Play with a reason at the cap, cancelling QA", () => {
      const d = decide(
        play(onTask({ iteration: 2 })),
        [run("remediation", 2, "Succeeded"), run("quality", 2, "Running")],
        snap({ comments: [{ id: 5, login: "m", body: "/remediate", association: "OWNER" }] }),
      );
      expect(d.status).toMatchObject({ phase: "Failed", reason: "MaxRemediationIterations", iteration: 2 });
      expect(d.status.message).toContain("reached 2 remediation iteration(s)");
      expect(created(d)).toEqual([]);
      expect(cancelled(d)).toEqual([name("quality", 2)]);
      // Stopped means stopped, until the spec changes (e.g. a higher cap).
      const stopped = play({ ...d.status, observedGeneration: 1 });
      expect(decide(stopped, [], snap()).status.phase).toBe("Failed");
      const raised = play({ ...d.status, observedGeneration: 1 }, { maxRemediationIterations: 3 }, { generation: 2 });
      expect(needsGitHub(raised, [])).toBe(true);
      expect(
        created(
          decide(
            raised,
            [run("remediation", 2, "Succeeded")],
            snap({ comments: [{ id: 5, login: "m", body: "/remediate", association: "OWNER" }] }),
          ),
        ),
      ).toEqual([name("remediation", 3)]);
    });
  });

  describe("re-run requests (check run requested_action)", () => {
    const annotated = (value: string, status: PlayStatus) => play(status, {}, { annotations: { "orchestrator.platform/rerun": value } });
    it("testing: a new testing run; earlier approvals no longer count", () => {
      const d = decide(
        annotated("7/testing/d1", onTask()),
        [run("quality", 0, "Succeeded"), run("testing", 0, "Succeeded")],
        snap({ ...labelled(CLEO), reviews: [approved()] }),
      );
      expect(d.status.task).toMatchObject({ round: 1, rerun: "7/testing/d1", testingAfterReviewId: 60 });
      expect(created(d)).toEqual([name("testing", 1)]);
      // Handled once: the same annotation does nothing more.
      expect(
        decide(annotated("7/testing/d1", d.status), [run("testing", 1, "Running")], snap({ ...labelled(CLEO), reviews: [approved()] }))
          .status.task?.round,
      ).toBe(1);
    });
    it("quality: the label comes off and quality runs again", () => {
      const d = decide(annotated("7/quality/d2", onTask()), [run("quality", 0, "Succeeded")], snap(labelled(CLEO)));
      expect(d.actions).toContainEqual({ type: "removeLabel", pullNumber: 3, label: "ready-for-qa" });
      expect(created(d)).toEqual([name("quality", 1)]);
    });
    it("implementation: a remediation run without feedback", () => {
      const d = decide(
        annotated("7/implementation/d3", onTask()),
        [run("implementation", 0, "Succeeded"), run("quality", 0, "Succeeded")],
        snap(),
      );
      expect(created(d)).toEqual([name("remediation", 1)]);
      expect(d.status.task?.rerun).toBe("7/implementation/d3");
    });
    it("a request for another task is ignored", () => {
      expect(created(decide(annotated("9/testing/d4", onTask()), [run("quality", 0, "Running")], snap()))).toEqual([]);
    });
  });

  it("an unknown roster agent is a terminal error naming the known ones", () => {
    const d = decide(play({}, { agents: { quality: "nobody" } }), [], null);
    expect(d.status).toMatchObject({ phase: "Failed", reason: "AgentNotFound" });
    expect(d.status.message).toContain('quality agent "nobody" not in the agents roster (known: Rex, cleo, tess)');
  });

  it("roster names resolve case-insensitively; App agents act as <slug>[bot]", () => {
    const r = resolvePlayAgents({ ...P.spec, agents: { implementation: "REX", quality: "Cleo" } }, settings);
    expect(r.ok && r.agents.implementation).toMatchObject({ name: "REX", githubApp: "5DLabs-Rex", login: REX });
    expect(agentLogin({ githubUser: "Tess-Bot" })).toBe("tess-bot");
  });

  it("stage runs: deterministic names under 63 characters, owner reference, labels, annotation, identity", () => {
    const long = play({}, {}, { name: "a-very-long-play-name-that-goes-on-and-on-for-quite-a-while-indeed" });
    const r = buildStageRun({
      play: long,
      taskId: 123456,
      stage: "remediation",
      index: 12,
      agent: agents.implementation,
      defaultModel: "m",
      readyForQaLabel: "ready-for-qa",
      pull: snap().pull,
    });
    expect(r.metadata.name!.length).toBeLessThanOrEqual(63);
    expect(r.metadata.name).toBe(stageRunName(long, 123456, "remediation", 12));
    expect(r.metadata.name).toMatch(/-111111-t123456-remediation-12$/);
    expect(r.metadata.ownerReferences).toEqual([
      {
        apiVersion: "orchestrator.platform/v1",
        kind: "Play",
        name: long.metadata.name,
        uid: long.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(r.metadata.annotations).toEqual({ "orchestrator.platform/agent": "rex", "orchestrator.platform/play-stage": "remediation" });
    expect(r.metadata.labels).toMatchObject({
      "task-id": "123456",
      "orchestrator.platform/play-stage": "remediation",
      "orchestrator.platform/play-index": "12",
    });
    expect(r.spec).toMatchObject({
      githubApp: "5DLabs-Rex",
      continueSession: true,
      model: "claude-rex",
      env: { PR_NUMBER: "3", PLAY_STAGE: "remediation" },
    });
    const withModel = buildStageRun({
      play: play({}, { models: { quality: "claude-q" }, env: { A: "1" }, stageEnv: { quality: { A: "2", B: "3" } } }),
      taskId: 7,
      stage: "quality",
      index: 0,
      agent: agents.quality,
      defaultModel: "m",
      readyForQaLabel: "ready-for-qa",
    });
    expect(withModel.spec).toMatchObject({ model: "claude-q", continueSession: false, env: { A: "2", B: "3" } });
  });

  it("history lists finished stage runs (recomputed) and merged tasks (remembered)", () => {
    const d = decide(
      play(onTask({ history: [{ taskId: 6, stage: "merge", outcome: "Merged", time: "2025-06-01T09:00:00Z" }] })),
      [run("implementation", 0, "Succeeded"), run("quality", 0, "Running")],
      snap(),
    );
    expect(d.status.history?.map((h) => `${h.taskId}:${h.stage}:${h.outcome}`)).toEqual(["6:merge:Merged", "7:implementation:Succeeded"]);
  });
});
