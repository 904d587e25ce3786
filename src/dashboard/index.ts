/**
 * The web dashboard: the built front end (web/ → dist/web) and the server routes it needs.
 * src/cmd/main.ts feeds it the controller's informers; without a controller in the process it
 * watches the custom resources itself.
 */
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { registerDashboardApiRoutes, registerDashboardRoutes, type DashboardDeps } from "./routes.js";

export { LiveFeed, type FeedSources } from "./feed.js";
export type { DashboardKube, WatchedCollection } from "./ports.js";
export type { DashboardDeps } from "./routes.js";

/** dist/web next to this module's package, from src/dashboard (tsx) and dist/dashboard (built) alike. */
export function defaultAssetsDir(): string {
  return fileURLToPath(new URL("../../dist/web", import.meta.url));
}

/** The route registrations buildApp takes as `routes`. */
export function dashboardRoutes(deps: DashboardDeps): { public: (app: FastifyInstance) => void; api: (api: FastifyInstance) => void } {
  return { public: (app) => registerDashboardRoutes(app, deps), api: (api) => registerDashboardApiRoutes(api, deps) };
}
