/**
 * A Play end to end on the real node: three agents (implementation, quality, testing), each the
 * real Claude Code CLI in a real pod with its own scripted model, acting on GitHub only through
 * the channel's scoped tools. The test plays GitHub's part in one way only: what the agents did on
 * the GitHub double and the git server becomes the webhook deliveries GitHub would send.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { CodeRun, Play } from "../../src/api/index.js";
import { stageRunName, type RunStage } from "../../src/play/names.js";
import { toolResultsSincePrompt, type MessagesRequest, type ScriptTurn } from "../support/model-server.js";
import { CONTROLLER_LOGIN, podWorkDir, useNodeWorld, type NodeWorld } from "../support/node-world.js";
import { playsApi } from "../support/play-harness.js";
import { GitHubSim, type SimDelivery } from "../support/play-github.js";
import { git, listFiles } from "../support/runner-fixture.js";

const ROSTER = {
  rex: { githubUser: "rex-agent", role: "implementation", model: "claude-impl" },
  cleo: { githubUser: "cleo-agent", role: "quality", model: "claude-quality" },
  tess: { githubUser: "tess-agent", role: "testing", model: "claude-testing" },
};
const world = useNodeWorld({ agents: ROSTER });
const FEEDBACK = "Needs changes: add a test for GET /health.";
/** The remediation run's request: its instructions (the feedback, fenced as untrusted) arrive in its new message. */
const isRemediation = (req: MessagesRequest) => {
  const text = JSON.stringify(req.messages);
  return text.includes("Remediation 1 of") && text.includes(FEEDBACK);
};
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()?.();
});

/** The three agents' models: each stage does its one thing, then ends its turn. */
function roster(w: NodeWorld, workDir: string): (req: MessagesRequest) => ScriptTurn {
  return (req) => {
    if (toolResultsSincePrompt(req) > 0) return { text: "Done." };
    const text = JSON.stringify(req.messages);
    switch (req.model) {
      case ROSTER.rex.model: {
        // The remediation run continues the implementation session.
        if (isRemediation(req))
          return { tool: "Write", input: { file_path: `${workDir}/health.test.js`, content: "// GET /health returns 200\n" } };
        const task = /task (\d+)/i.exec(text)?.[1] ?? "x";
        return { tool: "Write", input: { file_path: `${workDir}/health-${task}.js`, content: "export const health = () => 200;\n" } };
      }
      case ROSTER.cleo.model:
        return { tool: "mcp__github__add_pull_request_label", input: { label: "ready-for-qa" } };
      case ROSTER.tess.model: {
        const asked = w.github.state.reviews.some((r) => r.state === "CHANGES_REQUESTED");
        return asked
          ? { tool: "mcp__github__submit_pull_request_review", input: { event: "APPROVE", body: "All acceptance criteria pass." } }
          : { tool: "mcp__github__submit_pull_request_review", input: { event: "REQUEST_CHANGES", body: FEEDBACK } };
      }
      default:
        return { text: `No script for model ${String(req.model)}.` };
    }
  };
}

/**
 * GitHub's webhooks, from what really happened: a new PR, a label, a review, a push to a PR's
 * branch (read from the git server, so the PR's head is the real commit).
 */
function forwardDeliveries(w: NodeWorld, sim: GitHubSim): { sent: string[]; stop(): Promise<void> } {
  const sent: string[] = [];
  const heads = new Map<number, string>();
  const done = new Set<string>();
  const send = async (key: string, d: SimDelivery) => {
    done.add(key);
    const status = await w.deliver(d.event, d.payload);
    sent.push(`${key} → ${status}`);
  };
  const users = new Set(Object.values(ROSTER).map((a) => a.githubUser));
  const tick = async () => {
    const bare = w.bare("target");
    for (const p of w.github.pullsFor("org", "target")) {
      if (p.state !== "open") continue;
      const head = git(bare, "rev-parse", `refs/heads/${p.head}`);
      if (!heads.has(p.number)) {
        heads.set(p.number, head);
        p.headSha = head;
        p.commits = [{ sha: head, author: p.createdBy, committer: p.createdBy }];
        await send(`opened #${p.number}`, sim.opened(p.number));
      } else if (heads.get(p.number) !== head) {
        heads.set(p.number, head);
        const name = git(bare, "log", "-1", "--format=%an", head);
        await send(
          `push #${p.number} ${head.slice(0, 7)} by ${name}`,
          sim.pushed(p.number, users.has(name) ? name : ROSTER.rex.githubUser, head),
        );
      }
    }
    for (const e of w.github.state.issueEvents)
      if (e.event === "labeled" && e.label && !done.has(`label ${e.id}`))
        await send(`label ${e.id}`, sim.addLabel(e.issueNumber, e.label, e.actor));
    for (const r of w.github.state.reviews) if (!done.has(`review ${r.id}`)) await send(`review ${r.id}`, sim.reviewed(r));
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      await tick();
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    sent,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe("a Play on the real node", () => {
  it(
    "implementation → quality labels → testing requests changes → remediation resumes and pushes → QA again → approve → merge → next task",
    {
      timeout: 1_200_000,
    },
    async () => {
      const w = world();
      const workDir = podWorkDir("services/api");
      w.model.setResponder(roster(w, workDir));
      const sim = new GitHubSim(w.github, "org", "target");
      const fwd = forwardDeliveries(w, sim);
      stops.push(() => fwd.stop());
      const plays = playsApi(w.cp.kubeConfig);
      const play = await plays.create({
        apiVersion: "orchestrator.platform/v1",
        kind: "Play",
        metadata: { name: "walk", namespace: w.ns },
        spec: {
          service: "play-api",
          repositoryUrl: w.repoUrl("target"),
          docsRepositoryUrl: w.repoUrl("docs"),
          workingDirectory: "services/api",
          tasks: [61, 62],
        },
      } as Play);
      const status = async () => (await plays.get(w.ns, "walk")).status;
      const t0 = Date.now();
      const waitRun = async (taskId: number, stage: RunStage, n: number, phase?: string): Promise<CodeRun> => {
        const name = stageRunName(play, taskId, stage, n);
        const deadline = Date.now() + 240_000;
        for (;;) {
          const run = (await plays.runs(w.ns)).find((r) => r.metadata.name === name);
          if (run?.status?.phase === "Failed") throw new Error(`${name} failed: ${JSON.stringify(run.status)}`);
          if (run && (!phase || run.status?.phase === phase)) {
            console.log(`[play] ${((Date.now() - t0) / 1000).toFixed(1)} s: task ${taskId} ${stage} ${n} ${phase ?? "created"}`);
            return run;
          }
          if (Date.now() > deadline)
            throw new Error(
              `no ${stage} run ${n} of task ${taskId}${phase ? ` ${phase}` : ""}; Play: ${JSON.stringify(await status())}; sent: ${fwd.sent.join(", ")}`,
            );
          await new Promise((r) => setTimeout(r, 1000));
        }
      };

      const impl = await waitRun(61, "implementation", 0, "Succeeded");
      const [pr] = w.github.pullsFor("org", "target");
      expect(pr?.labels).toContain("task-61");
      expect(pr?.createdBy).toBe(ROSTER.rex.githubUser);
      expect(impl.status?.pullRequestUrl).toBe(pr?.html_url);

      // Quality labels the PR through the channel's tool, as its own user.
      const q0 = await waitRun(61, "quality", 0, "Succeeded");
      expect(q0.spec.githubUser).toBe(ROSTER.cleo.githubUser);
      expect(w.github.state.issueEvents.find((e) => e.label === "ready-for-qa")?.actor).toBe(ROSTER.cleo.githubUser);

      // Testing requests changes once; the remediation run resumes the implementation session and pushes.
      // The testing run that asked for changes ends on its own (its verdict is the review).
      await waitRun(61, "testing", 0, "Succeeded");
      const asked = w.github.state.reviews.find((r) => r.state === "CHANGES_REQUESTED");
      expect(asked).toMatchObject({ user: ROSTER.tess.githubUser, body: FEEDBACK, pullNumber: pr?.number });
      const fix = await waitRun(61, "remediation", 1, "Succeeded");
      expect(fix.spec).toMatchObject({ githubUser: ROSTER.rex.githubUser, continueSession: true });
      const rex = w.model.mainRequests().filter((r) => r.body?.model === ROSTER.rex.model);
      const resumed = rex.find((r) => r.body !== null && isRemediation(r.body));
      expect(
        resumed,
        `a remediation request among the implementation agent's (remediation run: ${JSON.stringify(fix.status)}): ${rex.map((r) => JSON.stringify(r.body?.system).slice(-1500)).join("\n---\n")}`,
      ).toBeDefined();
      expect(JSON.stringify(resumed?.body?.messages), "the remediation request replays the implementation session").toContain(
        "health-61.js",
      );
      expect(listFiles(w.bare("target"), pr!.head)).toEqual(
        expect.arrayContaining(["services/api/health-61.js", "services/api/health.test.js"]),
      );

      // QA starts over on the new head; testing approves; the Play waits for the merge.
      await waitRun(61, "quality", 1, "Succeeded");
      await waitRun(61, "testing", 1, "Succeeded");
      expect(w.github.state.reviews.filter((r) => r.state === "APPROVED").map((r) => r.user)).toEqual([ROSTER.tess.githubUser]);
      for (let s = await status(); !(s?.stage === "merge" && s.reason === "WaitingForMerge"); s = await status()) {
        if (s?.phase === "Failed") throw new Error(`Play failed: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }

      // The double merges; the next task starts.
      const merged = sim.merge(pr!.number);
      expect(await w.deliver(merged.event, merged.payload)).toBeLessThan(300);
      await waitRun(62, "implementation", 0);

      // GitHub: one check run per stage run of task 61, on the PR; one progress comment.
      const stageRuns = (await plays.runs(w.ns)).filter((r) => r.spec.taskId === 61).map((r) => r.metadata.name!);
      expect(stageRuns).toHaveLength(6);
      for (const run of stageRuns)
        expect(
          w.github.state.checkRuns.filter((c) => c.externalId?.endsWith(`:${run}`)),
          run,
        ).toHaveLength(1);
      const check = (stage: RunStage, n: number) =>
        w.github.state.checkRuns.find((c) => c.externalId?.endsWith(`:${stageRunName(play, 61, stage, n)}`));
      expect(check("testing", 0)?.conclusion, "the testing run that asked for changes did not pass").toBe("failure");
      expect(check("remediation", 1)?.conclusion).toBe("success");
      expect(check("testing", 1)?.conclusion).toBe("success");
      expect(check("testing", 1)?.headSha, "the last check is on the remediated head").toBe(
        git(w.bare("target"), "rev-parse", `refs/heads/${pr!.head}`),
      );
      const progress = w.github.state.comments.filter((c) => c.user === CONTROLLER_LOGIN && c.issueNumber === pr!.number);
      expect(progress).toHaveLength(1);
      expect(w.github.state.violations).toEqual([]);
    },
  );
});
