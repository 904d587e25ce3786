/**
 * The dashboard's routes. Public: the built front end (dist/web) at `/`, and login/logout,
 * which turn a token the API accepts into an HttpOnly session cookie. Behind the API's
 * authentication: who am I, the live event stream, a run's timeline and the Services view.
 * Everything else the pages do goes through the ordinary REST API.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { SESSION_COOKIE, type Authenticator } from "../http/auth.js";
import { sendStoreError } from "../intake/errors.js";
import type { RunStore } from "../intake/store.js";
import { fieldErrors, sendProblem, summarizeFieldErrors } from "../intake/problem.js";
import { runParamsSchema } from "../http/schemas.js";
import type { Logger } from "../observability/logger.js";
import type { LiveFeed } from "./feed.js";
import type { DashboardKube } from "./ports.js";
import { computeServices } from "./services.js";
import { EventStreams } from "./sse.js";

export interface DashboardDeps {
  feed: LiveFeed;
  kube: DashboardKube;
  runs: RunStore;
  auth: Authenticator;
  namespace: string;
  /** concurrency.perService */
  slotsPerService: number;
  /** The Vite build output (dist/web); without its index.html `/` says how to build it. */
  assetsDir: string;
  logger: Logger;
}

/** Longest session: the browser forgets the token after this even if the tab stays open. */
const SESSION_MAX_AGE_S = 12 * 3600;

/** Policy for the HTML: everything from this origin, nothing inline, no framing. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Path the cookie is scoped to: the prefix a proxy says it mounted us under, else `/`. */
export function cookiePath(forwardedPrefix: string | string[] | undefined): string {
  const p = typeof forwardedPrefix === "string" ? forwardedPrefix.trim() : "";
  return /^\/[A-Za-z0-9._~\-/]*$/.test(p) ? p.replace(/\/+$/, "") || "/" : "/";
}

function isHttps(req: FastifyRequest): boolean {
  return req.protocol === "https" || req.headers["x-forwarded-proto"] === "https";
}

function setSession(req: FastifyRequest, reply: FastifyReply, token: string, maxAge: number): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "strict",
    secure: isHttps(req),
    path: cookiePath(req.headers["x-forwarded-prefix"]),
    maxAge,
  });
}

function registerAssets(app: FastifyInstance, deps: DashboardDeps): void {
  if (!existsSync(join(deps.assetsDir, "index.html"))) {
    deps.logger.warn({ assetsDir: deps.assetsDir }, "Dashboard not built; `/` explains how to build it");
    app.get("/", async (_req, reply) =>
      sendProblem(
        reply,
        "disabled",
        503,
        `The dashboard is not built (no ${join(deps.assetsDir, "index.html")}). Run 'npm run build' (or 'npm start', which builds it) and restart.`,
      ),
    );
    return;
  }
  app.register(fastifyStatic, {
    root: deps.assetsDir,
    prefix: "/",
    // Only the files present at start are routes, so unknown paths keep the API's 404 problem.
    wildcard: false,
    index: "index.html",
    setHeaders: (reply: FastifyReply, path: string) => {
      reply.header("x-content-type-options", "nosniff");
      reply.header("referrer-policy", "same-origin");
      if (path.endsWith(".html")) {
        reply.header("content-security-policy", CSP);
        reply.header("cache-control", "no-cache");
      } else {
        // Vite names every asset by its content hash.
        reply.header("cache-control", "public, max-age=31536000, immutable");
      }
    },
    cacheControl: false,
  });
}

/** Public routes: the front end and the session cookie. */
export function registerDashboardRoutes(app: FastifyInstance, deps: DashboardDeps): void {
  registerAssets(app, deps);

  app.post("/dashboard/login", async (req, reply) => {
    const body = req.body as { token?: unknown } | undefined;
    const token = typeof body?.token === "string" ? body.token.trim() : "";
    if (!token) {
      return sendProblem(reply, "validation", 422, "Enter an API token.", {
        errors: [{ field: "token", pointer: "#/token", message: "is required" }],
      });
    }
    if (!deps.auth.enabled)
      return sendProblem(
        reply,
        "disabled",
        503,
        "The REST API has no authentication configured, so the dashboard cannot sign anyone in. Set ORCHESTRATOR_API_TOKENS or api.tokenReview and restart.",
      );
    const result = await deps.auth.authenticate(`Bearer ${token}`);
    if (!result.ok) {
      const kind = result.status === 403 ? "forbidden" : result.status === 503 ? "unavailable" : "unauthorized";
      return sendProblem(
        reply,
        kind,
        result.status,
        result.status === 401
          ? "This token was refused. Use a token from ORCHESTRATOR_API_TOKENS or a Kubernetes ServiceAccount token the API accepts."
          : result.message,
        { errors: [{ field: "token", pointer: "#/token", message: "was refused" }] },
      );
    }
    setSession(req, reply, token, SESSION_MAX_AGE_S);
    req.log.info({ principal: result.principal.name }, "Signed in to the dashboard");
    return { success: true, message: `Signed in as ${result.principal.name}`, data: { principal: result.principal } };
  });

  app.post("/dashboard/logout", async (req, reply) => {
    setSession(req, reply, "", 0);
    return { success: true, message: "Signed out" };
  });
}

/** Routes behind the API's authentication hook. */
export function registerDashboardApiRoutes(api: FastifyInstance, deps: DashboardDeps): void {
  const streams = new EventStreams(deps.feed);
  api.addHook("preClose", async () => streams.closeAll());

  api.get("/api/v1/dashboard/session", async (req) => ({
    success: true,
    message: `Signed in as ${req.principal?.name ?? "?"}`,
    data: {
      principal: req.principal,
      namespace: deps.namespace,
      playsEnabled: deps.feed.playsEnabled,
      slotsPerService: deps.slotsPerService,
    },
  }));

  api.get("/api/v1/dashboard/stream", async (req, reply) => {
    streams.serve(req, reply, { namespace: deps.namespace, playsEnabled: deps.feed.playsEnabled });
    return reply;
  });

  api.get("/api/v1/dashboard/runs/:kind/:name/timeline", async (req, reply) => {
    const parsed = runParamsSchema.safeParse(req.params);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error, ["path"]);
      return sendProblem(reply, "badRequest", 400, `Invalid path: ${summarizeFieldErrors(errors)}`, { errors });
    }
    const { kind, name } = parsed.data;
    try {
      const run = await deps.runs.get(kind, name);
      const uid = run.metadata.uid ?? "";
      const [jobs, pods] = await Promise.all([deps.kube.listJobs(uid), deps.kube.listPods(uid)]);
      const events = await deps.kube.listEvents([uid, ...jobs.map((j) => j.uid), ...pods.map((p) => p.uid)]);
      return { success: true, message: `Timeline of ${kind} ${name}`, data: { jobs, pods, events } };
    } catch (err) {
      return sendStoreError(reply, err, `${kind} ${name}`);
    }
  });

  api.get("/api/v1/dashboard/services", async (_req, reply) => {
    try {
      const [jobs, workspaces] = await Promise.all([deps.kube.listJobs(), deps.kube.listWorkspaces()]);
      const services = computeServices(deps.feed.snapshot().runs, jobs, workspaces, deps.slotsPerService);
      return { success: true, message: `${services.length} service(s)`, data: { services } };
    } catch (err) {
      return sendStoreError(reply, err, "the services");
    }
  });
}
