/**
 * The controller process is killed (SIGKILL) and restarted in the middle of 50 runs: every run
 * still finishes exactly once, with exactly one Job per attempt (deterministic names make a
 * repeated create after the restart find the Job that already exists).
 */
import { BatchV1Api, CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { useControlPlane, newNamespace } from "../support/cluster.js";
import { codeRun, createAgentSecrets, runsApi, startControllerProcess, waitFor } from "../support/controller-harness.js";

const cluster = useControlPlane("full", { crdPaths: ["infra/charts/orchestrator/crds"] });
const N = 50;

describe("controller restart", () => {
  it(`finishes ${N} runs exactly once across a SIGKILL of the controller`, { timeout: 400_000 }, async () => {
    const cp = cluster();
    const ns = await newNamespace("restart");
    await createAgentSecrets(cp.kubeConfig, ns);
    const runs = runsApi(cp.kubeConfig);
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    // The runs are kubectl-made (requester `kubernetes`): a quota above N lets them all run at once.
    const config =
      "concurrency: {perService: 1}\njob: {maxRetries: 0}\ncontroller: {workers: 4, resyncSeconds: 30}\nauthorization: {quotas: {maxActiveRuns: 1000}}\n";

    const first = await startControllerProcess(cp.kubeconfigPath, ns, config);
    await first.ready().catch(async (e) => {
      first.child.kill("SIGKILL");
      throw new Error(`${(e as Error).message}\n${(await first.child).all}`);
    });
    // One service per run so they all may run at once; each pod runs 3 s.
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        runs.create(codeRun(ns, `r${i}`, { service: `svc-${i}`, taskId: i + 1, env: { KWOK_RUN_DURATION: "3s" } })),
      ),
    );
    const jobsBeforeKill = await waitFor(
      async () => {
        const n = (await batch.listNamespacedJob({ namespace: ns })).items.length;
        return n >= 10 && n;
      },
      60_000,
      "some Jobs before the kill",
    );
    first.child.kill("SIGKILL");
    await first.child;
    first.cleanup();
    console.log(`[restart] killed the controller with ${jobsBeforeKill} of ${N} Jobs created`);
    expect(jobsBeforeKill).toBeLessThan(N + 1);

    const second = await startControllerProcess(cp.kubeconfigPath, ns, config);
    try {
      await second.ready();
      const all = await waitFor(
        async () => {
          const items = await runs.list(ns);
          return items.length === N && items.every((r) => r.status?.phase === "Succeeded") && items;
        },
        180_000,
        "all runs Succeeded",
      );
      const jobs = (await batch.listNamespacedJob({ namespace: ns })).items;
      const events = (await core.listNamespacedEvent({ namespace: ns })).items;
      for (const run of all as CodeRun[]) {
        const uid = run.metadata.uid;
        const mine = jobs.filter((j) => j.metadata?.labels?.["orchestrator.platform/run-uid"] === uid);
        expect(mine.length, run.metadata.name).toBe(1);
        expect(run.status?.attempts, run.metadata.name).toBe(1);
        expect(events.filter((e) => e.involvedObject.uid === uid && e.reason === "Succeeded").length, run.metadata.name).toBe(1);
        expect(events.filter((e) => e.involvedObject.uid === uid && e.reason === "JobCreated").length, run.metadata.name).toBe(1);
      }
      expect(jobs.length).toBe(N);
    } finally {
      second.child.kill("SIGTERM");
      await second.child;
      second.cleanup();
    }
  });
});
