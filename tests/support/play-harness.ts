/**
 * Runs the Play stack against a test control plane: the real CodeRun controller (stage runs
 * become Jobs whose pods kwok completes), the Play controller with the Octokit adapter pointed at
 * the GitHub test server, and the HTTP app whose webhook receiver feeds enqueueForDelivery.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { FastifyInstance } from "fastify";
import { GROUP, VERSION, type CodeRun, type Play, type PlaySpec } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import type { Config } from "../../src/config/schema.js";
import { createPlayGitHub } from "../../src/github/octokit.js";
import { createTaskReporter } from "../../src/reporter/play-reporter.js";
import { buildApp, createAuthenticator } from "../../src/http/app.js";
import { makeClients } from "../../src/kube/clients.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { PlayController } from "../../src/play/controller.js";
import { PLAY_DELIVERY_EVENTS } from "../../src/play/deliveries.js";
import { createPlayKube } from "../../src/kube/play-kube.js";
import { createInformerSource } from "../../src/kube/informer.js";
import { Manager } from "../../src/controller/manager.js";
import { TokenBucket } from "../../src/kube/rate-limit.js";
import type { PlayKube } from "../../src/play/ports.js";
import { createAgentSecrets, startInProcessController } from "./controller-harness.js";
import { createMemoryRunStore } from "./memory-run-store.js";
import type { SimDelivery } from "./play-github.js";
import { deliver, signedDelivery, WEBHOOK_SECRET } from "./webhook-fixtures.js";

/** The controller's own token on the GitHub test server, and the agents' GitHub users. */
export const CONTROLLER_TOKEN = "ghp_play_controller_0000000000000000000";
export const CONTROLLER_LOGIN = "orchestrator-bot";
export const AGENT_USERS = { rex: "rex-agent", cleo: "cleo-agent", tess: "tess-agent" } as const;

export function playConfigYaml(githubUrl: string, extra = ""): string {
  return [
    "job: {retryBackoffSeconds: 1, retryBackoffMaxSeconds: 2, maxRetries: 0}",
    "controller: {resyncSeconds: 30}",
    // The test API server stands in for api.github.com; repositories stay on github.com.
    `github: {apiUrl: "${githubUrl}", url: "https://github.com"}`,
    "agents:",
    `  Rex: {githubUser: ${AGENT_USERS.rex}, role: implementation, model: claude-rex}`,
    `  cleo: {githubUser: ${AGENT_USERS.cleo}, role: quality}`,
    `  tess: {githubUser: ${AGENT_USERS.tess}, role: testing}`,
    extra,
  ].join("\n");
}

export interface PlayStack {
  config: Config;
  plays: PlayController;
  app: FastifyInstance;
  /** Signs and POSTs the delivery to the webhook receiver, like GitHub (`id`: X-GitHub-Delivery, default random). */
  send(d: SimDelivery, id?: string): Promise<number>;
  /** Stops the Play controller (and only it). */
  stopPlays(): Promise<void>;
  /** Starts a new Play controller instance (a restarted process, as far as state goes). */
  restartPlays(opts?: PlayStackOptions): Promise<void>;
  stop(): Promise<void>;
}

export interface PlayStackOptions {
  /** Wraps the Play controller's Kubernetes port (fault injection). */
  wrapKube?: (kube: PlayKube) => PlayKube;
  /** Also start the CodeRun controller (default true). */
  runController?: boolean;
}

export async function createPlayAgentSecrets(kc: KubeConfig, namespace: string): Promise<void> {
  for (const user of Object.values(AGENT_USERS)) await createAgentSecrets(kc, namespace, user);
}

/** The Play controller with a manager of its own, so a test can stop and restart it alone. */
export async function startPlayController(
  kc: KubeConfig,
  namespace: string,
  configYaml: string,
  opts: PlayStackOptions = {},
): Promise<{ config: Config; plays: PlayController; manager: Manager }> {
  const config = parseConfig(configYaml, {
    KUBERNETES_NAMESPACE: namespace,
    GITHUB_TOKEN: CONTROLLER_TOKEN,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
  const clients = makeClients(kc);
  const kube = createPlayKube(clients, new TokenBucket(config.controller.qps, config.controller.burst));
  const github = createPlayGitHub({ apiUrl: config.github.apiUrl, auth: { token: config.githubToken }, writeIntervalMs: 0 });
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const metrics = createMetrics();
  const manager = new Manager({ source: createInformerSource(clients, logger), namespace, logger, metrics });
  const plays = new PlayController({
    manager,
    kube: opts.wrapKube ? opts.wrapKube(kube) : kube,
    github,
    reporter: createTaskReporter(github),
    config,
    logger,
    metrics,
  });
  await manager.start();
  return { config, plays, manager };
}

export async function startPlayStack(
  kc: KubeConfig,
  namespace: string,
  configYaml: string,
  opts: PlayStackOptions = {},
): Promise<PlayStack> {
  const stops: Array<() => Promise<void>> = [];
  if (opts.runController ?? true) {
    const runs = startInProcessController(kc, namespace, configYaml);
    await runs.started;
    stops.push(() => runs.manager.stop());
  }
  let { config, plays, manager } = await startPlayController(kc, namespace, configYaml, opts);
  let playsStopped = false;
  const app = buildApp({
    config,
    runs: createMemoryRunStore(namespace),
    auth: createAuthenticator({ tokens: [] }),
    readiness: async () => ({ ready: true, checks: {} }),
    metrics: createMetrics(),
    logger: createLogger({ level: "silent" }),
    // Late-bound, so a restarted Play controller receives deliveries too.
    onDelivery: (event, payload, delivery) => (playsStopped ? undefined : plays.enqueueForDelivery(event, payload, delivery)),
    deliveryEvents: PLAY_DELIVERY_EVENTS,
  });
  const stack: PlayStack = {
    get config() {
      return config;
    },
    get plays() {
      return plays;
    },
    app,
    async send(d, id) {
      const res = await deliver(app, await signedDelivery(d.event, d.payload, id ? { id } : {}));
      return res.statusCode;
    },
    async stopPlays() {
      playsStopped = true;
      await manager.stop();
    },
    async restartPlays(o: PlayStackOptions = {}) {
      if (!playsStopped) await manager.stop();
      ({ config, plays, manager } = await startPlayController(kc, namespace, configYaml, o));
      playsStopped = false;
    },
    async stop() {
      if (!playsStopped) await manager.stop();
      await app.close();
      for (const s of stops.reverse()) await s();
    },
  };
  return stack;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function playsApi(kc: KubeConfig) {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    create: (play: Play) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: play.metadata.namespace ?? "",
        plural: "plays",
        body: play,
      }) as Promise<Play>,
    get: (namespace: string, name: string) =>
      custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "plays", name }) as Promise<Play>,
    patchSpec: (namespace: string, name: string, spec: Partial<PlaySpec>) =>
      custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "plays", name, body: { spec } }, mergePatch),
    runs: async (namespace: string) =>
      (
        (await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: "coderuns",
          labelSelector: "orchestrator.platform/play",
        })) as { items: CodeRun[] }
      ).items,
  };
}

export function newPlay(namespace: string, name: string, spec: Partial<PlaySpec> = {}): Play {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "Play",
    metadata: { name, namespace },
    spec: {
      service: "api",
      repositoryUrl: "https://github.com/acme/api",
      docsRepositoryUrl: "https://github.com/acme/docs",
      tasks: [1],
      env: { KWOK_RUN_DURATION: "1s" },
      ...spec,
    },
  };
}
