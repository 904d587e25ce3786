/** Runs the real controller against a test control plane, in-process or as a child process. */
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { execa, type ResultPromise } from "execa";
import { freePorts } from "../../src/controlplane/index.js";
import { GROUP, VERSION, type AnyRun, type CodeRun } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import { Controller } from "../../src/controller/controller.js";
import { Manager } from "../../src/controller/manager.js";
import { createInformerSource } from "../../src/kube/informer.js";
import { makeClients } from "../../src/kube/clients.js";
import { createClusterConnector } from "../../src/kube/clusters.js";
import { createControllerKube } from "../../src/kube/controller-kube.js";
import { TokenBucket } from "../../src/kube/rate-limit.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { loadTemplates } from "../../src/templates/index.js";
import { makeRenderFiles } from "../../src/controller/render.js";

export const DEFAULT_TEST_CONFIG =
  "job: {retryBackoffSeconds: 1, retryBackoffMaxSeconds: 2, maxRetries: 0}\ncontroller: {resyncSeconds: 30}\n";

/** Creates the Secrets a run of githubUser "alice" needs. */
export async function createAgentSecrets(kc: KubeConfig, namespace: string, user = "alice"): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const [name, data] of [
    ["orchestrator-secrets", { ANTHROPIC_API_KEY: "sk-test" }],
    [`github-token-${user}`, { token: "ghp_test" }],
  ] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } }).catch((e) => {
      if ((e as { code?: number }).code !== 409) throw e;
    });
  }
}

export function startInProcessController(kc: KubeConfig, namespace: string, configYaml = DEFAULT_TEST_CONFIG) {
  const config = parseConfig(configYaml, { KUBERNETES_NAMESPACE: namespace });
  const clients = makeClients(kc);
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const metrics = createMetrics();
  const manager = new Manager({ source: createInformerSource(clients, logger), namespace, logger, metrics });
  const controller = new Controller({
    manager,
    kube: createControllerKube(clients, new TokenBucket(config.controller.qps, config.controller.burst)),
    clusters: createClusterConnector({ qps: config.controller.qps, burst: config.controller.burst, logger }),
    config,
    renderFiles: makeRenderFiles(loadTemplates(), config),
    logger,
    metrics,
  });
  const started = manager.start().then(() => controller.startClusters());
  return { controller, manager, config, metrics, started, stop: async () => (controller.stopClusters(), await manager.stop()) };
}

/** Runs `src/cmd/main.ts` as a child process, exactly as the image runs the orchestrator. */
export async function startControllerProcess(
  kubeconfigPath: string,
  namespace: string,
  configYaml = DEFAULT_TEST_CONFIG,
  env: Record<string, string> = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "orchestrator-ctl-"));
  const port = (await freePorts(1))[0] as number;
  const configPath = join(dir, "config.yaml");
  writeFileSync(configPath, `${configYaml}\nserver: {host: 127.0.0.1, port: ${port}}\n`);
  // The same Node as the tests (node_modules/.bin/tsx would pick whatever `node` is on PATH).
  const child: ResultPromise = execa(process.execPath, ["--import", "tsx", "src/cmd/main.ts"], {
    env: {
      KUBECONFIG: kubeconfigPath,
      ORCHESTRATOR_CONFIG: configPath,
      KUBERNETES_NAMESPACE: namespace,
      LOG_LEVEL: "info",
      ORCHESTRATOR_API_TOKENS: "test-token",
      ...env,
    },
    extendEnv: true,
    reject: false,
    all: true,
    buffer: true,
  });
  // Everything the process printed so far, for a failing test's message.
  let output = "";
  child.all?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  });
  return {
    child,
    port,
    output: () => output,
    async ready(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
          return r?.status === 200;
        },
        timeoutMs,
        "controller process /ready",
      );
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function runsApi(kc: KubeConfig) {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    create: (run: AnyRun) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: run.metadata.namespace ?? "",
        plural: run.kind === "CodeRun" ? "coderuns" : "docsruns",
        body: run,
      }) as Promise<AnyRun>,
    get: (kind: "CodeRun" | "DocsRun", namespace: string, name: string) =>
      custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: kind === "CodeRun" ? "coderuns" : "docsruns",
        name,
      }) as Promise<AnyRun>,
    list: async (namespace: string) =>
      ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "coderuns" })) as { items: CodeRun[] })
        .items,
    patchSpec: (namespace: string, name: string, spec: Record<string, unknown>) =>
      custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: "coderuns", name, body: { spec } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    delete: (namespace: string, name: string) =>
      custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: "coderuns", name }),
  };
}

export function codeRun(namespace: string, name: string, spec: Partial<CodeRun["spec"]> = {}): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name, namespace },
    spec: {
      taskId: 7,
      service: "api",
      repositoryUrl: "https://github.com/acme/api.git",
      docsRepositoryUrl: "https://github.com/acme/docs.git",
      model: "claude-sonnet-4-20250514",
      githubUser: "alice",
      ...spec,
    },
  };
}
