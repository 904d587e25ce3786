// npm run bench:e2e: the whole chain on the real node, measured against its floors in one run.
//
//   floor     a bare pod: create → Running (what Kubernetes itself needs to start a container)
//   direct    the agent's two processes (channel and runner, compiled) started directly on the
//             host → the agent's first model request (clone, task files, Claude Code start-up:
//             the work that is not the cluster's)
//   chain     POST /api/v1/pm/tasks → the agent's first model request, through the orchestrator,
//             a CodeRun, a Job and an agent pod on the real node
//
// Reported: p50/p99 of `chain` for 1 run at a time (a service whose workspace exists, and the
// first run of a new service) and for 10 runs across 10 services at once, with the stages of a
// single run from the pod's clocks;
// the chain's overhead (chain − direct, model time excluded) and its distance to the floor.
// Targets: chain p50 < 4 s for a single run; overhead within 2 s of the floor.
import fs from "node:fs";
import path from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { execa } from "execa";
import { Labels } from "../src/api/constants.js";
import { AgentPaths, TaskFileKeys, logContainerName } from "../src/api/runner-contract.js";
import { ensureControlPlaneBinaries, repoRoot } from "../src/controlplane/index.js";
import { startNodeWorld, finished, GITHUB_USER, API_KEY, TOKEN } from "../tests/support/node-world.js";
import { nodeImages } from "../tests/support/real-node.js";
import { createAgentRoot, createBareRepo, launchRunner } from "../tests/support/runner-fixture.js";
import type { MessagesRequest } from "../tests/support/model-server.js";

const SINGLE_RUNS = Number(process.env.BENCH_E2E_SINGLE ?? 5);
/** First runs of new services (their workspace claim is provisioned on the way). */
const NEW_SERVICE_RUNS = 3;
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
    const tasks = Array.from({ length: SINGLE_RUNS + NEW_SERVICE_RUNS + PARALLEL + 1 }, (_, i) => 101 + i);
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
            // Restricted, as the agent pods (the namespace enforces the Pod Security Standard).
            securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
              {
                name: "c",
                image: images.helper.ref,
                imagePullPolicy: "Never",
                command: ["sleep", "60"],
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
              },
            ],
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
      // The compiled channel and runner, as the image runs them (no TypeScript loader in the measurement).
      const t = performance.now();
      const run = await launchRunner(
        agent,
        { ANTHROPIC_API_KEY: API_KEY, ANTHROPIC_BASE_URL: w.model.url, GITHUB_TOKEN: TOKEN, NODE_EXTRA_CA_CERTS: w.cp.certs.caCert },
        { compiled: true },
      );
      const at = firstRequest.get(task);
      if (at === undefined) throw new Error(`direct run ${i}: no model request (exit ${run.exitCode}):\n${run.stdout}\n${run.stderr}`);
      direct.push(at - t);
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

    // Warm-up (first PVC bind, first image use), not counted; run to its end, so the first
    // measured run does not wait for the workspace the warm-up still holds.
    const warm = await submit(tasks[0]!, "bench-warm");
    await waitFirst(warm.task, warm.t);
    await w.waitForRun("CodeRun", warm.name, finished);

    // Where a single run's time goes, from the clocks of the pod's processes (the node is this
    // machine): each log line's own time, not kubelet's stamp, which comes later.
    const stages: Record<string, number>[] = [];
    const breakdown = async (name: string, submittedAt: number, firstAt: number) => {
      const epoch = Date.now() - performance.now();
      const pods = await core.listNamespacedPod({ namespace: w.ns, labelSelector: `${Labels.runName}=${name}` });
      const pod = pods.items[0];
      if (!pod?.metadata?.name) return;
      const logOf = async (container: string) =>
        String(await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: w.ns, container }))
          .split("\n")
          .flatMap((line) => {
            try {
              const entry = JSON.parse(line) as { msg?: string; time?: string | number };
              return [{ msg: entry.msg ?? "", time: typeof entry.time === "number" ? entry.time : Date.parse(String(entry.time)) }];
            } catch {
              return [];
            }
          });
      const [channel, agent] = await Promise.all([logOf(logContainerName("CodeRun", "channel")), logOf(logContainerName("CodeRun"))]);
      const at = (log: { msg: string; time: number }[], msg: string) => {
        const entry = log.find((e) => e.msg.startsWith(msg));
        return entry ? entry.time - (epoch + submittedAt) : NaN;
      };
      stages.push({
        channelListening: at(channel, "Started the agent's channel"),
        remotesChecked: at(channel, "Checked GitHub access"),
        taskDocsFetched: at(channel, "Fetched task documents"),
        branchPrepared: at(channel, "Prepared branch"),
        taskHandedOut: at(channel, "Opened the agent's model proxy"),
        claudeStarted: at(agent, "Started Claude Code"),
        firstModelRequest: firstAt,
      });
    };
    const single: number[] = [];
    const newService: number[] = [];
    const one = async (task: number, service: string, into: number[]) => {
      const s = await submit(task, service);
      into.push(await waitFirst(s.task, s.t));
      await w.waitForRun("CodeRun", s.name, finished);
      return s;
    };
    // A service's later tasks: its workspace claim exists (the warm-up made it).
    for (let i = 1; i <= SINGLE_RUNS; i++) {
      const s = await one(tasks[i]!, "bench-warm", single);
      await breakdown(s.name, s.t, single.at(-1)!);
    }
    for (let i = 0; i < NEW_SERVICE_RUNS; i++) await one(tasks[SINGLE_RUNS + 1 + i]!, `bench-new${i}`, newService);
    const from = SINGLE_RUNS + NEW_SERVICE_RUNS + 1;
    const burst = await Promise.all(tasks.slice(from, from + PARALLEL).map((task, i) => submit(task, `bench-p${i}`)));
    const parallel = await Promise.all(burst.map((s) => waitFirst(s.task, s.t)));

    const result = {
      floorPodRunningMs: { p50: pct(floor, 50), p99: pct(floor, 99), samples: floor.map(Math.round) },
      directRunnerToFirstRequestMs: { p50: pct(direct, 50), samples: direct.map(Math.round) },
      chainSingleMs: { p50: pct(single, 50), p99: pct(single, 99), samples: single.map(Math.round) },
      chainNewServiceMs: { p50: pct(newService, 50), samples: newService.map(Math.round) },
      /** ms after submit, from the log lines' own times (the node is this machine). */
      singleStagesP50Ms: Object.fromEntries(
        Object.keys(stages[0] ?? {}).map((k) => [
          k,
          Math.round(
            pct(
              stages.map((s) => s[k]!),
              50,
            ),
          ),
        ]),
      ),
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
    console.log(`submit → 1st model request, 1st run of a new service  p50 ${sec(result.chainNewServiceMs.p50)}`);
    console.log(`  stages of a single run (p50, ms after submit): ${JSON.stringify(result.singleStagesP50Ms)}`);
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
