// npm run bench:e2e: the whole chain on the real node, measured against its floors in one run.
//
//   floor     a bare pod: create → Running (what Kubernetes itself needs to start a container)
//   direct    the agent runner started directly on the host → the agent's first model request
//             (clone, task files, Claude Code start-up: the work that is not the cluster's)
//   chain     POST /api/v1/pm/tasks → the agent's first model request, through the orchestrator,
//             a CodeRun, a Job and an agent pod on the real node
//
// Reported: p50/p99 of `chain` for 1 run at a time and for 10 runs across 10 services at once;
// the chain's overhead (chain − direct, model time excluded) and its distance to the floor.
// Targets: chain p50 < 4 s for a single run; overhead within 2 s of the floor.
import fs from "node:fs";
import path from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { execa } from "execa";
import { AgentPaths, TaskFileKeys } from "../src/api/runner-contract.js";
import { ensureControlPlaneBinaries, repoRoot } from "../src/controlplane/index.js";
import { startNodeWorld, GITHUB_USER, API_KEY, TOKEN } from "../tests/support/node-world.js";
import { nodeImages } from "../tests/support/real-node.js";
import { createAgentRoot, createBareRepo } from "../tests/support/runner-fixture.js";
import type { MessagesRequest } from "../tests/support/model-server.js";

const SINGLE_RUNS = Number(process.env.BENCH_E2E_SINGLE ?? 5);
const PARALLEL = 10;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function taskOf(req: MessagesRequest): number | undefined {
  const m = /task[- ](\d{3})/i.exec(JSON.stringify(req.system ?? "") + JSON.stringify(req.messages));
  return m ? Number(m[1]) : undefined;
}

async function main(): Promise<void> {
  const { binDir } = await ensureControlPlaneBinaries();
  await execa("npm", ["run", "-s", "build"], { cwd: repoRoot(), stdio: "inherit" });
  const log = (l: string) => process.stderr.write(`[bench:e2e] ${l}\n`);
  const w = await startNodeWorld({ binDir, log });
  try {
    const firstRequest = new Map<number, number>();
    w.model.setResponder((req) => {
      const task = taskOf(req);
      if (task !== undefined && !firstRequest.has(task)) firstRequest.set(task, performance.now());
      return { text: "Nothing to change." };
    });
    const tasks = Array.from({ length: SINGLE_RUNS + PARALLEL + 1 }, (_, i) => 101 + i);
    createBareRepo(
      w.bare("bench-docs"),
      Object.fromEntries(
        tasks.flatMap((t) => [
          [`.taskmaster/docs/task-${t}/task.md`, `# Task ${t}\n`],
          [`.taskmaster/docs/task-${t}/prompt.md`, `Implement task-${t}.\n`],
          [`.taskmaster/docs/task-${t}/acceptance-criteria.md`, "- none\n"],
        ]),
      ),
    );

    // Floor: bare pods, create → Running.
    const core = w.cp.kubeConfig.makeApiClient(CoreV1Api);
    const images = await nodeImages();
    const floor: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `floor-${i}`;
      const t = performance.now();
      await core.createNamespacedPod({
        namespace: w.ns,
        body: {
          metadata: { name },
          spec: {
            terminationGracePeriodSeconds: 0,
            containers: [{ name: "c", image: images.helper.ref, imagePullPolicy: "Never", command: ["sleep", "60"] }],
          },
        },
      });
      for (;;) {
        const p = await core.readNamespacedPod({ name, namespace: w.ns });
        if (p.status?.phase === "Running") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      floor.push(performance.now() - t);
      await core.deleteNamespacedPod({ name, namespace: w.ns, gracePeriodSeconds: 0 });
    }

    // Direct: the runner as a host process, same repositories, same model.
    const direct: number[] = [];
    for (let i = 0; i < 3; i++) {
      const task = tasks[tasks.length - 1]! + 100 + i;
      createBareRepo(w.bare(`direct-docs-${i}`), {
        [`.taskmaster/docs/task-${task}/task.md`]: `# Task ${task}\n`,
        [`.taskmaster/docs/task-${task}/prompt.md`]: `Implement task-${task}.\n`,
      });
      const agent = createAgentRoot(w.tmp, `direct-${i}`);
      agent.writeRun({
        kind: "code",
        runName: `direct-${i}`,
        namespace: "bench",
        attempt: 1,
        model: "claude-sonnet-4-20250514",
        repositoryUrl: w.repoUrl("target"),
        workingDirectory: "services/api",
        baseBranch: "main",
        branch: `feature/task-${task}-implementation`,
        githubUser: GITHUB_USER,
        continueSession: false,
        overwriteMemory: false,
        maxTurns: 5,
        timeBudgetSeconds: 120,
        githubApiUrl: w.github.url,
        githubUrl: new URL(w.gitHttp.url).origin,
        prLabels: [],
        taskId: task,
        service: "direct",
        docsRepositoryUrl: w.repoUrl(`direct-docs-${i}`),
        docsBranch: "main",
        docsProjectDirectory: ".",
      });
      // github.caBundle, as the run's ConfigMap carries it.
      fs.copyFileSync(w.cp.certs.caCert, path.join(agent.root, AgentPaths.taskFiles, TaskFileKeys.githubCa));
      // The compiled runner, as the image runs it (no TypeScript loader in the measurement).
      const home = path.join(agent.root, "home");
      fs.mkdirSync(home, { recursive: true });
      const t = performance.now();
      await execa(process.execPath, [path.join(repoRoot(), "dist/cmd/runner.js")], {
        env: {
          PATH: `${path.join(repoRoot(), "node_modules/.bin")}:${process.env.PATH ?? ""}`,
          HOME: home,
          AGENT_ROOT: agent.root,
          ANTHROPIC_API_KEY: API_KEY,
          ANTHROPIC_BASE_URL: w.model.url,
          GITHUB_TOKEN: TOKEN,
          NODE_EXTRA_CA_CERTS: w.cp.certs.caCert,
          DISABLE_AUTOUPDATER: "1",
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        },
        extendEnv: false,
        reject: false,
        timeout: 120_000,
      });
      const at = firstRequest.get(task);
      if (at) direct.push(at - t);
    }

    const submit = async (task: number, service: string) => {
      const t = performance.now();
      const r = await w.api("POST", "/api/v1/pm/tasks", {
        task_id: task,
        service,
        repository_url: w.repoUrl("target"),
        docs_repository_url: w.repoUrl("bench-docs"),
        working_directory: "services/api",
        github_user: GITHUB_USER,
        max_retries: 0,
      });
      if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${r.text}`);
      return { task, t, name: (r.body as { data: { coderun_name: string } }).data.coderun_name };
    };
    const waitFirst = async (task: number, since: number) => {
      const deadline = Date.now() + 600_000;
      while (!firstRequest.has(task)) {
        if (Date.now() > deadline) throw new Error(`task ${task}: no model request within 600 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return (firstRequest.get(task) ?? 0) - since;
    };

    // Warm-up (first PVC bind, first image use), not counted.
    const warm = await submit(tasks[0]!, "bench-warm");
    await waitFirst(warm.task, warm.t);

    const single: number[] = [];
    for (let i = 1; i <= SINGLE_RUNS; i++) {
      const s = await submit(tasks[i]!, `bench-s${i}`);
      single.push(await waitFirst(s.task, s.t));
      await w.waitForRun("CodeRun", s.name, (r) => ["Succeeded", "Failed", "Cancelled"].includes(r.status?.phase ?? ""));
    }
    const burst = await Promise.all(tasks.slice(SINGLE_RUNS + 1, SINGLE_RUNS + 1 + PARALLEL).map((task, i) => submit(task, `bench-p${i}`)));
    const parallel = await Promise.all(burst.map((s) => waitFirst(s.task, s.t)));

    const result = {
      floorPodRunningMs: { p50: pct(floor, 50), p99: pct(floor, 99), samples: floor.map(Math.round) },
      directRunnerToFirstRequestMs: { p50: pct(direct, 50), samples: direct.map(Math.round) },
      chainSingleMs: { p50: pct(single, 50), p99: pct(single, 99), samples: single.map(Math.round) },
      chain10Ms: { p50: pct(parallel, 50), p99: pct(parallel, 99), samples: parallel.map(Math.round) },
      overheadMs: pct(single, 50) - pct(direct, 50),
      overheadMinusFloorMs: pct(single, 50) - pct(direct, 50) - pct(floor, 50),
      targets: {
        singleP50Under4s: pct(single, 50) < 4000,
        overheadWithin2sOfFloor: pct(single, 50) - pct(direct, 50) - pct(floor, 50) < 2000,
      },
    };
    console.log(`floor (bare pod create → Running)   p50 ${sec(result.floorPodRunningMs.p50)}  p99 ${sec(result.floorPodRunningMs.p99)}`);
    console.log(`runner started directly → 1st model request  p50 ${sec(result.directRunnerToFirstRequestMs.p50)}`);
    console.log(
      `submit → 1st model request, 1 run     p50 ${sec(result.chainSingleMs.p50)}  p99 ${sec(result.chainSingleMs.p99)}  (target p50 < 4 s: ${result.targets.singleP50Under4s ? "met" : "NOT met"})`,
    );
    console.log(`submit → 1st model request, 10 runs   p50 ${sec(result.chain10Ms.p50)}  p99 ${sec(result.chain10Ms.p99)}`);
    console.log(
      `chain overhead (chain − direct)        ${sec(result.overheadMs)}; minus floor ${sec(result.overheadMinusFloorMs)} (target < 2 s: ${result.targets.overheadWithin2sOfFloor ? "met" : "NOT met"})`,
    );
    fs.mkdirSync("bench/results", { recursive: true });
    fs.writeFileSync("bench/results/e2e.json", JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2) + "\n");
  } finally {
    await w.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
