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

type Signals = { qualityPassed: boolean; testingPassed: boolean };

/**
 * One pass's working state: the status being built and the actions so far. The decision steps
 * below each read the inputs and extend it; nothing here performs I/O.
 */
class PlayPass {
  st: PlayStatus;
  readonly actions: PlayAction[] = [];
  readonly runs: CodeRun[];
  readonly task: { index: number; taskId: number } | undefined;
  readonly taskRuns: CodeRun[];

  constructor(readonly input: DecideInput) {
    const { play, now } = input;
    const prev = play.status ?? {};
    this.runs = input.runs.filter((r) => r.metadata.ownerReferences?.some((o) => o.kind === "Play" && o.uid === play.metadata.uid));
    this.st = {
      ...prev,
      observedGeneration: play.metadata.generation,
      startTime: prev.startTime ?? now,
      history: buildHistory(prev.history, this.runs),
    };
    this.task = currentTask(play);
    this.taskRuns = this.task ? this.runs.filter((r) => r.spec.taskId === this.task!.taskId) : [];
  }

  cancel(list: CodeRun[]): void {
    for (const r of list) if (isActive(r) && !r.spec.cancel) this.actions.push({ type: "cancelRun", name: r.metadata.name ?? "" });
  }

  private setReady(status: "True" | "False", reason: string, message: string): void {
    const condition = { type: ConditionTypes.Ready, status, reason, message, observedGeneration: this.input.play.metadata.generation };
    this.st.conditions = setCondition(this.st.conditions ?? [], condition, this.input.now);
  }

  finish(phase: Phase, reason: string, message: string): void {
    this.st = { ...this.st, phase, reason, message, completionTime: this.st.completionTime ?? this.input.now };
    this.setReady(phase === Phases.Succeeded ? "True" : "False", reason, message);
  }

  wait(reason: string, message: string): void {
    this.st = { ...this.st, phase: Phases.Running, reason, message, completionTime: undefined };
    this.setReady("False", reason, message);
  }

  result(view?: TaskView, advanced = false): Decision {
    return { status: this.st, actions: this.actions, view, advanced };
  }
}

/** A pass on the current task, once the Play is known to be runnable and GitHub has been read. */
class TaskPass {
  readonly taskId: number;
  readonly pull: PullState | null;
  readonly maxIterations: number;
  readonly readyLabel: string;
  iteration: number;
  readonly ts: PlayTaskState;
  readonly signals: Signals = { qualityPassed: false, testingPassed: false };
  /** The implementation stage of this iteration: its name and run (if created). */
  readonly implStage: RunStage;
  readonly implName: string;
  readonly implRun: CodeRun | undefined;

  constructor(
    readonly p: PlayPass,
    readonly task: { index: number; taskId: number },
    readonly snapshot: TaskSnapshot,
    readonly agents: ResolvedAgents,
  ) {
    const { play, settings } = p.input;
    const prev = play.status ?? {};
    this.taskId = task.taskId;
    this.pull = snapshot.pull;
    this.maxIterations = play.spec.maxRemediationIterations ?? settings.play.maxRemediationIterations;
    this.readyLabel = settings.play.readyForQaLabel;
    const taskChanged = prev.currentTask !== task.taskId;
    this.iteration = taskChanged ? 0 : (prev.iteration ?? 0);
    this.ts = taskChanged ? { round: 0 } : structuredClone(prev.task ?? { round: 0 });
    p.st = { ...p.st, currentTaskIndex: task.index, currentTask: task.taskId };
    if (taskChanged) p.st = { ...p.st, pullRequest: undefined, reported: {} };
    this.implStage = this.iteration > 0 ? "remediation" : "implementation";
    this.implName = stageRunName(play, task.taskId, this.implStage, this.iteration);
    this.implRun = this.find(this.implStage, this.iteration);
  }

  find(stage: RunStage, index: number): CodeRun | undefined {
    return this.p.taskRuns.find((r) => r.metadata.name === stageRunName(this.p.input.play, this.taskId, stage, index));
  }

  /** Where the Play stands now: stage, agent and the run it waits on. */
  at(stage: PlayStage, agent: string | undefined, activeRun: string | undefined): void {
    this.p.st = { ...this.p.st, stage, agent, activeRun };
  }

  create(stage: RunStage, index: number, remediation?: Parameters<typeof buildStageRun>[0]["remediation"]): void {
    const { play, settings } = this.p.input;
    const run = buildStageRun({
      play,
      taskId: this.taskId,
      stage,
      index,
      agent: this.agents[roleOf(stage)],
      defaultModel: settings.defaultModel,
      pull: this.pull,
      readyForQaLabel: this.readyLabel,
      remediation,
    });
    this.p.actions.push({ type: "createRun", run });
  }

  done(advanced = false): Decision {
    const { p } = this;
    p.st = { ...p.st, iteration: this.iteration, task: this.ts };
    const view = buildView(p.input.play, p.st, this.task, this.pull, this.agents, p.taskRuns, p.input.settings, this.signals);
    return p.result(view, advanced);
  }
}

/** The decision of one pass over a Play (see the module comment and docs/play.md). */
export function decidePlay(input: DecideInput): Decision {
  const p = new PlayPass(input);
  const agentsResult = resolvePlayAgents(input.play.spec, input.settings);
  const stopped = decideStopped(p, agentsResult.ok ? agentsResult.agents : undefined);
  if (stopped) return stopped;
  if (!agentsResult.ok) {
    p.finish(Phases.Failed, PlayReasons.AgentNotFound, agentsResult.message);
    return p.result();
  }
  const unrunnable = decideUnrunnable(p);
  if (unrunnable || !p.task) return unrunnable ?? p.result();
  if (!input.snapshot) throw new Error("decidePlay needs the GitHub snapshot of the current task");
  const t = new TaskPass(p, p.task, input.snapshot, agentsResult.agents);
  return (
    decideMerged(t) ?? decideWithoutPull(t) ?? decideOpenPull(t) ?? decideRemediation(t) ?? decideImplementationFailed(t) ?? decideQa(t)
  );
}

/** A stopped Play (finished, or cancelled now) only stops its runs and reports. */
function decideStopped(p: PlayPass, agents: ResolvedAgents | undefined): Decision | undefined {
  const { play, snapshot } = p.input;
  const prev = play.status ?? {};
  const resumable = prev.phase === Phases.Failed && prev.observedGeneration !== play.metadata.generation && !play.spec.cancel;
  const stoppedBefore = isTerminalPhase(prev.phase) && !resumable;
  if (!stoppedBefore && !play.spec.cancel) return undefined;
  if (stoppedBefore) {
    if (prev.phase !== Phases.Succeeded) p.cancel(p.taskRuns);
  } else {
    p.cancel(p.runs);
    p.finish(Phases.Cancelled, "Cancelled", "The Play was cancelled (spec.cancel); its stage runs were stopped.");
  }
  const signals = { qualityPassed: false, testingPassed: false };
  const view =
    p.task && snapshot && agents ? buildView(play, p.st, p.task, snapshot.pull, agents, p.taskRuns, p.input.settings, signals) : undefined;
  return p.result(view);
}

/** A repository that is not on GitHub fails the Play; no task left means every task merged. */
function decideUnrunnable(p: PlayPass): Decision | undefined {
  const { spec } = p.input.play;
  if (!repoOf(spec.repositoryUrl)) {
    p.finish(
      Phases.Failed,
      PlayReasons.InvalidRepository,
      `spec.repositoryUrl ${spec.repositoryUrl} is not a GitHub repository (https://github.com/org/repo, git@github.com:org/repo.git or org/repo); fix it in the Play.`,
    );
    return p.result();
  }
  if (p.task) return undefined;
  p.st = { ...p.st, stage: "complete", agent: undefined, activeRun: undefined, currentTaskIndex: spec.tasks.length };
  p.finish(Phases.Succeeded, PlayReasons.AllTasksMerged, `All ${spec.tasks.length} task(s) merged.`);
  return p.result();
}

/** The PR was merged: the task is complete; the status moves on to the next task (or ends the Play). */
function decideMerged(t: TaskPass): Decision | undefined {
  const { p, pull, taskId } = t;
  if (!pull?.merged) return undefined;
  p.cancel(p.taskRuns);
  t.signals.qualityPassed = true;
  t.signals.testingPassed = true;
  const merge: PlayHistoryEntry = {
    taskId,
    stage: "merge" as const,
    outcome: "Merged",
    pullRequest: pull.number,
    headSha: pull.headSha,
    time: pull.mergedAt ?? p.input.now,
  };
  p.st.history = [...(p.st.history ?? []).filter((h) => !(h.outcome === "Merged" && h.taskId === taskId)), merge]
    .sort((a, b) => a.time.localeCompare(b.time) || (a.run ?? "").localeCompare(b.run ?? ""))
    .slice(-HISTORY_LIMIT);
  p.st.pullRequest = { number: pull.number, url: pull.url, headSha: pull.headSha };
  t.at("merge", undefined, undefined);
  // The view reports the merged task; the status moves on to the next one.
  const view: TaskView = {
    ...t.done().view!,
    merged: true,
    phase: Phases.Running,
    reason: PlayReasons.TaskMerged,
    message: `PR #${pull.number} was merged; task ${taskId} is complete.`,
  };
  const { tasks } = p.input.play.spec;
  const nextIndex = t.task.index + 1;
  const nextTask = tasks[nextIndex];
  p.st = {
    ...p.st,
    currentTaskIndex: nextIndex,
    currentTask: nextTask,
    iteration: 0,
    task: undefined,
    pullRequest: undefined,
    activeRun: undefined,
    reported: {},
  };
  if (nextTask === undefined) {
    p.st = { ...p.st, stage: "complete", agent: undefined, currentTask: taskId };
    p.finish(Phases.Succeeded, PlayReasons.AllTasksMerged, `All ${tasks.length} task(s) merged.`);
    view.phase = Phases.Succeeded;
    view.message = `PR #${pull.number} was merged; all ${tasks.length} task(s) are complete.`;
  } else {
    p.st = { ...p.st, stage: "implementation", agent: t.agents.implementation.name };
    p.wait(PlayReasons.TaskMerged, `Task ${taskId} merged (PR #${pull.number}); starting task ${nextTask}.`);
  }
  return p.result(view, nextTask !== undefined);
}

/** No PR yet: the implementation stage runs, or its outcome explains why there is none. */
function decideWithoutPull(t: TaskPass): Decision | undefined {
  const { p, taskId, implStage, implName, implRun } = t;
  if (t.pull) return undefined;
  const agent = t.agents.implementation.name;
  t.at(implStage, agent, implName);
  const ended = `Implementation run ${implName} ended ${implRun?.status?.phase}${implRun?.status?.message ? `: ${implRun.status.message}` : ""}`;
  if (!implRun) {
    t.create(implStage, t.iteration);
    p.wait(PlayReasons.StageStarted, `Started ${implStage} of task ${taskId} by ${agent} (${implName}).`);
  } else if (isActive(implRun)) {
    p.wait(PlayReasons.AgentRunning, `${agent} is implementing task ${taskId} (${implName}).`);
  } else if (implRun.status?.phase !== Phases.Succeeded) {
    const message = `${ended}; no pull request labelled task-${taskId} exists. Fix the cause and bump the Play (any spec change) to resume.`;
    p.finish(Phases.Failed, PlayReasons.ImplementationFailed, message);
  } else if (implRun.status?.result?.outcome === "no-changes") {
    const message = `Implementation run ${implName} finished without changes, so there is no pull request for task ${taskId}. Check the task docs, then bump the Play (any spec change) to resume.`;
    p.finish(Phases.Failed, PlayReasons.NoChanges, message);
  } else {
    const repo = p.input.play.spec.repositoryUrl;
    p.wait(PlayReasons.WaitingForPullRequest, `Run ${implName} succeeded; waiting for a pull request labelled task-${taskId} in ${repo}.`);
  }
  return t.done();
}

/** The PR exists: a closed one pauses the Play; a running implementation stage is waited for. */
function decideOpenPull(t: TaskPass): Decision | undefined {
  const { p, pull, implRun } = t;
  if (!pull) return undefined;
  if (!t.ts.seen) t.ts.seen = initialWatermarks(t.snapshot);
  p.st.pullRequest = { number: pull.number, url: pull.url, headSha: pull.headSha };
  if (pull.state === "closed") {
    p.cancel(p.taskRuns);
    p.st = { ...p.st, activeRun: undefined };
    p.wait(PlayReasons.PullRequestClosed, `PR #${pull.number} was closed without merging; reopen it to continue, or cancel the Play.`);
    return t.done();
  }
  if (!implRun || !isActive(implRun)) return undefined;
  const agent = t.agents.implementation.name;
  t.at(t.implStage, agent, t.implName);
  const doing = t.iteration > 0 ? `remediating (iteration ${t.iteration})` : "implementing";
  p.wait(PlayReasons.AgentRunning, `${agent} is ${doing} task ${t.taskId} (${t.implName}).`);
  return t.done();
}

/** A re-run request for this task not yet acted on. */
function pendingRerunOf(t: TaskPass): ReturnType<typeof parseRerun> {
  const rerun = parseRerun(t.p.input.play);
  return rerun && rerun.taskId === t.taskId && rerun.value !== t.ts.rerun ? rerun : undefined;
}

/** What the implementation agent must address: new feedback on the PR, or a re-run of its stage. */
function remediationItems(t: TaskPass): { items: FeedbackItem[]; watermarks: NonNullable<PlayTaskState["seen"]> } {
  const { play, settings } = t.p.input;
  const feedback = collectFeedback(t.snapshot, t.ts.seen!, {
    settings,
    implementationLogin: t.agents.implementation.login,
    trustedLogins: [t.agents.quality.login, t.agents.testing.login],
    ownMarker: progressMarker(play.metadata.namespace ?? "", play.metadata.name ?? "", t.taskId),
  });
  const items: FeedbackItem[] = [...feedback.items];
  const rerun = pendingRerunOf(t);
  if (rerun && (rerun.stage === "implementation" || rerun.stage === "remediation")) {
    items.push({
      type: FeedbackTypes.rerun,
      id: rerun.nonce,
      author: "re-run request",
      body: "A maintainer asked to re-run the implementation stage from its check run. Re-check the task against its acceptance criteria and the open review feedback, and push any fixes.",
    });
  }
  return { items, watermarks: feedback.watermarks };
}

/** New feedback starts the next remediation iteration (quality and testing stop), up to the limit. */
function decideRemediation(t: TaskPass): Decision | undefined {
  const { p, pull, taskId, maxIterations } = t;
  const { items, watermarks } = remediationItems(t);
  if (items.length === 0 || !pull) return undefined;
  // The implementation agent will push; quality and testing restart after it, so stop them now,
  // except a run whose own agent wrote the feedback: that is its verdict, and it is ending on its
  // own (its check run then says it did not pass instead of "cancelled"). The remediation run waits
  // for it, as runs of one service take turns on the workspace.
  const authors = new Set(items.map((i) => i.author.toLowerCase()));
  const qaRuns = p.taskRuns.filter((r) => {
    const stage = stageOfRun(r)?.stage;
    return (stage === "quality" || stage === "testing") && !authors.has(t.agents[stage].login.toLowerCase());
  });
  p.cancel(qaRuns);
  if (t.iteration >= maxIterations) {
    t.at(t.implStage, t.agents.implementation.name, undefined);
    const message = `Task ${taskId} reached ${maxIterations} remediation iteration(s) and got more feedback (${describeItems(items)}); the Play stopped. Fix the PR by hand, or raise spec.maxRemediationIterations to resume.`;
    p.finish(Phases.Failed, PlayReasons.MaxRemediationIterations, message);
    return t.done();
  }
  t.iteration += 1;
  t.ts.seen = watermarks;
  const rerun = pendingRerunOf(t);
  if (rerun) t.ts.rerun = rerun.value;
  const { iteration } = t;
  const prompt = buildRemediationPrompt({
    items,
    iteration,
    maxIterations,
    pullNumber: pull.number,
    pullUrl: pull.url,
    branch: pull.headRef,
    maxBytes: p.input.settings.maxPromptBytes,
  });
  t.create("remediation", iteration, {
    prompt,
    feedbackTypes: [...new Set(items.map((i) => i.type))],
    feedbackAuthor: items[0]!.author,
    maxIterations,
  });
  const runName = stageRunName(p.input.play, taskId, "remediation", iteration);
  t.at("remediation", t.agents.implementation.name, runName);
  const message = `Remediation ${iteration} of ${maxIterations} for task ${taskId} started (${runName}) for ${describeItems(items)}.`;
  p.wait(PlayReasons.RemediationStarted, message);
  return t.done();
}

/** The implementation stage ended without success and there is no new feedback: a person decides. */
function decideImplementationFailed(t: TaskPass): Decision | undefined {
  const { implRun, implName, pull } = t;
  if (!implRun || implRun.status?.phase === Phases.Succeeded || !pull) return undefined;
  t.at(t.implStage, t.agents.implementation.name, implName);
  const why = `${implRun.status?.phase}${implRun.status?.message ? `: ${implRun.status.message}` : ""}`;
  const message = `Run ${implName} ended ${why}. Comment /remediate on PR #${pull.number} or re-run the stage from its check run.`;
  t.p.wait(PlayReasons.ImplementationFailed, message);
  return t.done();
}

/**
 * The QA round: new code from the implementation agent (a push, or a finished remediation) or a
 * re-run of quality/testing starts a new round, dropping the ready-for-QA label; the previous
 * round's runs stop. Returns whether the label is (still) present.
 */
function advanceQaRound(t: TaskPass, pull: PullState): boolean {
  const { p, ts, readyLabel } = t;
  const head = pull.headSha;
  let labelPresent = pull.labels.some((l) => l.toLowerCase() === readyLabel.toLowerCase());
  const removeLabel = () => {
    if (labelPresent) p.actions.push({ type: "removeLabel", pullNumber: pull.number, label: readyLabel });
    labelPresent = false;
  };
  const pushed = () => head !== ts.qaBaseSha && implementationPushedSince(t.snapshot.commits, ts.qaBaseSha!, t.agents.implementation.login);
  if (ts.qaBaseSha === undefined || ts.qaIteration !== t.iteration || pushed()) {
    if (ts.qaBaseSha !== undefined) {
      ts.round += 1;
      removeLabel();
    }
    ts.qaBaseSha = head;
    ts.qaIteration = t.iteration;
  }
  const rerun = pendingRerunOf(t);
  if (rerun && (rerun.stage === "quality" || rerun.stage === "testing")) {
    ts.rerun = rerun.value;
    ts.round += 1;
    if (rerun.stage === "quality") removeLabel();
    else ts.testingAfterReviewId = Math.max(0, ...t.snapshot.reviews.map((r) => r.id));
  }
  p.cancel(
    p.taskRuns.filter((r) => {
      const s = stageOfRun(r);
      return (s?.stage === "quality" || s?.stage === "testing") && s.index < ts.round;
    }),
  );
  return labelPresent;
}

/** Quality review, then testing, then waiting for someone to merge. */
function decideQa(t: TaskPass): Decision {
  const { p, ts, agents, taskId } = t;
  const pull = t.pull!;
  const labelPresent = advanceQaRound(t, pull);
  t.signals.qualityPassed = labelPresent && qualityLabelled(t.snapshot, t.readyLabel, agents.quality.login);
  t.signals.testingPassed =
    t.signals.qualityPassed && testingApproved(t.snapshot.reviews, agents.testing.login, pull.headSha, ts.testingAfterReviewId ?? 0);
  if (t.signals.qualityPassed && t.signals.testingPassed) {
    t.at("merge", undefined, undefined);
    const message = `PR #${pull.number} passed quality review (${agents.quality.name}) and testing (${agents.testing.name}); waiting for it to be merged.`;
    p.wait(PlayReasons.WaitingForMerge, message);
    return t.done();
  }
  const stage: RunStage = t.signals.qualityPassed ? "testing" : "quality";
  const agent = agents[stage];
  const runName = stageRunName(p.input.play, taskId, stage, ts.round);
  const run = t.find(stage, ts.round);
  t.at(stage, agent.name, runName);
  if (!run) {
    // One agent at a time in the service's workspace: wait for runs still finishing (or being cancelled).
    const busy = p.taskRuns.filter((r) => isActive(r) && r.metadata.name !== runName).map((r) => r.metadata.name);
    if (busy.length > 0) {
      p.wait(PlayReasons.WaitingForRun, `Waiting for ${busy.join(", ")} to finish before starting ${stage} (${runName}).`);
    } else {
      t.create(stage, ts.round);
      p.wait(PlayReasons.StageStarted, `Started ${stage} of task ${taskId} by ${agent.name} (${runName}).`);
    }
  } else if (isActive(run)) {
    p.wait(PlayReasons.AgentRunning, `${agent.name} is running ${stage} of task ${taskId} (${runName}).`);
  } else {
    const missing =
      stage === "quality"
        ? `the ${t.readyLabel} label from ${agent.name}`
        : `an approving review of ${pull.headSha.slice(0, 7)} from ${agent.name}`;
    const message = `${stage === "quality" ? "Quality" : "Testing"} run ${runName} ended ${run.status?.phase} without ${missing}. Push a fix, comment /remediate, or re-run the stage from its check run.`;
    p.wait(PlayReasons.StageNotPassed, message);
  }
  return t.done();
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
