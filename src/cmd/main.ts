#!/usr/bin/env node
/**
 * The orchestrator process: the controller (CodeRun/DocsRun → Jobs) and the HTTP service
 * (REST intake, GitHub webhooks, health, metrics) in one process.
 *
 * Kubernetes access: KUBECONFIG / ~/.kube/config / in-cluster ServiceAccount, like kubectl.
 * With none of these, it starts a local development cluster (local-cluster.ts): a real node
 * where the machine allows it, so agents run in real pods, else a simulated one, and says which.
 */
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, readConfig } from "../config/config.js";
import type { Config } from "../config/schema.js";
import { Controller } from "../controller/controller.js";
import { Manager } from "../controller/manager.js";
import { Resources } from "../controller/ports.js";
import type { AnyRun, Play } from "../api/index.js";
import type { RenderFiles } from "../controller/reconciler.js";
import { buildApp, createAuthenticator, type AppDeps } from "../http/app.js";
import { makeClients, loadKubeConfig } from "../kube/clients.js";
import { createControllerKube } from "../kube/controller-kube.js";
import { createDashboardKube } from "../kube/dashboard-kube.js";
import { LiveFeed, dashboardRoutes, defaultAssetsDir } from "../dashboard/index.js";
import { createPlayGitHub } from "../github/octokit.js";
import { createTaskReporter } from "../reporter/play-reporter.js";
import { PlayController } from "../play/controller.js";
import { PLAY_DELIVERY_EVENTS } from "../play/deliveries.js";
import { createPlayKube } from "../kube/play-kube.js";
import { createClusterConnector } from "../kube/clusters.js";
import { createInformerSource } from "../kube/informer.js";
import { createLeaseClient } from "../kube/lease.js";
import { statusCode } from "../kube/errors.js";
import { LeaderElector } from "../controller/leader.js";
import { TokenBucket } from "../kube/rate-limit.js";
import { createKubePlayStore, createKubeRunStore, createKubeTokenReviewer } from "../kube/run-store.js";
import { createLogger, type Logger } from "../observability/logger.js";
import { createMetrics, type Metrics } from "../observability/metrics.js";
import { registerMcpRoute } from "../mcp/http.js";
import { RunReporter } from "../controller/run-reporter.js";
import { createRunReporterKube } from "../kube/run-reporter-kube.js";
import { loadTemplates } from "../templates/index.js";
import { makeRenderFiles } from "../controller/render.js";
import { ensureLocalSecrets, startLocalCluster } from "./local-cluster.js";

/**
 * The dashboard's live feed: the manager's shared informers. Without a controller in this
 * process nothing starts them, so they are started here and stopped with the process.
 */
function dashboardFeed(
  manager: Manager,
  controller: Controller | undefined,
  plays: PlayController | undefined,
  stops: Array<() => Promise<void>>,
): LiveFeed {
  const runs = [manager.informer<AnyRun>(Resources.CodeRun), manager.informer<AnyRun>(Resources.DocsRun)];
  const playInformer = plays || !controller ? manager.informer<Play>(Resources.Play) : undefined;
  if (!controller) {
    for (const inf of [...runs, ...(playInformer ? [playInformer] : [])]) {
      void inf.start();
      stops.push(() => inf.stop());
    }
  }
  return new LiveFeed({ runs, plays: playInformer });
}

/**
 * The replica's leader election (config controller.leaderElection). The identity is the pod's
 * name plus a random suffix, so a restarted process never mistakes its predecessor's Lease for its own.
 */
function leaderElector(config: Config, kc: ReturnType<typeof loadKubeConfig>, logger: Logger, metrics: Metrics): LeaderElector {
  const le = config.controller.leaderElection;
  const identity = `${config.podName}_${randomBytes(4).toString("hex")}`;
  const log = logger.child({ component: "leader-election", lease: le.leaseName });
  return new LeaderElector({
    client: createLeaseClient(kc, config.namespace, le.leaseName),
    identity,
    timings: {
      leaseDurationMs: le.leaseDurationSeconds * 1000,
      renewDeadlineMs: le.renewDeadlineSeconds * 1000,
      retryPeriodMs: le.retryPeriodSeconds * 1000,
    },
    onError: (err, leading) => {
      const hint =
        statusCode(err) === 403
          ? `; the ServiceAccount needs get, create and update on leases (coordination.k8s.io) in ${config.namespace}: upgrade the chart's RBAC`
          : "";
      log.warn({ err: (err as Error).message, leading }, `Failed to acquire or renew the leader Lease${hint}`);
    },
    onHolder: (holder) => {
      metrics.leaderTransitions.inc();
      log.info({ holder: holder || null, identity }, holder ? "Observed a new leader Lease holder" : "Observed the leader Lease released");
    },
  });
}

function hasKubeAccess(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.KUBECONFIG) || Boolean(env.KUBERNETES_SERVICE_HOST) || existsSync(join(homedir(), ".kube", "config"));
}

/** Templates load once; a broken override fails each run with a TemplateError, not the process. */
function templateRenderer(config: Config, log: Logger): RenderFiles {
  try {
    return makeRenderFiles(loadTemplates(config.templates.dir), config);
  } catch (e) {
    log.error(
      { err: (e as Error).message, template: (e as { template?: string }).template },
      "Failed to load agent templates; runs will fail with TemplateError until the templates ConfigMap is fixed",
    );
    return () => {
      throw e;
    };
  }
}

/** Adds the MCP endpoint (/mcp, behind the API's authentication) to the dashboard's routes. */
function withMcp(routes: NonNullable<AppDeps["routes"]>): NonNullable<AppDeps["routes"]> {
  return {
    ...routes,
    api: (api, root) => {
      routes.api?.(api, root);
      registerMcpRoute(api, root);
    },
  };
}

/** The config, or exit 2 with its actionable message. */
function configOrExit(env: NodeJS.ProcessEnv, logger: Logger): Config {
  try {
    return readConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      logger.fatal(e.message);
      process.exit(2);
    }
    throw e;
  }
}

interface Connection {
  config: Config;
  kc: ReturnType<typeof loadKubeConfig>;
  clients: ReturnType<typeof makeClients>;
  /** Set when this process started a local development cluster. */
  kubeconfigPath: string | undefined;
}

/** The Kubernetes clients; without any Kubernetes context, a local development cluster first. */
async function connect(env: NodeJS.ProcessEnv, config: Config, logger: Logger, stops: Array<() => Promise<void>>): Promise<Connection> {
  let kubeconfigPath: string | undefined;
  if (!hasKubeAccess(env)) {
    logger.warn("No Kubernetes context configured: starting a local development cluster.");
    const local = await startLocalCluster(logger);
    stops.push(() => local.stop());
    kubeconfigPath = local.kubeconfigPath;
    config = readConfig(env, local.overlay);
    logger.info({ kubeconfig: local.kubeconfigPath }, `Local cluster ready: export KUBECONFIG=${local.kubeconfigPath}`);
  }
  const kc = loadKubeConfig(kubeconfigPath);
  const clients = makeClients(kc);
  if (kubeconfigPath) {
    await clients.core.createNamespace({ body: { metadata: { name: config.namespace } } }).catch(() => undefined);
    await ensureLocalSecrets(kc, config, config.githubUser, logger);
  }
  return { config, kc, clients, kubeconfigPath };
}

interface Controllers {
  manager: Manager;
  controller: Controller | undefined;
  plays: PlayController | undefined;
  runReporter: RunReporter | undefined;
}

/** The manager and the controllers that register with it (none when controller.enabled is false). */
function buildControllers(conn: Connection, logger: Logger, metrics: Metrics): Controllers {
  const { config, kc, clients } = conn;
  // One client-side limit for the whole process (client-go: one per rest.Config).
  const limiter = new TokenBucket(config.controller.qps, config.controller.burst);
  const enabled = config.controller.enabled;
  // One manager: shared informers, and queues, workers and health for every controller.
  const election = enabled && config.controller.leaderElection.enabled ? leaderElector(config, kc, logger, metrics) : undefined;
  const manager = new Manager({
    source: createInformerSource(clients, logger),
    namespace: config.namespace,
    logger,
    metrics,
    ...(election ? { election } : {}),
  });
  const kube = createControllerKube(clients, limiter);
  const controller = enabled
    ? new Controller({
        manager,
        kube,
        // Execution clusters registered by cluster Secrets (docs/clusters.md), each with its own client limit.
        clusters: createClusterConnector({ qps: config.controller.qps, burst: config.controller.burst, logger }),
        config,
        renderFiles: templateRenderer(config, logger),
        logger,
        metrics,
      })
    : undefined;
  // Plays: stage CodeRuns driven by GitHub's state of each task's PR (docs/play.md).
  const github = createPlayGitHub({
    apiUrl: config.github.apiUrl,
    auth: { token: config.githubToken || undefined, app: config.githubApp },
    log: logger.child({ component: "github" }),
  });
  const plays =
    enabled && config.play.enabled
      ? new PlayController({
          manager,
          kube: createPlayKube(clients, limiter),
          github,
          reporter: createTaskReporter(github),
          config,
          logger,
          metrics,
        })
      : undefined;
  // Replies on GitHub for webhook-started runs and refused deliveries (needs credentials to write).
  const replies = enabled && config.github.replies && hasGitHubCredentials(config);
  const runReporter = replies ? new RunReporter({ manager, kube: createRunReporterKube(clients), github, config, logger }) : undefined;
  warnWithoutGitHubCredentials(config, plays !== undefined, logger);
  return { manager, controller, plays, runReporter };
}

function hasGitHubCredentials(config: Config): boolean {
  return Boolean(config.githubToken || config.githubApp);
}

function warnWithoutGitHubCredentials(config: Config, plays: boolean, logger: Logger): void {
  if (hasGitHubCredentials(config)) return;
  if (config.github.replies)
    logger.warn(
      "No GitHub credentials: webhook-started runs get no reaction, tracking comment or check run; set GITHUB_TOKEN or a GitHub App (or github.replies: false)",
    );
  if (plays)
    logger.warn(
      "Plays read and report on GitHub, but no credentials are set: set GITHUB_TOKEN (Helm: secrets.githubToken) or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY; calls are unauthenticated until then",
    );
}

/**
 * The REST API's tokens. On the local development control plane, a throwaway one when none is
 * configured, so the REST API works out of the box there (never in a real cluster).
 */
function apiTokens(config: Config, kubeconfigPath: string | undefined, logger: Logger): string[] {
  if (!kubeconfigPath || config.apiTokens.length > 0) return [...config.apiTokens];
  const token = randomBytes(16).toString("hex");
  // Written to a 0600 file next to the kubeconfig, never logged.
  const tokenFile = join(dirname(kubeconfigPath), "api-token");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  logger.warn(
    { tokenFile },
    'Local development: generated a REST API token (set ORCHESTRATOR_API_TOKENS to choose one); use: curl -H "Authorization: Bearer $(cat <tokenFile>)"',
  );
  return [token];
}

function authenticator(conn: Connection, logger: Logger): ReturnType<typeof createAuthenticator> {
  const { config, kc } = conn;
  return createAuthenticator({
    tokens: apiTokens(config, conn.kubeconfigPath, logger),
    ...(config.api.tokenReview
      ? {
          tokenReview: {
            reviewer: createKubeTokenReviewer(kc),
            allow: [...config.api.tokenReviewAllow],
            audiences: [...config.api.tokenReviewAudiences],
            namespace: config.namespace,
          },
        }
      : {}),
  });
}

/** Readiness: the manager's checks (informers synced) and the API server answering. */
function readiness(conn: Connection, c: Controllers): AppDeps["readiness"] {
  return async () => {
    const checks: Record<string, boolean | string> = c.controller ? c.manager.readinessDetail() : { controller: "disabled" };
    let apiServer: boolean | string = true;
    try {
      await conn.clients.core.getAPIResources();
    } catch (e) {
      apiServer = (e as Error).message;
    }
    checks.apiServer = apiServer;
    return { ready: apiServer === true && (!c.controller || c.manager.isReady()), checks };
  };
}

/** The HTTP service: REST intake, webhooks, dashboard, MCP, health and metrics. */
function buildHttp(conn: Connection, c: Controllers, logger: Logger, metrics: Metrics, stops: Array<() => Promise<void>>) {
  const { config, kc, clients } = conn;
  const runs = createKubeRunStore({ kubeConfig: kc, namespace: config.namespace });
  const auth = authenticator(conn, logger);
  return buildApp({
    config,
    runs,
    ...(c.plays ? { plays: createKubePlayStore({ kubeConfig: kc, namespace: config.namespace }) } : {}),
    auth,
    metrics,
    logger,
    readiness: readiness(conn, c),
    ...(c.runReporter ? { onRefusal: c.runReporter.enqueueRefusal } : {}),
    ...(c.plays ? { onDelivery: c.plays.enqueueForDelivery, deliveryEvents: PLAY_DELIVERY_EVENTS } : {}),
    routes: withMcp(
      dashboardRoutes({
        feed: dashboardFeed(c.manager, c.controller, c.plays, stops),
        kube: createDashboardKube(clients, config.namespace),
        runs,
        auth,
        namespace: config.namespace,
        slotsPerService: config.concurrency.perService,
        assetsDir: defaultAssetsDir(),
        logger,
      }),
    ),
  });
}

/** Starts the controllers; exits when their workers die, and stops everything on SIGTERM/SIGINT. */
async function run(c: Controllers, logger: Logger, stops: Array<() => Promise<void>>): Promise<void> {
  // Set once SIGTERM/SIGINT arrived: a manager that is stopping is not a dead one.
  let stopping = false;
  const controller = c.controller;
  if (controller) {
    stops.unshift(async () => {
      controller.stopClusters();
      await c.manager.stop();
    });
    await c.manager.start();
    controller.startClusters();
    // A dead controller must not hide behind a green /health: exit so Kubernetes restarts us.
    setInterval(() => {
      if (!stopping && !c.manager.isAlive()) {
        logger.fatal("Controller workers stopped; exiting so the pod restarts");
        process.exit(1);
      }
    }, 5000).unref();
  }
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const t0 = performance.now();
    logger.info({ signal }, "Stopping");
    for (const stop of stops) await stop().catch((e) => logger.warn({ err: (e as Error).message }, "Stop step failed"));
    logger.info({ ms: Math.round(performance.now() - t0) }, "Stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

async function main(): Promise<void> {
  const env = process.env;
  // Readable lines for a person at a terminal, JSON for log collectors (LOG_FORMAT=json|pretty overrides).
  const pretty = env.LOG_FORMAT ? env.LOG_FORMAT === "pretty" : process.stdout.isTTY === true;
  const logger = createLogger({ level: env.LOG_LEVEL ?? "info", pretty });
  const stops: Array<() => Promise<void>> = [];
  const conn = await connect(env, configOrExit(env, logger), logger, stops);
  const metrics = createMetrics({ defaultMetrics: true });
  const controllers = buildControllers(conn, logger, metrics);
  const app = buildHttp(conn, controllers, logger, metrics, stops);
  await app.listen({ host: conn.config.server.host, port: conn.config.server.port });
  logger.info({ address: app.server.address() }, "Listening");
  stops.unshift(() => app.close());
  await run(controllers, logger, stops);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
