/**
 * The HTTP service: REST intake (submission and resource API), the GitHub webhook receiver,
 * health, readiness, metrics and the OpenAPI document. Intake only writes intent (custom
 * resources); the controller creates Jobs.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import fastifyCookie from "@fastify/cookie";
import Fastify, { LogController, type FastifyError, type FastifyInstance } from "fastify";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { BodyError } from "../webhook/body.js";
import { isWebhookRoute, registerWebhookRoutes, type DeliveryListener, type WebhookDeps } from "../webhook/receiver.js";
import type { PermissionChecker } from "../webhook/rules.js";
import { API_DISABLED_MESSAGE, CSRF_MESSAGE, WWW_AUTHENTICATE, requestCredentials, type Authenticator } from "./auth.js";
import { buildOpenApiDocument } from "./openapi.js";
import type { PlayStore, RunStore } from "../intake/store.js";
import { sendProblem, type ProblemType } from "../intake/problem.js";
import { systemClock, type Clock } from "./ports.js";
import type { RouteContext } from "./routes/context.js";
import { registerPlayRoutes } from "./routes/plays.js";
import { registerRunRoutes } from "./routes/runs.js";
import { registerSubmitRoutes } from "./routes/submit.js";
import { registerReadinessDetailRoute, registerSystemRoutes, type ReadinessCheck } from "./routes/system.js";

/**
 * Everything the HTTP service needs; src/cmd/main.ts wires the real ones.
 *
 * - `config`: the frozen controller config (readConfig()). Uses `namespace` (via `runs`), `models`
 *   (default models), `api` (body limit, TokenReview), `webhook` (rules, allowlists, limits),
 *   `agents` (rule identities), `apiTokens`/`webhookSecrets` (from the environment).
 * - `runs`: the RunStore (createKubeRunStore() from src/kube/run-store.ts; in-memory in tests).
 * - `auth`: createAuthenticator({ tokens: config.apiTokens, tokenReview? }) from ./auth.js.
 * - `readiness`: informers synced + API server reachable; /ready answers 503 until `ready`.
 * - `metrics`: the shared registry (createMetrics()); /metrics serves all of it, the controller's too.
 * - `logger`: the redacting pino logger (createLogger()); each request gets a child logger.
 * - `clock`: time source for timestamps and generated names (default: system clock).
 * - `permissions`: optional GitHub permission check of webhook senders (else author_association).
 * - `onDelivery` / `deliveryEvents`: optional listener told about every verified, non-duplicate
 *   delivery of the listed events (default all) before the rules run, e.g. the Play controller's
 *   enqueueForDelivery; bounded by webhook.ackTimeoutMs, its errors are logged and ignored.
 * - `version`: reported by /health and /openapi.json (default: package.json's version).
 * - `randomHex`: randomness for names without an Idempotency-Key (default: crypto).
 * - `routes`: more routes, public and behind the API's authentication (the dashboard's).
 */
export interface AppDeps {
  config: Config;
  runs: RunStore;
  /** Plays (createKubePlayStore()); without it the Play routes answer 503. */
  plays?: PlayStore;
  auth: Authenticator;
  readiness: ReadinessCheck;
  metrics: Metrics;
  logger: Logger;
  clock?: Clock;
  permissions?: PermissionChecker;
  /** Optional: every verified webhook delivery (the Play controller's enqueueForDelivery), and the events it wants. */
  onDelivery?: DeliveryListener;
  deliveryEvents?: readonly string[];
  /** Optional: refused webhook deliveries, for a reply on GitHub (the run reporter's enqueueRefusal). */
  onRefusal?: WebhookDeps["onRefusal"];
  version?: string;
  randomHex?: () => string;
  /** `api` routes go behind the API's authentication; `root` is the whole app (for app.inject). */
  routes?: { public?: (app: FastifyInstance) => void; api?: (api: FastifyInstance, root: FastifyInstance) => void };
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Routes whose access log is at debug level: probes and scrapes would drown everything else. */
const QUIET_ROUTES = new Set(["/health", "/ready", "/metrics"]);

/** The access line and metrics of every request (one line instead of Fastify's two). */
function observeResponses(app: FastifyInstance, metrics: Metrics): void {
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    const labels = { method: req.method, route, status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    const quiet = QUIET_ROUTES.has(route) || isWebhookRoute(route);
    if (quiet && !(req.log as Logger).isLevelEnabled("debug")) return;
    const line = {
      method: req.method,
      route,
      url: req.url.split("?")[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (quiet) req.log.debug(line, "Served request");
    else req.log.info(line, "Served request");
  });
}

/** The problem answering an error thrown by a route or by Fastify (body parsing, limits); `internal` ones are logged. */
export function errorProblem(
  err: FastifyError,
  webhook: boolean,
  requestId: string,
): { problem: ProblemType; status: number; message: string; retryAfterSeconds?: number; internal?: true } {
  const status = typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  if (err instanceof BodyError) return { problem: err.problem, status, message: err.message, retryAfterSeconds: err.retryAfterSeconds };
  if (status === 413)
    return {
      problem: "tooLarge",
      status,
      message: `The request body is larger than the limit (${webhook ? "webhook.maxBodyBytes" : "api.maxBodyBytes"}).`,
    };
  if (status === 415)
    return { problem: "unsupportedMediaType", status, message: `${err.message}. Send JSON with Content-Type: application/json.` };
  if (status < 500)
    return {
      problem: "badRequest",
      status,
      message: `${err.message}. Send a JSON object with Content-Type: application/json; see /openapi.json.`,
    };
  return { problem: "internal", status: 500, message: `Internal error (request ${requestId}); see the orchestrator logs.`, internal: true };
}

function handleErrors(app: FastifyInstance, metrics: Metrics): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const webhook = isWebhookRoute(req.routeOptions.url);
    const p = errorProblem(err, webhook, req.id);
    if (webhook && p.status < 500) metrics.webhookDeliveries.inc({ event: "unverified", outcome: "rejected" });
    if (p.retryAfterSeconds !== undefined) reply.header("retry-after", String(p.retryAfterSeconds));
    if (p.internal) req.log.error({ err }, "Request failed");
    return sendProblem(reply, p.problem, p.status, p.message);
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, "notFound", 404, `No route ${req.method} ${req.url.split("?")[0]}. The API is described at /openapi.json.`),
  );
}

const AUTH_FAILURES: Record<number, ProblemType> = { 403: "forbidden", 503: "unavailable", 429: "tooManyRequests" };

/** The REST API: authenticated before the body is even parsed. */
function registerApi(app: FastifyInstance, deps: AppDeps, ctx: RouteContext): void {
  app.register(async (api) => {
    // JSON only: a text/plain body would otherwise reach the routes as a string.
    api.removeContentTypeParser("text/plain");
    api.addHook("onRequest", async (req, reply) => {
      if (!deps.auth.enabled) return sendProblem(reply, "disabled", 503, API_DISABLED_MESSAGE);
      const credentials = requestCredentials(req);
      if (credentials.csrfRefused) return sendProblem(reply, "forbidden", 403, CSRF_MESSAGE);
      const result = await deps.auth.authenticate(credentials.authorization);
      if (!result.ok) {
        if (result.status === 401) reply.header("www-authenticate", WWW_AUTHENTICATE);
        if (result.status === 503 || result.status === 429) reply.header("retry-after", "5");
        return sendProblem(reply, AUTH_FAILURES[result.status] ?? "unauthorized", result.status, result.message);
      }
      req.principal = result.principal;
      req.log = req.log.child({ principal: result.principal.name });
    });
    registerSubmitRoutes(api, ctx);
    registerRunRoutes(api, ctx);
    registerReadinessDetailRoute(api, deps.readiness);
    registerPlayRoutes(api, ctx, deps.plays);
    deps.routes?.api?.(api, app);
  });
}

/** Builds the Fastify app (not listening). Throws WebhookConfigError for unusable webhook rules. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const clock = deps.clock ?? systemClock;
  const version = deps.version ?? packageVersion();
  const app = Fastify({
    loggerInstance: deps.logger,
    // One access line per request from the onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.api.maxBodyBytes,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  const ctx: RouteContext = {
    config: deps.config,
    runs: deps.runs,
    clock,
    randomHex: deps.randomHex ?? (() => randomBytes(8).toString("hex")),
    metrics: deps.metrics,
  };

  if (!deps.auth.enabled) deps.logger.warn(API_DISABLED_MESSAGE);
  // The dashboard's session cookie is one way to send the API token (src/dashboard).
  app.register(fastifyCookie);
  observeResponses(app, deps.metrics);
  handleErrors(app, deps.metrics);
  registerSystemRoutes(app, {
    version,
    clock,
    readiness: deps.readiness,
    registry: deps.metrics.registry,
    openapi: buildOpenApiDocument(version),
  });
  registerWebhookRoutes(app, {
    config: deps.config,
    runs: deps.runs,
    metrics: deps.metrics,
    permissions: deps.permissions,
    onDelivery: deps.onDelivery,
    deliveryEvents: deps.deliveryEvents,
    onRefusal: deps.onRefusal,
  });
  registerApi(app, deps, ctx);
  deps.routes?.public?.(app);
  return app;
}

export type { Authenticator, TokenReviewer } from "./auth.js";
export { createAuthenticator } from "./auth.js";
export type { Clock } from "./ports.js";
export type { PlayStore, RunStore } from "../intake/store.js";
export type { ReadinessCheck } from "./routes/system.js";
export type { PermissionChecker } from "../webhook/rules.js";
