/** The Play controller does not hold the process hostage when Plays cannot work (CRD or RBAC missing). */
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/config.js";
import { Manager } from "../../src/controller/manager.js";
import type { KubeClients } from "../../src/kube/clients.js";
import { createInformerSource } from "../../src/kube/informer.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { PlayController } from "../../src/play/controller.js";
import type { PlayKube } from "../../src/play/ports.js";

function controllerFailingWith(code: number): { manager: Manager; plays: PlayController } {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const clients = {
    kc,
    custom: { listNamespacedCustomObject: async () => Promise.reject(Object.assign(new Error(`HTTP ${code}`), { code })) },
  } as unknown as KubeClients;
  const logger = createLogger({ level: "silent" });
  const metrics = createMetrics();
  const manager = new Manager({ source: createInformerSource(clients, logger), namespace: "orchestrator", logger, metrics });
  const plays = new PlayController({
    manager,
    kube: {} as PlayKube,
    github: {} as never,
    reporter: {} as never,
    config: parseConfig(null, {}),
    logger,
    metrics,
  });
  return { manager, plays };
}

describe("PlayController without the Play CRD or RBAC", () => {
  it.each([
    [404, /CRD \(plays.orchestrator.platform\) is not installed: kubectl apply -f infra\/charts\/orchestrator\/crds\/platform-crds.yaml/],
    [403, /may not list Plays in orchestrator \(403\): upgrade the chart's RBAC/],
  ])("HTTP %s: ready (runs keep working), Plays off with the reason", async (code, reason) => {
    const { manager, plays } = controllerFailingWith(code);
    await manager.start();
    expect(manager.isReady()).toBe(true);
    expect(manager.isAlive()).toBe(true);
    expect(manager.readinessDetail()["controller:plays"]).toMatch(reason);
    expect(await plays.enqueueForDelivery("push", { repository: { full_name: "acme/api" }, ref: "refs/heads/task-1" })).toEqual([]);
    await manager.stop();
  });
});
