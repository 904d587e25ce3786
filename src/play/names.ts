/**
 * Deterministic names and keys of what a Play creates. A stage CodeRun's name derives from the
 * Play (name + uid), the task, the stage and its iteration/round, never from the clock, so a
 * create repeated after a crash finds the run it already made (AlreadyExists is success).
 */
import { createHash } from "node:crypto";
import type { Play, PlayStage } from "../api/index.js";
import { sanitizeDnsLabel } from "../manifests/names.js";
import { parseRepoUrl } from "../runner/repo-url.js";
import type { RepoRef } from "./ports.js";

/** Stages that run an agent. */
export type RunStage = Extract<PlayStage, "implementation" | "remediation" | "quality" | "testing">;

const MAX_NAME = 63;

/**
 * `{play}-{uid6}-t{task}-{stage}-{n}`, at most 63 characters (so Job names derived from it stay
 * readable): the Play name is shortened and a hash of it added when needed. The uid part keeps a
 * re-created Play of the same name from adopting its predecessor's runs.
 */
export function stageRunName(play: Play, taskId: number, stage: RunStage, n: number): string {
  const uid = (play.metadata.uid ?? "").replace(/-/g, "").slice(0, 6) || "nouid0";
  const suffix = `${uid}-t${taskId}-${stage}-${n}`;
  const base = sanitizeDnsLabel(play.metadata.name ?? "play") || "play";
  if (base.length + 1 + suffix.length <= MAX_NAME) return `${base}-${suffix}`;
  const hash = createHash("sha256").update(base).digest("hex").slice(0, 5);
  const room = Math.max(0, MAX_NAME - suffix.length - hash.length - 2);
  const cut = base.slice(0, room).replace(/-+$/g, "");
  return `${cut ? `${cut}-` : ""}${hash}-${suffix}`;
}

/** The queue key of a Play. */
export function playKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** owner/repo of a Play's repository, or null when it is not a GitHub-style URL. */
export function repoOf(repositoryUrl: string): RepoRef | null {
  const c = parseRepoUrl(repositoryUrl);
  if (c) return { owner: c.owner, repo: c.repo };
  // Also accept the short form org/repo (as CodeRuns do for GitHub).
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?$/.exec(repositoryUrl.trim());
  return m ? { owner: m[1]!, repo: m[2]! } : null;
}

/** Lowercase owner/repo, for matching webhook payloads to Plays. */
export function repoKey(repo: RepoRef): string {
  return `${repo.owner}/${repo.repo}`.toLowerCase();
}

/** The label the implementation agent's PR carries (the runner adds it). */
export function taskLabel(taskId: number): string {
  return `task-${taskId}`;
}

/** Check runs made by this Play carry external_id `play:{namespace}/{play}:{run}`. */
/** The requested_action identifier of a check run's "Re-run stage" button. */
export const RERUN_ACTION = "rerun";

export const EXTERNAL_ID_PREFIX = "play:";

export function checkRunExternalId(namespace: string, play: string, run: string): string {
  return `${EXTERNAL_ID_PREFIX}${namespace}/${play}:${run}`;
}

export function parseExternalId(externalId: string | null | undefined): { namespace: string; play: string; run: string } | null {
  const m = /^play:([^/:]+)\/([^/:]+):([^/:]+)$/.exec(externalId ?? "");
  return m ? { namespace: m[1]!, play: m[2]!, run: m[3]! } : null;
}

/** Marker of the Play's progress comment on a task PR (how a restarted controller finds it). */
export function progressMarker(namespace: string, play: string, taskId: number): string {
  return `<!-- orchestrator-play:${namespace}/${play}:task-${taskId} -->`;
}
