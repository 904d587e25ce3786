/**
 * The Play decision, a pure function: (Play, its CodeRuns, GitHub's state of the current task's
 * PR, config) → (next status, actions, what to report). Level-based: it reads the whole state
 * every pass; running it again on the same inputs gives the same result. docs/play.md has the
 * state machine in prose; tests/unit/play-decide.test.ts has it as a table.
 *
 * Where a task stands is read from GitHub:
 *   no PR labelled task-{id}                         → implementation
 *   PR merged                                        → task complete, next task
 *   new feedback (comments, reviews, failing checks) → remediation run of the implementation agent
 *   ready-for-qa label missing (added by the quality agent) → quality
 *   no approval by the testing agent at the head SHA → testing
 *   otherwise                                        → merge (waits for someone to merge)
 * The status only remembers what GitHub cannot tell: the task index, the remediation iteration,
 * the QA round and feedback watermarks (see PlayTaskState).
 */
import {
  Annotations,
  ConditionTypes,
  Phases,
  PlayReasons,
  isActive,
  isTerminalPhase,
  type CodeRun,
  type Phase,
  type Play,
  type PlayHistoryEntry,
  type PlayStage,
  type PlayStatus,
  type PlayTaskState,
} from "../api/index.js";
import { setCondition } from "../controller/status.js";
import { buildRemediationPrompt, collectFeedback, FeedbackTypes, initialWatermarks, type FeedbackItem } from "./feedback.js";
import { progressMarker, repoOf, stageRunName, type RunStage } from "./names.js";
import type { CommitInfo, PullState, ReviewInfo, TaskSnapshot } from "./ports.js";
import { buildStageRun, roleOf, stageOfRun } from "./runs.js";
import { resolvePlayAgents, type PlaySettings, type ResolvedAgents } from "./settings.js";

export type PlayAction =
  { type: "createRun"; run: CodeRun } | { type: "cancelRun"; name: string } | { type: "removeLabel"; pullNumber: number; label: string };

/** The state a stage's check run should show: in progress, or completed with a conclusion. */
export type CheckState = "in_progress" | "completed:success" | "completed:failure" | "completed:cancelled";

export interface StageRunView {
  name: string;
  stage: RunStage;
  index: number;
  agent?: string;
  phase?: string;
  message?: string;
  startedAt?: string;
  completedAt?: string;
  check: CheckState;
  /** Why the check has that state, for its summary. */
  note: string;
}

/** Everything the reporter shows about one task: built here so reports derive from the decision. */
export interface TaskView {
  taskId: number;
  taskIndex: number;
  taskCount: number;
  pull: PullState | null;
  stage: PlayStage;
  merged: boolean;
  agents: { implementation: string; quality: string; testing: string };
  agent?: string;
  iteration: number;
  maxIterations: number;
  round: number;
  qualityPassed: boolean;
  testingPassed: boolean;
  phase: Phase;
  reason: string;
  message: string;
  runs: StageRunView[];
  history: PlayHistoryEntry[];
}

export interface DecideInput {
  play: Play;
  settings: PlaySettings;
  /** The CodeRuns this Play owns (every task). */
  runs: CodeRun[];
  /** GitHub's state of the current task's PR; null when the reconciler did not read it. */
  snapshot: TaskSnapshot | null;
  now: string;
}

export interface Decision {
  status: PlayStatus;
  actions: PlayAction[];
  /** The task to report on GitHub (absent when there is nothing to report). */
  view?: TaskView;
  /** The current task was merged and the next one starts: reconcile again now. */
  advanced: boolean;
}

const HISTORY_LIMIT = 100;

/** The task a Play is on (or undefined when all are done): what the reconciler reads from GitHub. */
export function currentTask(play: Play): { index: number; taskId: number } | undefined {
  const tasks = play.spec.tasks ?? [];
  let index = play.status?.currentTaskIndex ?? 0;
  const known = play.status?.currentTask;
  // The task list may have been edited: follow the task, not the position.
  if (known !== undefined && tasks[index] !== known && tasks.includes(known)) index = tasks.indexOf(known);
  const taskId = tasks[index];
  return taskId === undefined ? undefined : { index, taskId };
}

/** Whether a pass needs GitHub: active Plays always; stopped ones until their check runs are final. */
export function needsGitHub(play: Play, runs: CodeRun[]): boolean {
  const st = play.status;
  if (!isTerminalPhase(st?.phase)) return true;
  if (st?.phase === Phases.Failed && st.observedGeneration !== play.metadata.generation) return true;
  if (st?.phase === Phases.Succeeded) return false;
  const task = st?.currentTask;
  return (
    (st?.reported?.checkRuns ?? []).some((c) => !c.state.startsWith("completed")) || runs.some((r) => r.spec.taskId === task && isActive(r))
  );
}

/** History: merged tasks (remembered) plus every finished stage run (recomputed from the runs). */
export function buildHistory(prev: PlayHistoryEntry[] | undefined, runs: CodeRun[]): PlayHistoryEntry[] {
  const merges = (prev ?? []).filter((h) => h.outcome === "Merged");
  const fromRuns: PlayHistoryEntry[] = [];
  for (const r of runs) {
    const s = stageOfRun(r);
    const phase = r.status?.phase;
    if (!s || !phase || !isTerminalPhase(phase)) continue;
    fromRuns.push({
      taskId: r.spec.taskId,
      stage: s.stage,
      agent: r.metadata.annotations?.[Annotations.agent],
      run: r.metadata.name,
      iteration: s.index,
      outcome: phase,
      time: r.status?.completionTime ?? r.status?.lastUpdate ?? r.metadata.creationTimestamp ?? "1970-01-01T00:00:00Z",
      ...(r.status?.message ? { message: r.status.message.slice(0, 300) } : {}),
    });
  }
  const all = [...merges, ...fromRuns].sort((a, b) => a.time.localeCompare(b.time) || (a.run ?? "").localeCompare(b.run ?? ""));
  return all.slice(-HISTORY_LIMIT);
}

/** Did the implementation agent author or commit anything after `baseSha`? (A force push counts every commit.) */
export function implementationPushedSince(commits: CommitInfo[], baseSha: string, login: string): boolean {
  const i = commits.findIndex((c) => c.sha === baseSha);
  const after = i >= 0 ? commits.slice(i + 1) : commits;
  return after.some((c) => c.author?.toLowerCase() === login || c.committer?.toLowerCase() === login);
}

/** The testing agent's verdict on `head`: its latest deciding review is an approval of that commit. */
export function testingApproved(reviews: ReviewInfo[], login: string, head: string, afterId: number): boolean {
  const mine = reviews
    .filter((r) => r.login.toLowerCase() === login && r.id > afterId && ["APPROVED", "CHANGES_REQUESTED", "DISMISSED"].includes(r.state))
    .sort((a, b) => a.id - b.id);
  const last = mine[mine.length - 1];
  return last !== undefined && last.state === "APPROVED" && last.commitId === head;
}

/** The quality agent's verdict: the label is on the PR and its latest `labeled` event is the quality agent's. */
export function qualityLabelled(s: TaskSnapshot, label: string, login: string): boolean {
  const l = label.toLowerCase();
  if (!s.pull?.labels.some((x) => x.toLowerCase() === l)) return false;
  const events = s.labelEvents.filter((e) => e.event === "labeled" && e.label.toLowerCase() === l).sort((a, b) => a.id - b.id);
  return events[events.length - 1]?.actor.toLowerCase() === login;
}

/** A pending "re-run stage" request on the Play (from a check run's requested_action). */
export function parseRerun(play: Play): { taskId: number; stage: string; nonce: string; value: string } | undefined {
  const value = play.metadata.annotations?.[Annotations.rerun];
  const m = /^([0-9]+)\/([a-z]+)\/(.+)$/.exec(value ?? "");
  return m ? { taskId: Number(m[1]), stage: m[2]!, nonce: m[3]!, value: value! } : undefined;
}

export function decidePlay(input: DecideInput): Decision {
  const { play, settings, now } = input;
  const spec = play.spec;
  const prev = play.status ?? {};
  const generation = play.metadata.generation;
  const ns = play.metadata.namespace ?? "";
  const name = play.metadata.name ?? "";
  const runs = input.runs.filter((r) => r.metadata.ownerReferences?.some((o) => o.kind === "Play" && o.uid === play.metadata.uid));
  let st: PlayStatus = {
    ...prev,
    observedGeneration: generation,
    startTime: prev.startTime ?? now,
    history: buildHistory(prev.history, runs),
  };
  const actions: PlayAction[] = [];
  const cancel = (list: CodeRun[]) => {
    for (const r of list) if (isActive(r) && !r.spec.cancel) actions.push({ type: "cancelRun", name: r.metadata.name ?? "" });
  };
  const setReady = (status: "True" | "False", reason: string, message: string) => {
    st.conditions = setCondition(
      st.conditions ?? [],
      { type: ConditionTypes.Ready, status, reason, message, observedGeneration: generation },
      now,
    );
  };
  const finish = (phase: Phase, reason: string, message: string) => {
    st = { ...st, phase, reason, message, completionTime: st.completionTime ?? now };
    setReady(phase === Phases.Succeeded ? "True" : "False", reason, message);
  };
  const wait = (reason: string, message: string) => {
    st = { ...st, phase: Phases.Running, reason, message, completionTime: undefined };
    setReady("False", reason, message);
  };

  const task = currentTask(play);
  const taskRuns = task ? runs.filter((r) => r.spec.taskId === task.taskId) : [];
  const agentsResult = resolvePlayAgents(spec, settings);

  // ---- stopped Plays -----------------------------------------------------------------------
  const resumable = prev.phase === Phases.Failed && prev.observedGeneration !== generation && !spec.cancel;
  if (isTerminalPhase(prev.phase) && !resumable) {
    if (prev.phase !== Phases.Succeeded) cancel(taskRuns);
    const view =
      task && input.snapshot && agentsResult.ok
        ? buildView(play, st, task, input.snapshot.pull, agentsResult.agents, taskRuns, settings, {
            qualityPassed: false,
            testingPassed: false,
          })
        : undefined;
    return { status: st, actions, view, advanced: false };
  }
  if (spec.cancel) {
    cancel(runs);
    finish(Phases.Cancelled, "Cancelled", "The Play was cancelled (spec.cancel); its stage runs were stopped.");
    const view =
      task && input.snapshot && agentsResult.ok
        ? buildView(play, st, task, input.snapshot.pull, agentsResult.agents, taskRuns, settings, {
            qualityPassed: false,
            testingPassed: false,
          })
        : undefined;
    return { status: st, actions, view, advanced: false };
  }
  if (!agentsResult.ok) {
    finish(Phases.Failed, PlayReasons.AgentNotFound, agentsResult.message);
    return { status: st, actions, advanced: false };
  }
  const agents = agentsResult.agents;
  if (!repoOf(spec.repositoryUrl)) {
    finish(
      Phases.Failed,
      PlayReasons.InvalidRepository,
      `spec.repositoryUrl ${spec.repositoryUrl} is not a GitHub repository (https://github.com/org/repo, git@github.com:org/repo.git or org/repo); fix it in the Play.`,
    );
    return { status: st, actions, advanced: false };
  }
  if (!task) {
    st = { ...st, stage: "complete", agent: undefined, activeRun: undefined, currentTaskIndex: spec.tasks.length };
    finish(Phases.Succeeded, PlayReasons.AllTasksMerged, `All ${spec.tasks.length} task(s) merged.`);
    return { status: st, actions, advanced: false };
  }
  if (!input.snapshot) throw new Error("decidePlay needs the GitHub snapshot of the current task");
  const snapshot = input.snapshot;
  const taskId = task.taskId;
  const maxIterations = spec.maxRemediationIterations ?? settings.play.maxRemediationIterations;
  const readyLabel = settings.play.readyForQaLabel;
  const taskChanged = prev.currentTask !== taskId;
  let iteration = taskChanged ? 0 : (prev.iteration ?? 0);
  const ts: PlayTaskState = taskChanged ? { round: 0 } : structuredClone(prev.task ?? { round: 0 });
  st = { ...st, currentTaskIndex: task.index, currentTask: taskId };
  if (taskChanged) st = { ...st, pullRequest: undefined, reported: {} };
  const pull = snapshot.pull;
  const find = (stage: RunStage, index: number) => taskRuns.find((r) => r.metadata.name === stageRunName(play, taskId, stage, index));
  const implStage: RunStage = iteration > 0 ? "remediation" : "implementation";
  const signals = { qualityPassed: false, testingPassed: false };
  const done = (advanced = false): Decision => {
    st = { ...st, iteration, task: ts };
    return { status: st, actions, view: buildView(play, st, task, pull, agents, taskRuns, settings, signals), advanced };
  };
  const create = (stage: RunStage, index: number, remediation?: Parameters<typeof buildStageRun>[0]["remediation"]) =>
    actions.push({
      type: "createRun",
      run: buildStageRun({
        play,
        taskId,
        stage,
        index,
        agent: agents[roleOf(stage)],
        defaultModel: settings.defaultModel,
        pull,
        readyForQaLabel: readyLabel,
        remediation,
      }),
    });

  // ---- merged: the task is complete ----------------------------------------------------------
  if (pull?.merged) {
    cancel(taskRuns);
    signals.qualityPassed = true;
    signals.testingPassed = true;
    st.history = [
      ...(st.history ?? []).filter((h) => !(h.outcome === "Merged" && h.taskId === taskId)),
      { taskId, stage: "merge" as const, outcome: "Merged", pullRequest: pull.number, headSha: pull.headSha, time: pull.mergedAt ?? now },
    ]
      .sort((a, b) => a.time.localeCompare(b.time) || (a.run ?? "").localeCompare(b.run ?? ""))
      .slice(-HISTORY_LIMIT);
    st.pullRequest = { number: pull.number, url: pull.url, headSha: pull.headSha };
    st.stage = "merge";
    st.agent = undefined;
    st.activeRun = undefined;
    const merged = done();
    // The view reports the merged task; the status moves on to the next one.
    const view: TaskView = {
      ...merged.view!,
      merged: true,
      phase: Phases.Running,
      reason: PlayReasons.TaskMerged,
      message: `PR #${pull.number} was merged; task ${taskId} is complete.`,
    };
    const nextIndex = task.index + 1;
    const nextTask = spec.tasks[nextIndex];
    st = {
      ...st,
      currentTaskIndex: nextIndex,
      currentTask: nextTask,
      iteration: 0,
      task: undefined,
      pullRequest: undefined,
      activeRun: undefined,
      reported: {},
    };
    if (nextTask === undefined) {
      st = { ...st, stage: "complete", agent: undefined, currentTask: taskId };
      finish(Phases.Succeeded, PlayReasons.AllTasksMerged, `All ${spec.tasks.length} task(s) merged.`);
      view.phase = Phases.Succeeded;
      view.message = `PR #${pull.number} was merged; all ${spec.tasks.length} task(s) are complete.`;
    } else {
      st = { ...st, stage: "implementation", agent: agents.implementation.name };
      wait(PlayReasons.TaskMerged, `Task ${taskId} merged (PR #${pull.number}); starting task ${nextTask}.`);
    }
    return { status: st, actions, view, advanced: nextTask !== undefined };
  }

  // ---- no PR yet: implementation ---------------------------------------------------------------
  const implName = stageRunName(play, taskId, implStage, iteration);
  const implRun = find(implStage, iteration);
  if (!pull) {
    st = { ...st, stage: implStage, agent: agents.implementation.name, activeRun: implName };
    if (!implRun) {
      create(implStage, iteration);
      wait(PlayReasons.StageStarted, `Started ${implStage} of task ${taskId} by ${agents.implementation.name} (${implName}).`);
    } else if (isActive(implRun)) {
      wait(PlayReasons.AgentRunning, `${agents.implementation.name} is implementing task ${taskId} (${implName}).`);
    } else if (implRun.status?.phase !== Phases.Succeeded) {
      finish(
        Phases.Failed,
        PlayReasons.ImplementationFailed,
        `Implementation run ${implName} ended ${implRun.status?.phase}${implRun.status?.message ? `: ${implRun.status.message}` : ""}; no pull request labelled task-${taskId} exists. Fix the cause and bump the Play (any spec change) to resume.`,
      );
    } else if (implRun.status?.result?.outcome === "no-changes") {
      finish(
        Phases.Failed,
        PlayReasons.NoChanges,
        `Implementation run ${implName} finished without changes, so there is no pull request for task ${taskId}. Check the task docs, then bump the Play (any spec change) to resume.`,
      );
    } else {
      wait(
        PlayReasons.WaitingForPullRequest,
        `Run ${implName} succeeded; waiting for a pull request labelled task-${taskId} in ${spec.repositoryUrl}.`,
      );
    }
    return done();
  }

  // ---- the PR exists ---------------------------------------------------------------------------
  if (!ts.seen) ts.seen = initialWatermarks(snapshot);
  st.pullRequest = { number: pull.number, url: pull.url, headSha: pull.headSha };
  if (pull.state === "closed") {
    cancel(taskRuns);
    st = { ...st, activeRun: undefined };
    wait(PlayReasons.PullRequestClosed, `PR #${pull.number} was closed without merging; reopen it to continue, or cancel the Play.`);
    return done();
  }
  if (implRun && isActive(implRun)) {
    st = { ...st, stage: implStage, agent: agents.implementation.name, activeRun: implName };
    wait(
      PlayReasons.AgentRunning,
      `${agents.implementation.name} is ${iteration > 0 ? `remediating (iteration ${iteration})` : "implementing"} task ${taskId} (${implName}).`,
    );
    return done();
  }

  // Remediation: new feedback, or a re-run of the implementation stage.
  const rerun = parseRerun(play);
  const pendingRerun = rerun && rerun.taskId === taskId && rerun.value !== ts.rerun ? rerun : undefined;
  const marker = progressMarker(ns, name, taskId);
  const feedback = collectFeedback(snapshot, ts.seen, {
    settings,
    implementationLogin: agents.implementation.login,
    trustedLogins: [agents.quality.login, agents.testing.login],
    ownMarker: marker,
  });
  const items: FeedbackItem[] = [...feedback.items];
  if (pendingRerun && (pendingRerun.stage === "implementation" || pendingRerun.stage === "remediation")) {
    items.push({
      type: FeedbackTypes.rerun,
      id: pendingRerun.nonce,
      author: "re-run request",
      body: "A maintainer asked to re-run the implementation stage from its check run. Re-check the task against its acceptance criteria and the open review feedback, and push any fixes.",
    });
  }
  if (items.length > 0) {
    const qaRuns = taskRuns.filter((r) => ["quality", "testing"].includes(stageOfRun(r)?.stage ?? ""));
    if (iteration >= maxIterations) {
      cancel(qaRuns);
      st = { ...st, stage: implStage, agent: agents.implementation.name, activeRun: undefined };
      finish(
        Phases.Failed,
        PlayReasons.MaxRemediationIterations,
        `Task ${taskId} reached ${maxIterations} remediation iteration(s) and got more feedback (${describeItems(items)}); the Play stopped. Fix the PR by hand, or raise spec.maxRemediationIterations to resume.`,
      );
      return done();
    }
    iteration += 1;
    ts.seen = feedback.watermarks;
    if (pendingRerun) ts.rerun = pendingRerun.value;
    // The implementation agent will push; quality and testing restart after it, so stop them now.
    cancel(qaRuns);
    const prompt = buildRemediationPrompt({
      items,
      iteration,
      maxIterations,
      pullNumber: pull.number,
      pullUrl: pull.url,
      branch: pull.headRef,
      maxBytes: settings.maxPromptBytes,
    });
    create("remediation", iteration, {
      prompt,
      feedbackTypes: [...new Set(items.map((i) => i.type))],
      feedbackAuthor: items[0]!.author,
      maxIterations,
    });
    const runName = stageRunName(play, taskId, "remediation", iteration);
    st = { ...st, stage: "remediation", agent: agents.implementation.name, activeRun: runName };
    wait(
      PlayReasons.RemediationStarted,
      `Remediation ${iteration} of ${maxIterations} for task ${taskId} started (${runName}) for ${describeItems(items)}.`,
    );
    return done();
  }
  if (implRun && implRun.status?.phase !== Phases.Succeeded) {
    st = { ...st, stage: implStage, agent: agents.implementation.name, activeRun: implName };
    wait(
      PlayReasons.ImplementationFailed,
      `Run ${implName} ended ${implRun.status?.phase}${implRun.status?.message ? `: ${implRun.status.message}` : ""}. Comment /remediate on PR #${pull.number} or re-run the stage from its check run.`,
    );
    return done();
  }

  // ---- QA: quality review, then testing -----------------------------------------------------------
  const head = pull.headSha;
  let labelPresent = pull.labels.some((l) => l.toLowerCase() === readyLabel.toLowerCase());
  const removeLabel = () => {
    if (labelPresent) actions.push({ type: "removeLabel", pullNumber: pull.number, label: readyLabel });
    labelPresent = false;
  };
  if (ts.qaBaseSha === undefined) {
    ts.qaBaseSha = head;
    ts.qaIteration = iteration;
  } else if (
    ts.qaIteration !== iteration ||
    (head !== ts.qaBaseSha && implementationPushedSince(snapshot.commits, ts.qaBaseSha, agents.implementation.login))
  ) {
    // New code from the implementation agent (a push, or a finished remediation): QA starts over.
    ts.round += 1;
    ts.qaBaseSha = head;
    ts.qaIteration = iteration;
    removeLabel();
  }
  if (pendingRerun && (pendingRerun.stage === "quality" || pendingRerun.stage === "testing")) {
    ts.rerun = pendingRerun.value;
    ts.round += 1;
    if (pendingRerun.stage === "quality") removeLabel();
    else ts.testingAfterReviewId = Math.max(0, ...snapshot.reviews.map((r) => r.id));
  }
  cancel(
    taskRuns.filter((r) => {
      const s = stageOfRun(r);
      return (s?.stage === "quality" || s?.stage === "testing") && s.index < ts.round;
    }),
  );
  signals.qualityPassed = labelPresent && qualityLabelled(snapshot, readyLabel, agents.quality.login);
  signals.testingPassed =
    signals.qualityPassed && testingApproved(snapshot.reviews, agents.testing.login, head, ts.testingAfterReviewId ?? 0);
  if (signals.qualityPassed && signals.testingPassed) {
    st = { ...st, stage: "merge", agent: undefined, activeRun: undefined };
    wait(
      PlayReasons.WaitingForMerge,
      `PR #${pull.number} passed quality review (${agents.quality.name}) and testing (${agents.testing.name}); waiting for it to be merged.`,
    );
    return done();
  }
  const stage: RunStage = signals.qualityPassed ? "testing" : "quality";
  const agent = agents[stage];
  const runName = stageRunName(play, taskId, stage, ts.round);
  const run = find(stage, ts.round);
  st = { ...st, stage, agent: agent.name, activeRun: runName };
  if (!run) {
    // One agent at a time in the service's workspace: wait for runs still finishing (or being cancelled).
    const busy = taskRuns.filter((r) => isActive(r) && r.metadata.name !== runName).map((r) => r.metadata.name);
    if (busy.length > 0) {
      wait(PlayReasons.WaitingForRun, `Waiting for ${busy.join(", ")} to finish before starting ${stage} (${runName}).`);
    } else {
      create(stage, ts.round);
      wait(PlayReasons.StageStarted, `Started ${stage} of task ${taskId} by ${agent.name} (${runName}).`);
    }
  } else if (isActive(run)) {
    wait(PlayReasons.AgentRunning, `${agent.name} is running ${stage} of task ${taskId} (${runName}).`);
  } else {
    const missing =
      stage === "quality" ? `the ${readyLabel} label from ${agent.name}` : `an approving review of ${head.slice(0, 7)} from ${agent.name}`;
    wait(
      PlayReasons.StageNotPassed,
      `${stage === "quality" ? "Quality" : "Testing"} run ${runName} ended ${run.status?.phase} without ${missing}. Push a fix, comment /remediate, or re-run the stage from its check run.`,
    );
  }
  return done();
}

function describeItems(items: FeedbackItem[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.type, (counts.get(i.type) ?? 0) + 1);
  return [...counts].map(([t, n]) => `${n} ${t.replace("_", " ")}${n > 1 ? "s" : ""}`).join(", ");
}

/** What each stage run's check run should show. */
function checkOf(
  run: CodeRun,
  s: { stage: RunStage; index: number },
  round: number,
  signals: { qualityPassed: boolean; testingPassed: boolean },
  merged: boolean,
): { check: CheckState; note: string } {
  const phase = run.status?.phase;
  // The merge pass is the task's last report: a run still going there is being cancelled.
  const active = isActive(run) && !merged;
  if (s.stage === "implementation" || s.stage === "remediation") {
    if (phase === Phases.Succeeded) return { check: "completed:success", note: "The agent finished and pushed its work." };
    if (phase === Phases.Failed)
      return { check: "completed:failure", note: `The run failed${run.status?.message ? `: ${run.status.message}` : ""}.` };
    if (phase === Phases.Cancelled || !active) return { check: "completed:cancelled", note: "The run was cancelled." };
    return { check: "in_progress", note: "The agent is working." };
  }
  if (s.index < round)
    return {
      check: "completed:cancelled",
      note: "Superseded: new commits from the implementation agent (or a re-run) restarted this stage.",
    };
  const passed = s.stage === "quality" ? signals.qualityPassed : signals.testingPassed;
  if (passed)
    return {
      check: "completed:success",
      note: s.stage === "quality" ? "The quality agent marked the PR ready for QA." : "The testing agent approved the PR.",
    };
  if (phase === Phases.Cancelled || (merged && isActive(run))) return { check: "completed:cancelled", note: "The run was cancelled." };
  if (active) return { check: "in_progress", note: "The agent is working." };
  return {
    check: "completed:failure",
    note:
      s.stage === "quality"
        ? "The quality agent finished without marking the PR ready for QA."
        : "The testing agent finished without approving the PR.",
  };
}

function buildView(
  play: Play,
  st: PlayStatus,
  task: { index: number; taskId: number },
  pull: PullState | null,
  agents: ResolvedAgents,
  taskRuns: CodeRun[],
  settings: PlaySettings,
  signals: { qualityPassed: boolean; testingPassed: boolean },
): TaskView {
  const round = st.task?.round ?? 0;
  const merged = Boolean(pull?.merged);
  const runs: StageRunView[] = [];
  for (const r of [...taskRuns].sort(
    (a, b) =>
      (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
      (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
  )) {
    const s = stageOfRun(r);
    if (!s) continue;
    runs.push({
      name: r.metadata.name ?? "",
      stage: s.stage,
      index: s.index,
      agent: r.metadata.annotations?.[Annotations.agent],
      phase: r.status?.phase,
      message: r.status?.message,
      startedAt: r.status?.startTime ?? r.metadata.creationTimestamp,
      completedAt: r.status?.completionTime,
      ...checkOf(r, s, round, signals, merged),
    });
  }
  return {
    taskId: task.taskId,
    taskIndex: task.index,
    taskCount: play.spec.tasks.length,
    pull,
    stage: st.stage ?? "implementation",
    merged,
    agents: { implementation: agents.implementation.name, quality: agents.quality.name, testing: agents.testing.name },
    agent: st.agent,
    iteration: st.iteration ?? 0,
    maxIterations: play.spec.maxRemediationIterations ?? settings.play.maxRemediationIterations,
    round,
    qualityPassed: signals.qualityPassed,
    testingPassed: signals.testingPassed,
    phase: st.phase ?? Phases.Pending,
    reason: st.reason ?? "",
    message: st.message ?? "",
    runs,
    history: (st.history ?? []).filter((h) => h.taskId === task.taskId),
  };
}
