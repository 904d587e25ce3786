// The whole system on the real node, for end-to-end tests: a full control plane with the real
// node and the agent image, host servers the agent pods reach at the node's IP (a scripted model,
// git over smart HTTP with token auth, the OpenAPI-checked GitHub double), the agent Secrets, and
// the orchestrator itself as a child process (so tests can SIGKILL and restart it).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, inject } from "vitest";
import { stringify } from "yaml";
import { GROUP, Plurals, VERSION } from "../../src/api/constants.js";
import type { AnyRun } from "../../src/api/types.js";
import { isTerminalPhase } from "../../src/api/predicates.js";
import { ControlPlane, freePorts, repoRoot, type ImageArchive, type NodeImages } from "../../src/controlplane/index.js";
import { ensureImages } from "../../src/controlplane/images.js";
import { issueServingCert } from "../../src/controlplane/certs.js";
import { startGitHttpServer, type GitHttpServer } from "./git-http-server.js";
import { startGitHubServer, type GitHubServer } from "./github-server.js";
import { startModelServer, type ModelServer } from "./model-server.js";
import { nodeImages } from "./real-node.js";
import { branchExists, createBareRepo } from "./runner-fixture.js";
import { signedDelivery, WEBHOOK_SECRET } from "./webhook-fixtures.js";

export const TOKEN = "ghp_nodeE2eToken0123456789abcdef";
export const API_KEY = "sk-ant-node-e2e-key-abcdef";
export const API_TOKEN = "node-e2e-api-token";
export const GITHUB_USER = "rex-bot";
/** With a Play roster: the controller's own GitHub token (check runs, progress comments) and login. */
export const CONTROLLER_TOKEN = "ghp_nodeE2eController0123456789ab";
export const CONTROLLER_LOGIN = "orchestrator-bot";

/** An agent of a Play roster (config `agents`). */
export interface RosterAgent {
  githubUser: string;
  role: string;
  model: string;
}

/** The GitHub token of a roster agent's user. */
export const agentToken = (githubUser: string) => `ghp_nodeE2e${githubUser.replace(/[^a-z0-9]/gi, "")}0123456789`;

let agentImage: Promise<ImageArchive> | undefined;
/** The agent image, built here (cached by content) from images/agent.yaml. */
export function agentImageArchive(): Promise<ImageArchive> {
  agentImage ??= ensureImages(["agent"]).then((b) => {
    const img = b.find((x) => x.name === "agent");
    if (!img) throw new Error("the agent image was not built");
    return { ref: img.ref, archive: img.archive, digest: img.digest };
  });
  return agentImage;
}

async function imagesWithAgent(): Promise<NodeImages> {
  const [base, agent] = await Promise.all([nodeImages(), agentImageArchive()]);
  return { ...base, others: [agent] };
}

export interface Orchestrator {
  url: string;
  process: ResultPromise;
  logFile: string;
  /** SIGKILL (no graceful stop), as a crashed node or OOM kill would. */
  kill(): Promise<void>;
}

export interface NodeWorld {
  cp: ControlPlane;
  ns: string;
  tmp: string;
  model: ModelServer;
  github: GitHubServer;
  gitHttp: GitHttpServer;
  /** Bare repository path of org/<name>. */
  bare(name: string): string;
  repoUrl(name: string): string;
  orchestrator: Orchestrator;
  startOrchestrator(): Promise<Orchestrator>;
  api(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: unknown; text: string }>;
  /** Signs and POSTs a webhook delivery to the orchestrator, as GitHub does: the HTTP status. */
  deliver(event: string, payload: unknown): Promise<number>;
  /** POST /api/v1/pm/tasks for org/target (documents in org/docs, working directory services/api): the CodeRun's name. */
  submitCode(taskId: number, service: string, extra?: Record<string, unknown>): Promise<string>;
  getRun(kind: "CodeRun" | "DocsRun", name: string): Promise<AnyRun>;
  waitForRun(kind: "CodeRun" | "DocsRun", name: string, until: (r: AnyRun) => boolean, timeoutMs?: number): Promise<AnyRun>;
}

/** Config of the orchestrator under test (its YAML file). */
function orchestratorConfig(p: {
  ns: string;
  port: number;
  agentRef: string;
  modelUrl: string;
  githubApiUrl: string;
  githubUrl: string;
  caBundle: string;
  agents?: Record<string, RosterAgent>;
}): string {
  const i = p.agentRef.lastIndexOf(":");
  return stringify({
    ...(p.agents ? { agents: p.agents, play: { resyncSeconds: 30 } } : {}),
    namespace: p.ns,
    server: { host: "127.0.0.1", port: p.port },
    agent: {
      image: { repository: p.agentRef.slice(0, i), tag: p.agentRef.slice(i + 1), pullPolicy: "Never" },
      resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: "2", memory: "2Gi" } },
      anthropicBaseUrl: p.modelUrl,
    },
    storage: { storageClassName: "local-path", workspaceSize: "1Gi" },
    // The test servers use HTTPS with certificates of the cluster CA: the one GitHub host.
    github: { apiUrl: p.githubApiUrl, url: p.githubUrl, caBundle: p.caBundle },
    job: { retryBackoffSeconds: 1, retryBackoffMaxSeconds: 5, maxRetries: 2, ttlSecondsAfterFinished: 3600 },
  });
}

export interface NodeWorldOptions {
  binDir: string;
  log?: (line: string) => void;
  /**
   * A Play roster: each agent's user gets a token (its Secret, a user of the GitHub double, a
   * token the git server accepts); the orchestrator gets the roster, the controller's GitHub token
   * and the webhook secret.
   */
  agents?: Record<string, RosterAgent>;
}

/** Starts the whole world; `stop()` tears every piece down (also after a partial start). */
export async function startNodeWorld(opts: NodeWorldOptions): Promise<NodeWorld & { stop(): Promise<void> }> {
  const closers: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  try {
    return { ...(await buildWorld(opts, closers)), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function buildWorld(opts: NodeWorldOptions, closers: (() => Promise<unknown>)[]): Promise<NodeWorld> {
  const cp = await ControlPlane.start({
    mode: "full",
    node: "real",
    binDir: opts.binDir,
    crdPaths: [path.join(repoRoot(), "infra/charts/orchestrator/crds")],
    nodeImages: imagesWithAgent,
    log: opts.log ?? (() => {}),
  });
  closers.push(() => cp.stop());
  const ip = cp.realNode?.ip ?? "";
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "node-e2e-"));
  closers.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
  const gitRoot = path.join(tmp, "git");
  const bare = (name: string) => path.join(gitRoot, "org", `${name}.git`);
  // Credentials go only to an https:// GitHub host: the git and GitHub servers get certificates
  // of the cluster CA, which the orchestrator and the agents trust through github.caBundle.
  const tls = await issueServingCert(cp.certs.dir, "github-test", [ip]);
  const model = await startModelServer([], { host: ip });
  closers.push(() => model.close());
  const agentUsers = Object.values(opts.agents ?? {}).map((a) => a.githubUser);
  const github = await startGitHubServer({
    host: ip,
    tls,
    tokens: [TOKEN],
    users: Object.fromEntries([
      ...agentUsers.map((u) => [agentToken(u), u]),
      ...(opts.agents ? [[CONTROLLER_TOKEN, CONTROLLER_LOGIN]] : []),
    ]),
    repos: ["org/target", "org/docs", "org/other"],
    branchExists: (o, r, b) => branchExists(path.join(gitRoot, o, `${r}.git`), b),
  });
  closers.push(() => github.close());
  const gitHttp = await startGitHttpServer(gitRoot, [TOKEN, ...agentUsers.map(agentToken)], { host: ip, tls });
  closers.push(() => gitHttp.close());
  // Agent pods must run under the Pod Security Standard the chart documents for their namespace.
  const ns = await cp.createNamespace("orch", { "pod-security.kubernetes.io/enforce": "restricted" });
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: "orchestrator-secrets" }, stringData: { ANTHROPIC_API_KEY: API_KEY } },
  });
  for (const [user, token] of [[GITHUB_USER, TOKEN], ...agentUsers.map((u) => [u, agentToken(u)])] as const)
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `github-token-${user}` }, stringData: { token } } });
  const agent = await agentImageArchive();
  const [port] = (await freePorts(1)) as [number];
  const configFile = path.join(tmp, "config.yaml");
  const caBundle = fs.readFileSync(cp.certs.caCert, "utf8");
  fs.writeFileSync(
    configFile,
    orchestratorConfig({
      ns,
      port,
      agentRef: agent.ref,
      modelUrl: model.url,
      githubApiUrl: github.url,
      githubUrl: gitHttp.url,
      caBundle,
      ...(opts.agents ? { agents: opts.agents } : {}),
    }),
  );
  const startOrchestrator = () =>
    launchOrchestrator({
      kubeconfig: cp.kubeconfigPath,
      configFile,
      port,
      caFile: cp.certs.caCert,
      logFile: path.join(tmp, `orchestrator-${Date.now()}.log`),
      env: opts.agents ? { GITHUB_TOKEN: CONTROLLER_TOKEN, GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET } : {},
    });
  const custom = cp.kubeConfig.makeApiClient(CustomObjectsApi);
  const getRun = async (kind: "CodeRun" | "DocsRun", name: string) =>
    (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: Plurals[kind], name })) as AnyRun;
  createBareRepo(bare("target"), { "README.md": "# Shop\n", "services/api/index.js": "export const answer = 42;\n" });
  // Task documents for every task the end-to-end tests submit.
  const taskIds = [7, 21, 31, 41, 42, 51, 61, 62];
  createBareRepo(bare("docs"), {
    ...Object.fromEntries(
      taskIds.flatMap((t) => [
        [`.taskmaster/docs/task-${t}/task.md`, `# Task ${t}\nAdd a health endpoint.\n`],
        [`.taskmaster/docs/task-${t}/acceptance-criteria.md`, "- GET /health returns 200\n"],
        [`.taskmaster/docs/task-${t}/prompt.md`, `Implement task ${t}: add a health endpoint to the API service.\n`],
      ]),
    ),
    ".taskmaster/docs/architecture.md": "# Architecture\nOne service.\n",
    ".taskmaster/tasks/tasks.json": JSON.stringify({ tasks: taskIds.map((id) => ({ id, title: `Task ${id}` })) }),
  });
  const w: NodeWorld = {
    cp,
    ns,
    tmp,
    model,
    github,
    gitHttp,
    bare,
    repoUrl: (name) => `${gitHttp.url}/org/${name}.git`,
    orchestrator: await startOrchestrator(),
    startOrchestrator: async () => {
      w.orchestrator = await startOrchestrator();
      return w.orchestrator;
    },
    api: async (method, pathname, body) => {
      const r = await fetch(`${w.orchestrator.url}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${API_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* plain text (logs) */
      }
      return { status: r.status, body: parsed, text };
    },
    deliver: async (event, payload) => {
      const d = await signedDelivery(event, payload);
      const r = await fetch(`${w.orchestrator.url}/webhooks/github`, { method: "POST", headers: d.headers, body: d.payload });
      await r.arrayBuffer();
      return r.status;
    },
    submitCode: async (taskId, service, extra = {}) => {
      const r = await w.api("POST", "/api/v1/pm/tasks", {
        task_id: taskId,
        service,
        repository_url: w.repoUrl("target"),
        docs_repository_url: w.repoUrl("docs"),
        working_directory: "services/api",
        github_user: GITHUB_USER,
        ...extra,
      });
      if (r.status !== 201) throw new Error(`submitting task ${taskId} answered ${r.status}: ${r.text}`);
      return (r.body as { data: { coderun_name: string } }).data.coderun_name;
    },
    getRun,
    waitForRun: async (kind, name, until, timeoutMs = 240_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const last = await getRun(kind, name);
        if (until(last)) return last;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${kind} ${name}; last status: ${JSON.stringify(last.status)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
  };
  closers.push(() => w.orchestrator.kill());
  return w;
}

/** One world per test file: beforeAll builds it, afterAll tears every piece down. */
export function useNodeWorld(opts: Pick<NodeWorldOptions, "agents"> = {}): () => NodeWorld {
  let world: (NodeWorld & { stop(): Promise<void> }) | undefined;
  beforeAll(async () => {
    world = await startNodeWorld({ ...opts, binDir: inject("controlPlaneBinDir"), log: (l) => console.log(`[control-plane] ${l}`) });
  });
  afterAll(async () => {
    await world?.stop();
  });
  return () => {
    if (!world) throw new Error("node world not started (use it inside tests)");
    return world;
  };
}

async function launchOrchestrator(p: {
  kubeconfig: string;
  configFile: string;
  port: number;
  caFile: string;
  logFile: string;
  env: Record<string, string>;
}): Promise<Orchestrator> {
  const child = execa(process.execPath, ["--import", "tsx", path.join(repoRoot(), "src/cmd/main.ts")], {
    cwd: repoRoot(),
    env: {
      KUBECONFIG: p.kubeconfig,
      ORCHESTRATOR_CONFIG: p.configFile,
      ORCHESTRATOR_API_TOKENS: API_TOKEN,
      LOG_LEVEL: "info",
      HOME: os.homedir(),
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      // As the chart does for github.caBundle: the controller's own GitHub calls trust it.
      NODE_EXTRA_CA_CERTS: p.caFile,
      ...p.env,
    },
    extendEnv: false,
    stdout: { file: p.logFile, append: true },
    stderr: { file: p.logFile, append: true },
    reject: false,
  });
  let exited: string | undefined;
  void child.then((r) => (exited = `${r.exitCode ?? r.signal ?? "?"}${r.failed && r.exitCode === undefined ? `: ${r.message}` : ""}`));
  const url = `http://127.0.0.1:${p.port}`;
  // Loading @kubernetes/client-node alone takes seconds on a busy 2-core machine.
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exited !== undefined)
      throw new Error(`the orchestrator exited (${exited}) before it was ready:\n${fs.readFileSync(p.logFile, "utf8").slice(-3000)}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline)
      throw new Error(`the orchestrator did not answer /health within 180 s:\n${fs.readFileSync(p.logFile, "utf8").slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    url,
    process: child,
    logFile: p.logFile,
    kill: async () => {
      child.kill("SIGKILL");
      await child;
    },
  };
}

/** The agent's working directory inside the pod (runner contract: /workspace/target-repo/<dir>). */
export function podWorkDir(workingDirectory: string): string {
  return path.posix.join("/workspace/target-repo", workingDirectory);
}

/** A run that has ended (Succeeded, Failed or Cancelled), for waitForRun. */
export const finished = (r: AnyRun): boolean => isTerminalPhase(r.status?.phase);
