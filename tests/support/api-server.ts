/**
 * The orchestrator's HTTP service (REST API, Play routes, /mcp) listening on 127.0.0.1 over a
 * real API server: the Kubernetes RunStore and PlayStore, static token auth. No controller: tests
 * that need runs to progress set status themselves or use startControllerProcess().
 */
import type { FastifyInstance } from "fastify";
import type { KubeConfig } from "@kubernetes/client-node";
import { parseConfig } from "../../src/config/config.js";
import { buildApp, createAuthenticator } from "../../src/http/app.js";
import { createKubePlayStore, createKubeRunStore } from "../../src/kube/run-store.js";
import { registerMcpRoute } from "../../src/mcp/http.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { waitFor } from "./controller-harness.js";

export const SERVICE_TOKEN = "service-test-token-0123456789";

export interface ApiServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startApiServer(kubeConfig: KubeConfig, namespace: string): Promise<ApiServer> {
  const config = parseConfig("", { KUBERNETES_NAMESPACE: namespace, ORCHESTRATOR_API_TOKENS: SERVICE_TOKEN });
  const app = buildApp({
    config,
    runs: createKubeRunStore({ kubeConfig, namespace }),
    plays: createKubePlayStore({ kubeConfig, namespace }),
    auth: createAuthenticator({ tokens: config.apiTokens }),
    readiness: async () => ({ ready: true, checks: {} }),
    metrics: createMetrics(),
    logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    routes: { api: registerMcpRoute },
  });
  // Right after the CRDs are installed the API server may answer 429 ("storage is (re)initializing").
  const runs = createKubeRunStore({ kubeConfig, namespace });
  const plays = createKubePlayStore({ kubeConfig, namespace });
  await waitFor(
    async () => (await Promise.all([runs.list("CodeRun"), runs.list("DocsRun"), plays.list()]), true),
    30_000,
    "the CRDs to serve lists",
  );
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, app, close: () => app.close() };
}
