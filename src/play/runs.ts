/**
 * Pure builder of a Play's stage CodeRuns. Identity (githubUser/githubApp) and model come from
 * the roster agent; the annotation names the agent so the CodeRun controller adds its system
 * prompt and tool permissions; the owner reference makes the runs go with the Play. All stages
 * of a task use the same taskId, hence the same branch and PR, and the same service workspace.
 */
import { API_VERSION, Annotations, Labels, type CodeRun, type Play, type PlayRole } from "../api/index.js";
import { sanitizeLabelValue } from "../manifests/names.js";
import { stageRunName, type RunStage } from "./names.js";
import type { PullState } from "./ports.js";
import type { ResolvedAgent } from "./settings.js";

export function roleOf(stage: RunStage): PlayRole {
  return stage === "remediation" ? "implementation" : stage;
}

export interface StageRunInput {
  play: Play;
  taskId: number;
  stage: RunStage;
  /** Remediation iteration (0 = first implementation) or QA round. */
  index: number;
  agent: ResolvedAgent;
  defaultModel: string;
  pull?: PullState | null;
  readyForQaLabel: string;
  /** Remediation runs: the prompt with the feedback, and env for the agent. */
  remediation?: { prompt: string; feedbackTypes: string[]; feedbackAuthor: string; maxIterations: number };
}

function stagePrompt(input: StageRunInput): string | undefined {
  const { stage, taskId, pull, agent } = input;
  const pr = pull ? `pull request #${pull.number} (${pull.url}, branch ${pull.headRef})` : `the pull request labelled task-${taskId}`;
  switch (stage) {
    case "implementation":
      return undefined;
    case "remediation":
      return input.remediation?.prompt;
    case "quality":
      return [
        `You are ${agent.name}, the quality reviewer of task ${taskId}: review ${pr}.`,
        "Improve code quality where needed (lint, types, structure, tests) and push your changes to the same branch; do not open a new pull request.",
        `When the pull request is ready for testing, add the label "${input.readyForQaLabel}" to it with the mcp__github__add_pull_request_label tool.`,
        "If it needs changes only the implementation agent can make, submit a review requesting changes that says what and why with the mcp__github__submit_pull_request_review tool (event REQUEST_CHANGES).",
      ].join("\n");
    case "testing":
      return [
        `You are ${agent.name}, the testing agent of task ${taskId}: test ${pr} against the task's acceptance criteria.`,
        "When it passes, approve the pull request with the mcp__github__submit_pull_request_review tool (event APPROVE). Otherwise submit a review with that tool (event REQUEST_CHANGES) that lists each failure and how to reproduce it.",
        "These tools act only on this pull request; you have no other access to GitHub.",
      ].join("\n");
  }
}

/** The stage run's environment: the Play's env, its role's stageEnv, then what the stage tells the agent. */
function stageRunEnv(input: StageRunInput): Record<string, string> {
  const { play, stage, index } = input;
  const spec = play.spec;
  return {
    ...(spec.env ?? {}),
    ...(spec.stageEnv?.[roleOf(stage)] ?? {}),
    PLAY_NAME: play.metadata.name ?? "",
    PLAY_STAGE: stage,
    ...(input.pull ? { PR_NUMBER: String(input.pull.number), PR_URL: input.pull.url } : {}),
    ...(input.remediation
      ? {
          REMEDIATION_MODE: "true",
          ITERATION_COUNT: String(index),
          MAX_ITERATIONS: String(input.remediation.maxIterations),
          FEEDBACK_TYPE: input.remediation.feedbackTypes.join(","),
          FEEDBACK_AUTHOR: input.remediation.feedbackAuthor,
        }
      : {}),
  };
}

export function buildStageRun(input: StageRunInput): CodeRun {
  const { play, taskId, stage, index, agent } = input;
  const spec = play.spec;
  const role = roleOf(stage);
  const name = stageRunName(play, taskId, stage, index);
  const env = stageRunEnv(input);
  const prompt = stagePrompt(input);
  return {
    apiVersion: API_VERSION as "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: {
      name,
      namespace: play.metadata.namespace,
      labels: {
        [Labels.play]: sanitizeLabelValue(play.metadata.name ?? ""),
        [Labels.taskId]: String(taskId),
        [Labels.playStage]: stage,
        [Labels.playIndex]: String(index),
      },
      annotations: { [Annotations.agent]: agent.name, [Annotations.playStage]: stage },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: "Play",
          name: play.metadata.name ?? "",
          uid: play.metadata.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      taskId,
      service: spec.service,
      repositoryUrl: spec.repositoryUrl,
      docsRepositoryUrl: spec.docsRepositoryUrl,
      ...(spec.docsProjectDirectory ? { docsProjectDirectory: spec.docsProjectDirectory } : {}),
      ...(spec.docsBranch ? { docsBranch: spec.docsBranch } : {}),
      ...(spec.workingDirectory ? { workingDirectory: spec.workingDirectory } : {}),
      model: spec.models?.[role] ?? agent.model ?? input.defaultModel,
      ...(agent.githubUser ? { githubUser: agent.githubUser } : { githubApp: agent.githubApp }),
      // A remediation continues the implementation agent's conversation on the same workspace.
      continueSession: stage === "remediation",
      env,
      ...(prompt ? { promptModification: prompt } : {}),
      ...(spec.cluster ? { cluster: spec.cluster } : {}),
    },
  };
}

/** Stage and index of a run this Play made (from its labels). */
export function stageOfRun(run: CodeRun): { stage: RunStage; index: number } | undefined {
  const stage = run.metadata.labels?.[Labels.playStage];
  const index = Number(run.metadata.labels?.[Labels.playIndex]);
  if (stage !== "implementation" && stage !== "remediation" && stage !== "quality" && stage !== "testing") return undefined;
  return { stage, index: Number.isInteger(index) ? index : 0 };
}
