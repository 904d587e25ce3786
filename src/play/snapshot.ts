/**
 * Reads GitHub's state of one task's pull request: the PR labelled task-{id} (an open one first,
 * else the latest merged, else the latest closed), its commits, reviews, review comments, PR
 * comments, label events and the check runs on its head. Eight REST calls at most per pass.
 */
import { taskLabel } from "./names.js";
import type { PlayGitHubReader, PullState, RepoRef, TaskSnapshot } from "./ports.js";

export const EMPTY_SNAPSHOT: TaskSnapshot = {
  pull: null,
  commits: [],
  reviews: [],
  reviewComments: [],
  comments: [],
  labelEvents: [],
  checkRuns: [],
};

/** Several PRs may carry the label (a closed attempt, then a new one): the open one is the task's. */
export function pickTaskPull(pulls: PullState[]): PullState | null {
  const newest = (list: PullState[]) => [...list].sort((a, b) => b.number - a.number)[0] ?? null;
  return newest(pulls.filter((p) => p.state === "open")) ?? newest(pulls.filter((p) => p.merged)) ?? newest(pulls);
}

export async function readTaskSnapshot(
  gh: PlayGitHubReader,
  repo: RepoRef,
  taskId: number,
  readyForQaLabel: string,
): Promise<TaskSnapshot> {
  const numbers = await gh.findPullNumbers(repo, taskLabel(taskId));
  if (numbers.length === 0) return EMPTY_SNAPSHOT;
  // Newest first; more than a handful of PRs for one task means something else is wrong.
  const candidates = [...numbers].sort((a, b) => b - a).slice(0, 5);
  const pulls = (await Promise.all(candidates.map((n) => gh.getPull(repo, n)))).filter((p): p is PullState => p !== null);
  const pull = pickTaskPull(pulls);
  if (!pull) return EMPTY_SNAPSHOT;
  const hasLabel = pull.labels.some((l) => l.toLowerCase() === readyForQaLabel.toLowerCase());
  const [commits, reviews, reviewComments, comments, labelEvents, checkRuns] = await Promise.all([
    gh.listPullCommits(repo, pull.number),
    gh.listReviews(repo, pull.number),
    gh.listReviewComments(repo, pull.number),
    gh.listIssueComments(repo, pull.number),
    // Who added ready-for-qa matters only while it is there.
    hasLabel ? gh.listLabelEvents(repo, pull.number) : Promise.resolve([]),
    gh.listCheckRuns(repo, pull.headSha),
  ]);
  return { pull, commits, reviews, reviewComments, comments, labelEvents, checkRuns };
}
