/**
 * The whole system on the real node, from the REST API to a pull request: the orchestrator (a
 * child process) creates the run's Job, the agent pod runs the real agent runner and the real
 * Claude Code CLI (scripted model on the host), pushes to a real git server and opens the PR on
 * the OpenAPI-checked GitHub double. No pod is simulated.
 */
import { BatchV1Api, CoreV1Api, type CoreV1Event } from "@kubernetes/client-node";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import type { CodeRun } from "../../src/api/types.js";
import { workspacePvcName } from "../../src/manifests/names.js";
import { toolResults, toolResultsSincePrompt, type MessagesRequest, type ScriptTurn } from "../support/model-server.js";
import { GITHUB_USER, finished, podWorkDir, useNodeWorld } from "../support/node-world.js";
import { listFiles, readFileAt } from "../support/runner-fixture.js";

const world = useNodeWorld();

/** An agent that writes `file` in its working directory, checks git status, then finishes. */
function writingAgent(workDir: string, file: string, content: string): (req: MessagesRequest) => ScriptTurn {
  return (req) => {
    const done = toolResults(req);
    if (done === 0) return { tool: "Write", input: { file_path: `${workDir}/${file}`, content } };
    if (done === 1) return { tool: "Bash", input: { command: "git status --short", description: "Show changes" } };
    return { text: `Implemented ${file}.` };
  };
}

describe("code task through the cluster", () => {
  it("POST /api/v1/pm/tasks → CodeRun → Job → agent pod → Claude Code → pushed branch → one PR", async () => {
    const w = world();
    w.model.setResponder(writingAgent(podWorkDir("services/api"), "health.js", "export const health = () => ({ status: 'ok' });\n"));
    const name = await w.submitCode(7, "api");
    const run = (await w.waitForRun("CodeRun", name, finished)) as CodeRun;
    expect(run.status?.phase, JSON.stringify(run.status)).toBe("Succeeded");

    // One PR for the run's branch, and the agent's file on that branch of the real git server.
    const pulls = w.github.pullsFor("org", "target");
    expect(pulls).toHaveLength(1);
    expect(run.status?.pullRequestUrl).toBe(pulls[0]?.html_url);
    const branch = pulls[0]?.head ?? "";
    expect(listFiles(w.bare("target"), branch)).toContain("services/api/health.js");
    expect(readFileAt(w.bare("target"), branch, "services/api/health.js")).toContain("status: 'ok'");

    // Turns and cost come from Claude Code's own result, through the termination message.
    expect(run.status?.result?.turns).toBeGreaterThanOrEqual(2);
    expect(run.status?.result?.costUsd).toBeGreaterThan(0);
    // The model was really asked by the agent in the pod, with the key from the Secret.
    expect(w.model.mainRequests().length).toBeGreaterThanOrEqual(3);

    const core = w.cp.kubeConfig.makeApiClient(CoreV1Api);
    const events = (await core.listNamespacedEvent({ namespace: w.ns, fieldSelector: `involvedObject.name=${name}` }))
      .items as CoreV1Event[];
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["JobCreated", "Succeeded"]));

    // The agent's progress: kubectl logs of the Job and the REST logs endpoint show the same stream.
    const jobName = run.status?.jobName ?? "";
    const batch = w.cp.kubeConfig.makeApiClient(BatchV1Api);
    expect((await batch.readNamespacedJob({ name: jobName, namespace: w.ns })).status?.succeeded).toBe(1);
    // Both containers ended by themselves, nothing stopped the channel: it ended once the agent
    // had gone, with its own record of the result (the one the run shows) as its termination message.
    const [pod] = (await core.listNamespacedPod({ namespace: w.ns, labelSelector: `job-name=${jobName}` })).items;
    const ended = Object.fromEntries((pod?.status?.containerStatuses ?? []).map((c) => [c.name, c.state?.terminated]));
    expect(Object.keys(ended).sort()).toEqual(["channel", "claude-code"]);
    expect(ended["claude-code"]).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(ended.channel).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(JSON.parse(ended.channel?.message ?? "{}")).toMatchObject({ outcome: "succeeded", pullRequestUrl: run.status?.pullRequestUrl });
    const kubectl = await execa(inject("kubectl"), ["--kubeconfig", w.cp.kubeconfigPath, "-n", w.ns, "logs", `job/${jobName}`]);
    expect(kubectl.stdout).toMatch(/Claude Code session started/);
    expect(kubectl.stdout).toMatch(/health\.js/);
    const logs = await w.api("GET", `/api/v1/runs/coderun/${name}/logs`);
    expect(logs.status).toBe(200);
    expect(logs.text).toMatch(/Claude Code session started/);
  });
});

/** The text of every tool result in a request. */
function toolResultTexts(req: MessagesRequest): string[] {
  const out: string[] = [];
  for (const m of req.messages) {
    if (!Array.isArray(m.content)) continue;
    for (const c of m.content) {
      if (c.type !== "tool_result") continue;
      const content = c.content as string | { type: string; text?: string }[] | undefined;
      out.push(typeof content === "string" ? content : (content ?? []).map((x) => x.text ?? "").join(""));
    }
  }
  return out;
}

/** Text of the request's messages, to tell concurrent agents (and their tool results) apart. */
function text(req: MessagesRequest): string {
  return JSON.stringify(req.messages);
}

/** Containers of the node that belong to pods of `ns` whose names start with `podNamePrefix` (from ctr labels). */
async function nodeContainers(ns: string, podNamePrefix: string): Promise<string[]> {
  const w = world();
  const out = await w.cp.realNode?.ctr(["containers", "list"]);
  const ids = (out ?? "")
    .split("\n")
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? "")
    .filter(Boolean);
  const mine: string[] = [];
  for (const id of ids) {
    // A container may go between the list and its info: gone is what the caller waits for.
    const info = await w.cp.realNode?.ctr(["containers", "info", id]).catch(() => "");
    if (info?.includes(`"io.kubernetes.pod.namespace": "${ns}"`) && info.includes(podNamePrefix)) mine.push(id);
  }
  return mine;
}

describe("docs task through the cluster", () => {
  it("POST /api/v1/pm/docs/generate → DocsRun → docs PR", async () => {
    const w = world();
    w.model.setResponder((req) => {
      const done = toolResults(req);
      if (done === 0)
        return {
          tool: "Write",
          input: { file_path: "/workspace/target-repo/.taskmaster/docs/task-7/notes.md", content: "# Notes\nHealth endpoint design.\n" },
        };
      return { text: "Documentation written." };
    });
    const r = await w.api("POST", "/api/v1/pm/docs/generate", {
      repository_url: w.repoUrl("docs"),
      working_directory: ".",
      source_branch: "main",
      github_user: GITHUB_USER,
    });
    expect(r.status, r.text).toBe(201);
    const name = (r.body as { data: { docsrun_name: string } }).data.docsrun_name;
    const run = await w.waitForRun("DocsRun", name, finished);
    expect(run.status?.phase, JSON.stringify(run.status)).toBe("Succeeded");
    const pulls = w.github.pullsFor("org", "docs");
    expect(pulls).toHaveLength(1);
    expect(run.status?.pullRequestUrl).toBe(pulls[0]?.html_url);
    expect(listFiles(w.bare("docs"), pulls[0]?.head ?? "")).toContain(".taskmaster/docs/task-7/notes.md");
  });
});

describe("cancel mid-run", () => {
  it("stops the agent, pushes its work in progress, ends Cancelled and leaves no container behind", async () => {
    const w = world();
    let release: (() => void) | undefined;
    const thinking = new Promise<void>((r) => (release = r));
    let asked = false;
    w.model.setResponder(async (req) => {
      if (toolResults(req) === 0)
        return { tool: "Write", input: { file_path: `${podWorkDir("services/api")}/wip.js`, content: "export const wip = true;\n" } };
      asked = true;
      await Promise.race([thinking, new Promise((r) => setTimeout(r, 120_000))]);
      return { text: "Stopped." };
    });
    const name = await w.submitCode(21, "cancel");
    const deadline = Date.now() + 180_000;
    while (!asked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(asked).toBe(true);
    const c = await w.api("POST", `/api/v1/runs/coderun/${name}/cancel`);
    expect(c.status, c.text).toBeLessThan(300);
    const run = await w.waitForRun("CodeRun", name, finished);
    release?.();
    expect(run.status?.phase).toBe("Cancelled");
    // Work in progress reached the remote: the branch holds the agent's file.
    const branch = `feature/task-21-implementation`;
    const deadline2 = Date.now() + 60_000;
    let files: string[] = [];
    while (Date.now() < deadline2) {
      files = (() => {
        try {
          return listFiles(w.bare("target"), branch);
        } catch {
          return [];
        }
      })();
      if (files.includes("services/api/wip.js")) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(files).toContain("services/api/wip.js");
    // The pod is gone and containerd holds no container of it. kubelet removes a deleted pod's
    // stopped containers in its container garbage collection, which runs once a minute.
    const core = w.cp.kubeConfig.makeApiClient(CoreV1Api);
    const deadline3 = Date.now() + 150_000;
    let pods = 1;
    let containers: string[] = ["?"];
    while (Date.now() < deadline3 && (pods > 0 || containers.length > 0)) {
      pods = (await core.listNamespacedPod({ namespace: w.ns, labelSelector: `job-name=${run.status?.jobName ?? ""}` })).items.length;
      containers = await nodeContainers(w.ns, run.status?.jobName ?? "\u0000");
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(pods).toBe(0);
    expect(containers).toEqual([]);
  });
});

describe("retry", () => {
  it("a refused push fails attempt 1; attempt 2 succeeds on the same workspace volume", async () => {
    const w = world();
    w.model.setResponder((req) => {
      const done = toolResultsSincePrompt(req);
      if (done === 0)
        return {
          tool: "Bash",
          // In the identity's home, which stays on the workspace volume between attempts.
          input: { command: 'echo attempt >> "$HOME/attempts.log"; wc -l < "$HOME/attempts.log"', description: "Count attempts" },
        };
      if (done === 1)
        return { tool: "Write", input: { file_path: `${podWorkDir("services/api")}/retry.js`, content: "export const retried = true;\n" } };
      return { text: "Done." };
    });
    w.gitHttp.refusePushes(1);
    const name = await w.submitCode(31, "retry");
    const run = await w.waitForRun("CodeRun", name, finished, 300_000);
    expect(run.status?.phase, JSON.stringify(run.status)).toBe("Succeeded");
    expect(run.status?.attempts).toBe(2);
    // Attempt 2's agent counted two lines: the file written by attempt 1 was still on the volume.
    const results = w.model.mainRequests().flatMap((r) => (r.body ? toolResultTexts(r.body) : []));
    expect(
      // The command's output is the first line; Claude Code appends system reminders after it.
      results.map((t) => t.trim().split("\n")[0]),
      // Each request as its message shapes, e.g. "user:text,text assistant:tool_use user:tool_result".
      w.model
        .mainRequests()
        .map((r) =>
          (r.body?.messages ?? [])
            .map((m) => `${m.role}:${Array.isArray(m.content) ? m.content.map((c) => c.type).join(",") : "string"}`)
            .join(" "),
        )
        .join("\n") + `\ntool results: ${JSON.stringify(results)}`,
    ).toContain("2");
    const core = w.cp.kubeConfig.makeApiClient(CoreV1Api);
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: workspacePvcName("retry", "org/target"), namespace: w.ns });
    expect(pvc.status?.phase).toBe("Bound");
    expect(pvc.spec?.storageClassName).toBe("local-path");
    expect(w.github.pullsFor("org", "target").filter((p) => p.head === "feature/task-31-implementation")).toHaveLength(1);
  });
});

describe("two runs of one service", () => {
  it("take turns on the workspace and both deliver", async () => {
    const w = world();
    w.model.setResponder((req) => {
      const t = text(req);
      const task = /task-(41|42)/.exec(t)?.[1] ?? "41";
      if (toolResults(req) === 0)
        return {
          tool: "Write",
          input: { file_path: `${podWorkDir("services/api")}/t${task}.js`, content: `export const t${task} = true;\n` },
        };
      return { text: "Done." };
    });
    const [a, b] = await Promise.all([w.submitCode(41, "shared"), w.submitCode(42, "shared")]);
    const [ra, rb] = await Promise.all([w.waitForRun("CodeRun", a, finished, 300_000), w.waitForRun("CodeRun", b, finished, 300_000)]);
    expect(ra.status?.phase, JSON.stringify(ra.status)).toBe("Succeeded");
    expect(rb.status?.phase, JSON.stringify(rb.status)).toBe("Succeeded");
    // One slot per service: the second Job started only after the first had finished.
    const batch = w.cp.kubeConfig.makeApiClient(BatchV1Api);
    const [ja, jb] = await Promise.all([ra, rb].map((r) => batch.readNamespacedJob({ name: r.status?.jobName ?? "", namespace: w.ns })));
    const spans = [ja, jb]
      .map((j) => ({ start: new Date(j?.status?.startTime ?? 0).getTime(), end: new Date(j?.status?.completionTime ?? 0).getTime() }))
      .sort((x, y) => x.start - y.start);
    expect(spans[1]!.start).toBeGreaterThanOrEqual(spans[0]!.end - 1000);
    const heads = w.github.pullsFor("org", "target").map((p) => p.head);
    expect(heads).toEqual(expect.arrayContaining(["feature/task-41-implementation", "feature/task-42-implementation"]));
  });
});

describe("controller killed mid-run", () => {
  it("the agent keeps working and the restarted controller records its result exactly once", async () => {
    const w = world();
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    let asked = false;
    w.model.setResponder(async (req) => {
      if (toolResults(req) === 0) {
        asked = true;
        await Promise.race([gate, new Promise((r) => setTimeout(r, 120_000))]);
        return {
          tool: "Write",
          input: { file_path: `${podWorkDir("services/api")}/survivor.js`, content: "export const survived = true;\n" },
        };
      }
      return { text: "Done." };
    });
    const name = await w.submitCode(51, "killed");
    const deadline = Date.now() + 180_000;
    while (!asked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(asked).toBe(true);
    await w.orchestrator.kill();
    release?.();
    // With no controller running, the agent finishes and its Job completes on its own.
    const batch = w.cp.kubeConfig.makeApiClient(BatchV1Api);
    const jobs = async () => (await batch.listNamespacedJob({ namespace: w.ns, labelSelector: `orchestrator.platform/run=${name}` })).items;
    const deadline2 = Date.now() + 180_000;
    while (Date.now() < deadline2 && !(await jobs()).some((j) => (j.status?.succeeded ?? 0) > 0))
      await new Promise((r) => setTimeout(r, 500));
    expect((await w.getRun("CodeRun", name)).status?.phase).not.toBe("Succeeded");
    await w.startOrchestrator();
    const run = await w.waitForRun("CodeRun", name, finished);
    expect(run.status?.phase, JSON.stringify(run.status)).toBe("Succeeded");
    expect(await jobs()).toHaveLength(1);
    const core = w.cp.kubeConfig.makeApiClient(CoreV1Api);
    const events = (await core.listNamespacedEvent({ namespace: w.ns, fieldSelector: `involvedObject.name=${name}` })).items;
    expect(events.filter((e) => e.reason === "Succeeded").map((e) => e.count ?? 1)).toEqual([1]);
    expect(w.github.pullsFor("org", "target").filter((p) => p.head === "feature/task-51-implementation")).toHaveLength(1);
  });
});
