/**
 * Plays on a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
 * kwok): the Play controller creates stage CodeRuns, the real CodeRun controller runs them as
 * Jobs whose pods kwok completes, and the tests play the agents' part on the GitHub test server
 * (every request the controller makes is checked against GitHub's OpenAPI description).
 */
import { execa } from "execa";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { CodeRun, Play } from "../../src/api/index.js";
import { stageRunName, type RunStage } from "../../src/play/names.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { waitFor } from "../support/controller-harness.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { GitHubSim } from "../support/play-github.js";
import {
  AGENT_USERS,
  CONTROLLER_LOGIN,
  CONTROLLER_TOKEN,
  createPlayAgentSecrets,
  newPlay,
  playConfigYaml,
  playsApi,
  startPlayStack,
  type PlayStack,
  type PlayStackOptions,
} from "../support/play-harness.js";

const CRDS = "infra/charts/orchestrator/crds/platform-crds.yaml";
const cluster = useControlPlane("full", { crdPaths: [CRDS] });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

const REX = AGENT_USERS.rex;
const CLEO = AGENT_USERS.cleo;
const TESS = AGENT_USERS.tess;

interface Env {
  ns: string;
  github: GitHubServer;
  sim: GitHubSim;
  stack: PlayStack;
  api: ReturnType<typeof playsApi>;
}

async function setup(playYaml = "play: {resyncSeconds: 600}", opts: PlayStackOptions = {}): Promise<Env> {
  const cp = cluster();
  const ns = await newNamespace("play");
  await createPlayAgentSecrets(cp.kubeConfig, ns);
  const github = await startGitHubServer({ users: { [CONTROLLER_TOKEN]: CONTROLLER_LOGIN } });
  cleanups.push(() => github.close());
  const stack = await startPlayStack(cp.kubeConfig, ns, playConfigYaml(github.url, playYaml), opts);
  cleanups.push(() => stack.stop());
  return { ns, github, sim: new GitHubSim(github, "acme", "api"), stack, api: playsApi(cp.kubeConfig) };
}

async function playOf(env: Env, name: string): Promise<Play> {
  return env.api.get(env.ns, name);
}

async function waitPlay(env: Env, name: string, what: string, pred: (p: Play) => boolean, timeoutMs = 60_000): Promise<Play> {
  let last: Play | undefined;
  try {
    return await waitFor(
      async () => {
        last = await playOf(env, name);
        return pred(last) && last;
      },
      timeoutMs,
      what,
    );
  } catch (e) {
    throw new Error(
      `${(e as Error).message}; Play status: ${JSON.stringify({ ...last?.status, history: undefined, conditions: undefined, reported: undefined })}`,
    );
  }
}

async function runNamed(env: Env, name: string): Promise<CodeRun | undefined> {
  return (await env.api.runs(env.ns)).find((r) => r.metadata.name === name);
}

async function waitRun(
  env: Env,
  play: Play,
  taskId: number,
  stage: RunStage,
  n: number,
  pred: (r: CodeRun) => boolean = () => true,
  timeoutMs = 60_000,
): Promise<CodeRun> {
  const name = stageRunName(play, taskId, stage, n);
  return waitFor(
    async () => {
      const r = await runNamed(env, name);
      return r && pred(r) && r;
    },
    timeoutMs,
    `CodeRun ${name}`,
  );
}

const phase = (p: string) => (r: CodeRun) => r.status?.phase === p;

/** Waits until the check run of stage run `run` shows `state` ("in_progress" or a conclusion). */
async function waitCheck(env: Env, run: string, state: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const c = env.github.state.checkRuns.find((x) => x.externalId?.endsWith(`:${run}`));
      return c && (c.status === state || c.conclusion === state) && c;
    },
    timeoutMs,
    `check run of ${run} ${state}`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function violations(github: GitHubServer): unknown[] {
  return github.state.violations;
}

describe("Play", () => {
  it("walks implementation → quality → testing → merged → next task, reporting each stage once", async () => {
    const env = await setup('play: {resyncSeconds: 600, publicUrl: "https://orchestrator.example.com"}');
    const { sim, stack } = env;
    const created = await env.api.create(newPlay(env.ns, "walk", { tasks: [1, 2], agents: { implementation: "rex" } }));
    const t0 = Date.now();

    // Task 1: the implementation agent (user rex-agent) opens the PR labelled task-1.
    const impl = await waitRun(env, created, 1, "implementation", 0);
    expect(impl.spec).toMatchObject({ taskId: 1, service: "api", githubUser: REX, model: "claude-rex", continueSession: false });
    expect(impl.metadata.annotations).toMatchObject({
      "orchestrator.platform/agent": "rex",
      "orchestrator.platform/play-stage": "implementation",
    });
    expect(impl.metadata.labels).toMatchObject({
      "orchestrator.platform/play": "walk",
      "task-id": "1",
      "orchestrator.platform/play-stage": "implementation",
    });
    expect(impl.metadata.ownerReferences?.[0]).toMatchObject({ kind: "Play", name: "walk", uid: created.metadata.uid, controller: true });
    const { pull: pr1, delivery: opened } = sim.openTaskPull(1, REX);
    expect(await stack.send(opened)).toBeLessThan(300);

    // Quality: starts once the implementation run finished; the quality agent adds ready-for-qa.
    const quality = await waitRun(env, created, 1, "quality", 0);
    expect(quality.spec).toMatchObject({ githubUser: CLEO, taskId: 1 });
    expect(quality.spec.promptModification).toContain("ready-for-qa");
    expect((await runNamed(env, impl.metadata.name!))?.status?.phase).toBe("Succeeded");
    await waitCheck(env, quality.metadata.name!, "in_progress");
    // Deliveries wake only the Plays they concern.
    expect(await stack.plays.enqueueForDelivery(opened.event, { ...opened.payload, repository: { full_name: "acme/other" } })).toEqual([]);
    expect(await stack.plays.enqueueForDelivery(opened.event, opened.payload)).toEqual([`${env.ns}/walk`]);
    await stack.send(sim.addLabel(pr1.number, "ready-for-qa", CLEO));

    // Testing: the testing agent approves the head commit.
    const testing = await waitRun(env, created, 1, "testing", 0);
    expect(testing.spec.githubUser).toBe(TESS);
    await waitCheck(env, testing.metadata.name!, "in_progress");
    await stack.send(sim.review(pr1.number, TESS, "APPROVED", "All acceptance criteria pass.").delivery);
    await waitPlay(env, "walk", "stage merge", (p) => p.status?.stage === "merge" && p.status.reason === "WaitingForMerge");
    // Settle: the testing run finishes and its check run completes.
    await waitRun(env, created, 1, "testing", 0, phase("Succeeded"));

    // A merge completes the task; task 2 starts.
    await stack.send(sim.merge(pr1.number));
    const onTask2 = await waitPlay(env, "walk", "task 2", (p) => p.status?.currentTask === 2);
    expect(onTask2.status).toMatchObject({ currentTaskIndex: 1, stage: "implementation", agent: "rex", iteration: 0, phase: "Running" });
    expect(onTask2.status?.history?.filter((h) => h.taskId === 1).map((h) => `${h.stage}:${h.outcome}`)).toEqual(
      expect.arrayContaining(["implementation:Succeeded", "quality:Succeeded", "testing:Succeeded", "merge:Merged"]),
    );

    // Task 2 end to end.
    await waitRun(env, created, 2, "implementation", 0);
    const pr2 = sim.openTaskPull(2, REX);
    await stack.send(pr2.delivery);
    await waitRun(env, created, 2, "quality", 0);
    await stack.send(sim.addLabel(pr2.pull.number, "ready-for-qa", CLEO));
    await waitRun(env, created, 2, "testing", 0);
    await stack.send(sim.review(pr2.pull.number, TESS, "APPROVED").delivery);
    await waitPlay(env, "walk", "stage merge (task 2)", (p) => p.status?.stage === "merge" && p.status.currentTask === 2);
    await waitRun(env, created, 2, "testing", 0, phase("Succeeded"));
    await stack.send(sim.merge(pr2.pull.number));
    const done = await waitPlay(env, "walk", "Succeeded", (p) => p.status?.phase === "Succeeded");
    console.log(`[play] two tasks walked in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(done.status).toMatchObject({ stage: "complete", reason: "AllTasksMerged" });
    expect(done.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");

    // GitHub: one check run per stage run, on the PR head, in progress then completed with success.
    const gh = env.github.state;
    await waitFor(async () => gh.checkRuns.filter((c) => c.status === "completed").length === 6, 20_000, "six completed check runs");
    expect(gh.checkRuns.map((c) => [c.name, c.conclusion]).sort()).toEqual([
      ["Play: implementation", "success"],
      ["Play: implementation", "success"],
      ["Play: quality review", "success"],
      ["Play: quality review", "success"],
      ["Play: testing", "success"],
      ["Play: testing", "success"],
    ]);
    for (const c of gh.checkRuns) {
      expect(c.app).toBe(CONTROLLER_LOGIN);
      expect(c.detailsUrl).toMatch(/^https:\/\/orchestrator\.example\.com\/api\/v1\/runs\/CodeRun\/walk-.*\/logs$/);
      expect(c.externalId).toMatch(/^play:.*\/walk:walk-/);
      expect(c.headSha).toBe([pr1.headSha, pr2.pull.headSha][c.externalId!.includes("-t1-") ? 0 : 1]);
    }
    // One progress comment per PR, kept up to date: the last body says the task merged.
    const comments = gh.comments.filter((c) => c.user === CONTROLLER_LOGIN);
    expect(comments.map((c) => c.issueNumber).sort()).toEqual([pr1.number, pr2.pull.number]);
    expect(comments.find((c) => c.issueNumber === pr1.number)?.body).toMatch(/task 1 \(1 of 2\)[\s\S]*\| Merge \| {2}\| ✅ done \|/);
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);

    const get = await execa(inject("kubectl"), ["--kubeconfig", cluster().kubeconfigPath, "get", "play", "-n", env.ns]);
    expect(get.stdout.split("\n")[0]).toMatch(/^NAME\s+TASK\s+STAGE\s+AGENT\s+PR\s+ITERATION\s+PHASE\s+AGE$/);
    expect(get.stdout).toMatch(/walk\s+2\s+complete\s+.*Succeeded/);
  });

  it("a push by the implementation agent during QA cancels the in-flight QA run and restarts QA; other pushes do not", async () => {
    const env = await setup();
    const { sim, stack } = env;
    const play = await env.api.create(newPlay(env.ns, "push", { stageEnv: { quality: { KWOK_RUN_DURATION: "600s" } } }));
    await waitRun(env, play, 1, "implementation", 0);
    const { pull, delivery } = sim.openTaskPull(1, REX);
    await stack.send(delivery);
    const q0 = await waitRun(env, play, 1, "quality", 0, phase("Running"));
    await waitCheck(env, q0.metadata.name!, "in_progress");

    // The quality agent pushes a refactor: the Play follows the new head, QA goes on.
    const byCleo = sim.push(pull.number, CLEO);
    await stack.send(byCleo);
    await waitPlay(
      env,
      "push",
      "head of the quality agent's push",
      (p) => p.status?.pullRequest?.headSha === sim.pull(pull.number).headSha,
    );
    await sleep(1500);
    expect((await runNamed(env, q0.metadata.name!))?.spec.cancel).toBeUndefined();
    expect(await runNamed(env, stageRunName(play, 1, "quality", 1))).toBeUndefined();

    // The implementation agent pushes: quality restarts on the new head.
    const t0 = Date.now();
    await stack.send(sim.push(pull.number, REX));
    const cancelled = await waitRun(env, play, 1, "quality", 0, phase("Cancelled"));
    expect(cancelled.spec.cancel).toBe(true);
    const q1 = await waitRun(env, play, 1, "quality", 1, phase("Running"));
    console.log(`[play] QA restarted ${((Date.now() - t0) / 1000).toFixed(1)} s after the push`);
    const st = await waitPlay(
      env,
      "push",
      "round 1",
      (p) => p.status?.activeRun === q1.metadata.name && p.status?.reason === "AgentRunning",
    );
    expect(st.status).toMatchObject({ stage: "quality", agent: "cleo", task: { round: 1, qaBaseSha: sim.pull(pull.number).headSha } });
    await waitCheck(env, q0.metadata.name!, "cancelled");
    const c1 = await waitCheck(env, q1.metadata.name!, "in_progress");
    expect(c1.headSha).toBe(sim.pull(pull.number).headSha);
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);
  });

  it("review feedback, failing checks and /remediate start remediation runs, up to the cap; then the Play stops", async () => {
    const env = await setup();
    const { sim, stack } = env;
    // Remediation runs take 3 s, so the agent's push lands while its run is still going, as it would.
    const play = await env.api.create(
      newPlay(env.ns, "fix", { maxRemediationIterations: 3, stageEnv: { implementation: { KWOK_RUN_DURATION: "3s" } } }),
    );
    /** The quality run QA restarted with after remediation `iteration` (its round is in status). */
    const qualityAfter = async (iteration: number) => {
      const st = await waitPlay(
        env,
        "fix",
        `quality after remediation ${iteration}`,
        (p) => p.status?.stage === "quality" && p.status?.iteration === iteration && p.status?.activeRun !== undefined,
      );
      return waitRun(env, play, 1, "quality", st.status?.task?.round ?? -1);
    };
    await waitRun(env, play, 1, "implementation", 0);
    const { pull, delivery } = sim.openTaskPull(1, REX);
    await stack.send(delivery);
    await waitRun(env, play, 1, "quality", 0);
    await waitPlay(env, "fix", "quality ended without the label", (p) => p.status?.reason === "StageNotPassed");

    // Someone without write access cannot trigger an agent; a maintainer can.
    await stack.send(sim.comment(pull.number, "drive-by", "/remediate rm -rf everything", "NONE").delivery);
    await stack.send(sim.comment(pull.number, "maintainer", "/remediate\nPlease fix the lint errors in src/lib.rs.", "OWNER").delivery);
    const r1 = await waitRun(env, play, 1, "remediation", 1);
    expect(r1.spec).toMatchObject({ githubUser: REX, continueSession: true, taskId: 1 });
    expect(r1.spec.env).toMatchObject({
      REMEDIATION_MODE: "true",
      ITERATION_COUNT: "1",
      FEEDBACK_TYPE: "comment",
      FEEDBACK_AUTHOR: "maintainer",
      PR_NUMBER: String(pull.number),
    });
    expect(r1.spec.promptModification).toContain("Please fix the lint errors in src/lib.rs.");
    expect(r1.spec.promptModification).not.toContain("rm -rf");
    // The pass that created the run writes the Play's status after reporting to GitHub.
    expect((await waitPlay(env, "fix", "status shows remediation", (p) => p.status?.stage === "remediation")).status).toMatchObject({
      stage: "remediation",
      iteration: 1,
      agent: "rex",
    });

    // The remediation pushes; QA starts over once it finished, and the testing agent requests changes.
    await waitRun(env, play, 1, "remediation", 1, phase("Running"));
    await stack.send(sim.push(pull.number, REX));
    const q1 = await qualityAfter(1);
    expect(q1.metadata.name).toBe(stageRunName(play, 1, "quality", 1));
    await stack.send(sim.review(pull.number, TESS, "CHANGES_REQUESTED", "🔴 Required changes: the login test fails.").delivery);
    const r2 = await waitRun(env, play, 1, "remediation", 2);
    expect(r2.spec.env?.FEEDBACK_TYPE).toBe("review");
    expect(r2.spec.promptModification).toContain("the login test fails");

    // A failing CI check and an inline review comment, seen in one pass: one remediation for both.
    await waitRun(env, play, 1, "remediation", 2, phase("Running"));
    await stack.send(sim.push(pull.number, REX));
    await qualityAfter(2);
    sim.reviewComment(pull.number, "maintainer", "Rename this function.", "src/auth.rs", 12);
    await stack.send(sim.checkRun(pull.number, "ci/test", "failure").delivery);
    const r3 = await waitRun(env, play, 1, "remediation", 3);
    expect(r3.spec.env?.FEEDBACK_TYPE?.split(",").sort()).toEqual(["check_run", "review_comment"]);
    expect(r3.spec.promptModification).toContain('Check run "ci/test" concluded failure');
    expect(r3.spec.promptModification).toContain("Rename this function.");
    const q3 = await qualityAfter(3);

    // A fourth round of feedback: the cap is reached and the Play stops with the reason.
    await stack.send(sim.comment(pull.number, "maintainer", "/remediate one more time", "OWNER").delivery);
    const failed = await waitPlay(env, "fix", "Failed at the cap", (p) => p.status?.phase === "Failed");
    expect(failed.status).toMatchObject({ reason: "MaxRemediationIterations", iteration: 3 });
    expect(failed.status?.message).toContain("reached 3 remediation iteration(s)");
    await sleep(1000);
    expect(await runNamed(env, stageRunName(play, 1, "remediation", 4))).toBeUndefined();
    // The last quality run is stopped with the Play (or had already finished).
    await waitFor(
      async () => ["Succeeded", "Cancelled"].includes((await runNamed(env, q3.metadata.name!))?.status?.phase ?? ""),
      30_000,
      "last quality run finished",
    );
    // Every check run ends completed, the progress comment shows the stop.
    await waitFor(
      async () => env.github.state.checkRuns.every((c) => c.status === "completed") && env.github.state.checkRuns.length >= 8,
      30_000,
      "all check runs completed",
    );
    await waitFor(
      async () => env.github.state.comments.find((c) => c.user === CONTROLLER_LOGIN)?.body.includes("❌ stopped"),
      20_000,
      "progress comment shows the stop",
    );
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);
  });

  it("converges through the periodic resync when no delivery is ever sent", async () => {
    const env = await setup("play: {resyncSeconds: 2}");
    const { sim } = env;
    const play = await env.api.create(newPlay(env.ns, "quiet"));
    await waitRun(env, play, 1, "implementation", 0);
    const { pull } = sim.openTaskPull(1, REX);
    await waitRun(env, play, 1, "quality", 0, phase("Succeeded"));
    await waitPlay(env, "quiet", "quality not passed", (p) => p.status?.reason === "StageNotPassed");

    // Nothing changes in the cluster from here on: only the resync can notice GitHub's changes.
    let t0 = Date.now();
    sim.addLabel(pull.number, "ready-for-qa", CLEO);
    await waitRun(env, play, 1, "testing", 0);
    console.log(`[play] label noticed by resync after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await waitRun(env, play, 1, "testing", 0, phase("Succeeded"));
    await waitPlay(env, "quiet", "testing not passed", (p) => p.status?.reason === "StageNotPassed" && p.status?.stage === "testing");
    t0 = Date.now();
    sim.review(pull.number, TESS, "APPROVED");
    await waitPlay(env, "quiet", "stage merge", (p) => p.status?.stage === "merge", 20_000);
    console.log(`[play] approval noticed by resync after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    sim.merge(pull.number);
    const done = await waitPlay(env, "quiet", "Succeeded", (p) => p.status?.phase === "Succeeded", 20_000);
    expect(done.status?.history?.map((h) => `${h.stage}:${h.outcome}`)).toEqual([
      "implementation:Succeeded",
      "quality:Succeeded",
      "testing:Succeeded",
      "merge:Merged",
    ]);
    expect(env.github.state.requests.some((r) => r.caller === CONTROLLER_TOKEN)).toBe(true);
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);
  });

  it("reports each check-run and comment state exactly once across a controller restart and lost status writes", async () => {
    // Every other status write fails after the GitHub writes of its pass: like a crash between
    // reporting and recording. The next pass must find what was written instead of writing again.
    let writes = 0;
    const env = await setup("play: {resyncSeconds: 3}", {
      wrapKube: (kube) => ({
        ...kube,
        patchPlayStatus: async (...args) => {
          if (++writes % 2 === 0) throw new Error("injected: the controller died before writing status");
          return kube.patchPlayStatus(...args);
        },
      }),
    });
    const { sim, stack } = env;
    const play = await env.api.create(newPlay(env.ns, "restart", { stageEnv: { testing: { KWOK_RUN_DURATION: "4s" } } }));
    await waitRun(env, play, 1, "implementation", 0);
    const { pull, delivery } = sim.openTaskPull(1, REX);
    await stack.send(delivery);
    const q0 = await waitRun(env, play, 1, "quality", 0);
    await waitCheck(env, q0.metadata.name!, "in_progress");
    await stack.send(sim.addLabel(pull.number, "ready-for-qa", CLEO));
    const t0 = await waitRun(env, play, 1, "testing", 0, phase("Running"));
    await waitCheck(env, t0.metadata.name!, "in_progress");

    // The Play controller goes away; the approval (and its delivery) happen while it is down.
    await stack.stopPlays();
    expect(writes).toBeGreaterThan(2);
    await stack.send(sim.review(pull.number, TESS, "APPROVED").delivery);
    await waitRun(env, play, 1, "testing", 0, phase("Succeeded"));

    // A new instance (no injected failures) catches up from Kubernetes and GitHub.
    await stack.restartPlays();
    await waitPlay(env, "restart", "stage merge", (p) => p.status?.stage === "merge");
    await waitCheck(env, t0.metadata.name!, "success");
    await stack.send(sim.merge(pull.number));
    await waitPlay(env, "restart", "Succeeded", (p) => p.status?.phase === "Succeeded");
    const gh = env.github.state;
    expect(gh.checkRuns.map((c) => `${c.name}:${c.conclusion}`).sort()).toEqual([
      "Play: implementation:success",
      "Play: quality review:success",
      "Play: testing:success",
    ]);
    expect(gh.comments.filter((c) => c.user === CONTROLLER_LOGIN)).toHaveLength(1);
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);
  });

  it("a check run's Re-run stage action restarts that stage", async () => {
    const env = await setup();
    const { sim, stack } = env;
    const play = await env.api.create(newPlay(env.ns, "rerun"));
    await waitRun(env, play, 1, "implementation", 0);
    const { pull, delivery } = sim.openTaskPull(1, REX);
    await stack.send(delivery);
    const q0 = await waitRun(env, play, 1, "quality", 0);
    await waitCheck(env, q0.metadata.name!, "in_progress");
    await stack.send(sim.addLabel(pull.number, "ready-for-qa", CLEO));
    const t0 = await waitRun(env, play, 1, "testing", 0, phase("Succeeded"));
    // The testing agent finished without approving: its check run fails.
    const failedCheck = await waitCheck(env, t0.metadata.name!, "failure");
    await waitPlay(env, "rerun", "testing not passed", (p) => p.status?.reason === "StageNotPassed");
    expect(failedCheck.actions).toEqual([{ label: "Re-run stage", description: "Run this Play stage again", identifier: "rerun" }]);

    const click = sim.requestAction(failedCheck.id, "rerun");
    await stack.send(click, "delivery-rerun-1");
    const t1 = await waitRun(env, play, 1, "testing", 1);
    expect((await playOf(env, "rerun")).metadata.annotations?.["orchestrator.platform/rerun"]).toMatch(/^1\/testing\//);
    // Quality is not redone: its label stays.
    expect(await runNamed(env, stageRunName(play, 1, "quality", 1))).toBeUndefined();
    expect(sim.pull(pull.number).labels).toContain("ready-for-qa");
    await waitCheck(env, t1.metadata.name!, "in_progress");
    await stack.send(sim.review(pull.number, TESS, "APPROVED").delivery);
    await waitPlay(env, "rerun", "stage merge", (p) => p.status?.stage === "merge");
    // The same delivery again (a redelivery from the webhook settings) does not start another run.
    await stack.send(click, "delivery-rerun-1");
    await sleep(1500);
    expect(await runNamed(env, stageRunName(play, 1, "testing", 2))).toBeUndefined();
    expect((await playOf(env, "rerun")).status?.stage).toBe("merge");
    expectExactlyOnce(env.github);
    expect(violations(env.github)).toEqual([]);
  });
});

/** Every check run was created once, each later state written once, and no comment body written twice. */
function expectExactlyOnce(github: GitHubServer): void {
  const reqs = github.state.requests.filter((r) => r.caller === CONTROLLER_TOKEN && r.status < 300);
  const creates = reqs.filter((r) => r.method === "POST" && r.path.endsWith("/check-runs"));
  const ids = creates.map((r) => (r.body as { external_id: string }).external_id);
  expect(new Set(ids).size, `duplicate check-run creates: ${ids.join(", ")}`).toBe(ids.length);
  const updates = reqs.filter((r) => r.method === "PATCH" && /\/check-runs\/\d+$/.test(r.path));
  const states = updates.map(
    (r) => `${r.path}:${(r.body as { status?: string; conclusion?: string }).conclusion ?? (r.body as { status?: string }).status}`,
  );
  expect(new Set(states).size, `duplicate check-run updates: ${states.join(", ")}`).toBe(states.length);
  for (const r of updates) {
    const created = creates.find((c) =>
      github.state.checkRuns.find((x) => x.externalId === (c.body as { external_id: string }).external_id && r.path.endsWith(`/${x.id}`)),
    );
    // An update only moves a run from in progress to completed.
    expect((created?.body as { status?: string } | undefined)?.status, r.path).toBe("in_progress");
  }
  const commentCreates = reqs.filter((r) => r.method === "POST" && /\/issues\/\d+\/comments$/.test(r.path));
  expect(new Set(commentCreates.map((r) => r.path)).size, "one progress comment per PR").toBe(commentCreates.length);
  const bodies = reqs
    .filter(
      (r) =>
        (r.method === "PATCH" && /\/issues\/comments\/\d+$/.test(r.path)) ||
        (r.method === "POST" && /\/issues\/\d+\/comments$/.test(r.path)),
    )
    .map((r) => (r.body as { body: string }).body);
  expect(new Set(bodies).size, "a comment body written twice").toBe(bodies.length);
}
