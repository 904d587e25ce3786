/**
 * Unauthenticated operational routes: /health (liveness), /ready (readiness), /metrics
 * (Prometheus; serve it on a cluster-internal Service only, never through a public Ingress) and
 * /openapi.json.
 */
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Clock } from "../ports.js";

export type ReadinessCheck = () => Promise<{ ready: boolean; checks: Record<string, boolean | string> }>;

/** A readiness callback that hangs must not hang the probe. */
const READY_TIMEOUT_MS = 2000;

export function registerSystemRoutes(app: FastifyInstance, opts: { version: string; clock: Clock; readiness: ReadinessCheck; registry: Registry; openapi: Record<string, unknown> }): void {
  // Answering at all proves the process and its event loop are alive; liveness must not depend on
  // the API server (a Kubernetes outage would otherwise restart every replica).
  app.get("/health", async () => ({ status: "healthy", version: opts.version, timestamp: opts.clock.now().toISOString() }));

  app.get("/ready", async (req, reply) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        opts.readiness(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`readiness check took longer than ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        }),
      ]);
      return reply.code(result.ready ? 200 : 503).send({ status: result.ready ? "ready" : "not ready", checks: result.checks });
    } catch (err) {
      req.log.warn({ err }, "Readiness check failed");
      return reply.code(503).send({ status: "not ready", checks: { readiness: (err as Error).message } });
    } finally {
      clearTimeout(timer);
    }
  });

  app.get("/metrics", async (_req, reply) => {
    const text = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(text);
  });

  app.get("/openapi.json", async (_req, reply) => reply.type("application/json").send(opts.openapi));
}
