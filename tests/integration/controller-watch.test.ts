/**
 * Watches break when the API server restarts (an upgrade, a crash). The controller's informers
 * must notice, report not-ready while they are down, reconnect with backoff, and keep
 * reconciling: a run created after the restart still gets its Job.
 */
import { BatchV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { useControlPlane, newNamespace } from "../support/cluster.js";
import { codeRun, createAgentSecrets, runsApi, startInProcessController, waitFor } from "../support/controller-harness.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });

describe("controller across an API server restart", () => {
  it("reconnects its watches and keeps reconciling", { timeout: 180_000 }, async () => {
    const cp = cluster();
    const ns = await newNamespace("watch");
    await createAgentSecrets(cp.kubeConfig, ns);
    const runs = runsApi(cp.kubeConfig);
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const { manager, started } = startInProcessController(
      cp.kubeConfig,
      ns,
      "concurrency: {perService: 5}\ncontroller: {resyncSeconds: 600}\n",
    );
    await started;
    try {
      await runs.create(codeRun(ns, "before", { service: "a" }));
      await waitFor(
        async () => ((await runs.get("CodeRun", ns, "before")) as CodeRun).status?.phase === "Running",
        20_000,
        "first run Running",
      );

      let sawNotReady = false;
      const probe = setInterval(() => {
        if (!manager.isReady()) sawNotReady = true;
      }, 50);
      const ms = await cp.restartApiServer();
      console.log(`[watch] kube-apiserver restarted in ${ms} ms`);
      await waitFor(async () => manager.isReady(), 60_000, "controller ready again after the restart");
      clearInterval(probe);
      expect(sawNotReady).toBe(true);

      // Only a working watch tells the controller about this run (resync is 10 minutes away).
      await runs.create(codeRun(ns, "after", { service: "b", taskId: 8 }));
      const st = await waitFor(
        async () => {
          const s = ((await runs.get("CodeRun", ns, "after")) as CodeRun).status;
          return s?.phase === "Running" ? s : undefined;
        },
        60_000,
        "run created after the restart Running",
      );
      const jobs = (await batch.listNamespacedJob({ namespace: ns })).items.map((j) => j.metadata?.name);
      expect(jobs).toContain(st.jobName);
      expect(jobs.length).toBe(2);
    } finally {
      await manager.stop();
    }
  });
});
