/**
 * Unauthenticated operational routes: /health (liveness), /ready (readiness: ready or not, no details), /metrics
 * (Prometheus; serve it on a cluster-internal Service only, never through a public Ingress) and
 * /openapi.json.
 */
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Clock } from "../ports.js";

export type ReadinessCheck = () => Promise<{ ready: boolean; checks: Record<string, boolean | string> }>;

/** A readiness callback that hangs must not hang the probe. */
const READY_TIMEOUT_MS = 2000;

/** Runs the readiness callback with a timeout; a failure is logged and reported as not ready, never thrown. */
async function checkReadiness(
  readiness: ReadinessCheck,
  log: FastifyBaseLogger,
): Promise<{ ready: boolean; checks: Record<string, boolean | string> }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      readiness(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`readiness check took longer than ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    log.warn({ err }, "Readiness check failed");
    return { ready: false, checks: { readiness: (err as Error).message } };
  } finally {
    clearTimeout(timer);
  }
}

/** GET /api/v1/readiness: the checks behind /ready, for authenticated callers (register inside the API scope). */
export function registerReadinessDetailRoute(api: FastifyInstance, readiness: ReadinessCheck): void {
  api.get("/api/v1/readiness", async (req, reply) => {
    const result = await checkReadiness(readiness, req.log);
    return reply.code(result.ready ? 200 : 503).send({ status: result.ready ? "ready" : "not ready", checks: result.checks });
  });
}

export function registerSystemRoutes(
  app: FastifyInstance,
  opts: { version: string; clock: Clock; readiness: ReadinessCheck; registry: Registry; openapi: Record<string, unknown> },
): void {
  // Answering at all proves the process and its event loop are alive; liveness must not depend on
  // the API server (a Kubernetes outage would otherwise restart every replica).
  app.get("/health", async () => ({ status: "healthy", version: opts.version, timestamp: opts.clock.now().toISOString() }));

  // Public: only ready or not. What is not ready (API-server errors, informer names) is for
  // authenticated callers: GET /api/v1/readiness (registerReadinessDetailRoute).
  app.get("/ready", async (req, reply) => {
    const result = await checkReadiness(opts.readiness, req.log);
    return reply.code(result.ready ? 200 : 503).send({ status: result.ready ? "ready" : "not ready" });
  });

  app.get("/metrics", async (_req, reply) => {
    const text = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(text);
  });

  app.get("/openapi.json", async (_req, reply) => reply.type("application/json").send(opts.openapi));
}
