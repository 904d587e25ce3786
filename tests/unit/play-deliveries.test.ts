/** Which Plays a webhook delivery wakes (real @octokit/webhooks-examples payloads, adjusted). */
import { describe, expect, it } from "vitest";
import type { Play, PlayStatus } from "../../src/api/index.js";
import { deliveryRefs, playMatches } from "../../src/play/deliveries.js";
import { examplePayload } from "../support/webhook-fixtures.js";

const SHA = "c".repeat(40);
const repository = { full_name: "Acme/API", name: "API", owner: { login: "Acme" } };

function play(status: PlayStatus, repositoryUrl = "git@github.com:acme/api.git", name = "demo"): Play {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "Play",
    metadata: { name, namespace: "ns", generation: 1 },
    spec: { service: "api", repositoryUrl, docsRepositoryUrl: "acme/docs", tasks: [7, 8] },
    status,
  };
}

const onTask7 = play({ phase: "Running", currentTask: 7, pullRequest: { number: 42, url: "u", headSha: SHA } });

function payload(event: string, action: string | undefined, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...examplePayload(event, action), repository, ...fields };
}

describe("webhook deliveries → Plays", () => {
  it.each<[string, string, Record<string, unknown>, boolean]>([
    [
      "the PR's review",
      "pull_request_review",
      payload("pull_request_review", "submitted", { pull_request: { number: 42, labels: [], head: { ref: "x", sha: "d".repeat(40) } } }),
      true,
    ],
    [
      "a PR labelled task-7 (not yet seen)",
      "pull_request",
      payload("pull_request", "opened", {
        pull_request: { number: 99, labels: [{ name: "task-7" }], head: { ref: "x", sha: "e".repeat(40) } },
      }),
      true,
    ],
    [
      "a PR of another task",
      "pull_request",
      payload("pull_request", "opened", {
        pull_request: { number: 99, labels: [{ name: "task-8" }], head: { ref: "feature/task-8-implementation", sha: "e".repeat(40) } },
      }),
      false,
    ],
    [
      "a comment on the PR",
      "issue_comment",
      payload("issue_comment", "created", { issue: { number: 42, labels: [], pull_request: {} } }),
      true,
    ],
    [
      "a push to the task branch",
      "push",
      payload("push", undefined, { ref: "refs/heads/feature/task-7-implementation", before: "0".repeat(40), after: "f".repeat(40) }),
      true,
    ],
    [
      "a push to task-70",
      "push",
      payload("push", undefined, { ref: "refs/heads/feature/task-70-implementation", before: "0".repeat(40), after: "f".repeat(40) }),
      false,
    ],
    [
      "a check run on the head",
      "check_run",
      payload("check_run", "completed", { check_run: { head_sha: SHA, external_id: "", pull_requests: [] } }),
      true,
    ],
    ["a status on another commit", "status", payload("status", undefined, { sha: "1".repeat(40) }), false],
    [
      "the same PR number in another repository",
      "pull_request_review",
      {
        ...payload("pull_request_review", "submitted", { pull_request: { number: 42, labels: [], head: { ref: "x", sha: SHA } } }),
        repository: { full_name: "acme/web" },
      },
      false,
    ],
  ])("%s → %s", (_what, event, p, expected) => {
    expect(playMatches(onTask7, deliveryRefs(event, p))).toBe(expected);
  });

  it("finished Plays are not woken", () => {
    const refs = deliveryRefs("issue_comment", payload("issue_comment", "created", { issue: { number: 42, labels: [] } }));
    expect(playMatches(play({ ...onTask7.status, phase: "Succeeded" }), refs)).toBe(false);
    expect(playMatches(play({ ...onTask7.status, phase: "Failed" }), refs)).toBe(false);
  });

  it("a Re-run stage click names the Play and the stage run through the check run's external id", () => {
    const p = payload("check_run", "requested_action", {
      requested_action: { identifier: "rerun" },
      check_run: { head_sha: SHA, external_id: "play:ns/demo:demo-111111-t7-testing-0", pull_requests: [] },
    });
    const refs = deliveryRefs("check_run", p);
    expect(refs.rerunOf).toEqual({ namespace: "ns", play: "demo", run: "demo-111111-t7-testing-0" });
    expect(playMatches(onTask7, refs)).toBe(true);
    expect(playMatches(play(onTask7.status ?? {}, "https://github.com/acme/api", "other"), { ...refs, shas: [] })).toBe(false);
    expect(deliveryRefs("check_run", { ...p, requested_action: { identifier: "something-else" } }).rerunOf).toBeUndefined();
  });
});
