/**
 * The user's README, step by step, on the real node, with Helm 4 and Helm 3: CRDs with kubectl,
 * agent Secrets with setup-agent-secrets.sh, `helm install` of the chart with the controller
 * image built here, the Deployment Ready (the controller reaches the API server through the
 * `kubernetes` Service), `kubectl port-forward svc/orchestrator 8080:80` and `curl /health`, a
 * task submitted through that port-forward turned into a PR, the logs command, then
 * `helm upgrade` and `helm uninstall`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AppsV1Api } from "@kubernetes/client-node";
import { execa, type ResultPromise } from "execa";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ControlPlane, freePorts, repoRoot, type ImageArchive } from "../../src/controlplane/index.js";
import { ensureImages } from "../../src/controlplane/images.js";
import { issueServingCert } from "../../src/controlplane/certs.js";
import { startGitHttpServer, type GitHttpServer } from "../support/git-http-server.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { startModelServer, toolResults, type ModelServer } from "../support/model-server.js";
import { agentImageArchive, podWorkDir } from "../support/node-world.js";
import { nodeImages } from "../support/real-node.js";
import { branchExists, createBareRepo, listFiles } from "../support/runner-fixture.js";

const TOKEN = "ghp_helmE2eToken0123456789abcdef";
const API_KEY = "sk-ant-helm-e2e-key";
const API_TOKEN = "helm-e2e-api-token";
const USER = "rex-bot";
const NS = "orchestrator";

let cp: ControlPlane;
let tmp: string;
let model: ModelServer;
let github: GitHubServer;
let gitHttp: GitHttpServer;
let controllerRef: string;
let agentRef: string;
const bare = (name: string) => path.join(tmp, "git", "org", `${name}.git`);

async function controllerImage(): Promise<ImageArchive> {
  const built = await ensureImages(["controller"]);
  const img = built.find((b) => b.name === "controller");
  if (!img) throw new Error("the controller image was not built");
  return { ref: img.ref, archive: img.archive, digest: img.digest };
}

const kubectl = (...args: string[]) => execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, ...args], { cwd: repoRoot() });

beforeAll(async () => {
  // One after the other: the two images share layers, and two builds would write the same blobs.
  const agent = await agentImageArchive();
  const controller = await controllerImage();
  agentRef = agent.ref;
  controllerRef = controller.ref;
  cp = await ControlPlane.start({
    mode: "full",
    node: "real",
    binDir: inject("controlPlaneBinDir"),
    nodeImages: async () => ({ ...(await nodeImages()), others: [agent, controller] }),
    log: (l) => console.log(`[control-plane] ${l}`),
  });
  const ip = cp.realNode?.ip ?? "";
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "helm-e2e-"));
  // HTTPS with a certificate of the cluster CA; the chart's github.caBundle makes it trusted.
  const tls = await issueServingCert(cp.certs.dir, "github-test", [ip]);
  model = await startModelServer([], { host: ip });
  github = await startGitHubServer({
    host: ip,
    tls,
    tokens: [TOKEN],
    repos: ["org/target", "org/docs"],
    branchExists: (o, r, b) => branchExists(path.join(tmp, "git", o, `${r}.git`), b),
  });
  gitHttp = await startGitHttpServer(path.join(tmp, "git"), [TOKEN], { host: ip, tls });
  createBareRepo(bare("target"), { "README.md": "# Shop\n", "services/api/index.js": "export const answer = 42;\n" });
  // Task documents of the task each Helm version submits.
  createBareRepo(
    bare("docs"),
    Object.fromEntries(
      [91, 92].flatMap((t) => [
        [`.taskmaster/docs/task-${t}/task.md`, `# Task ${t}\nAdd a version endpoint.\n`],
        [`.taskmaster/docs/task-${t}/acceptance-criteria.md`, "- GET /version returns 200\n"],
        [`.taskmaster/docs/task-${t}/prompt.md`, `Implement task ${t}.\n`],
      ]),
    ),
  );
  // Step 1 of the README: CRDs before the chart.
  await kubectl("apply", "-f", "infra/charts/orchestrator/crds/");
  await kubectl("create", "namespace", NS);
  // Step 2: the agent's Secrets, with an SSH key pair and the token from stdin.
  const key = path.join(tmp, "id_ed25519");
  await execa("ssh-keygen", ["-t", "ed25519", "-N", "", "-q", "-f", key]);
  await execa("bash", ["infra/scripts/setup-agent-secrets.sh", "--user", USER, "--ssh-key", key, "--token-file", "-", "--namespace", NS], {
    cwd: repoRoot(),
    input: TOKEN,
    env: { KUBECONFIG: cp.kubeconfigPath, PATH: `${path.dirname(inject("kubectl"))}:${process.env.PATH ?? ""}` },
  });
});

// A failed walk-through must not leave its release for the next Helm version's install.
afterEach(async () => {
  await execa(
    inject("helm"),
    ["--kubeconfig", cp.kubeconfigPath, "uninstall", "orchestrator", "--namespace", NS, "--ignore-not-found", "--wait"],
    {
      reject: false,
    },
  );
});

afterAll(async () => {
  await Promise.all([model?.close(), github?.close(), gitHttp?.close()]);
  await cp?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function helmValues(): string[] {
  const [repo, tag] = [controllerRef.slice(0, controllerRef.lastIndexOf(":")), controllerRef.slice(controllerRef.lastIndexOf(":") + 1)];
  const [arepo, atag] = [agentRef.slice(0, agentRef.lastIndexOf(":")), agentRef.slice(agentRef.lastIndexOf(":") + 1)];
  return [
    "--set",
    `image.repository=${repo}`,
    "--set",
    `image.tag=${tag}`,
    "--set",
    "image.pullPolicy=Never",
    "--set",
    `secrets.anthropicApiKey=${API_KEY}`,
    "--set",
    `secrets.apiTokens=${API_TOKEN}`,
    "--set",
    `agent.image.repository=${arepo}`,
    "--set",
    `agent.image.tag=${atag}`,
    "--set",
    "agent.image.pullPolicy=Never",
    "--set",
    "agent.resources.requests.cpu=50m",
    "--set",
    "agent.resources.requests.memory=128Mi",
    "--set",
    `agent.anthropicBaseUrl=${model.url}`,
    "--set",
    `github.apiUrl=${github.url}`,
    "--set",
    `github.url=${gitHttp.url}`,
    "--set-file",
    `github.caBundle=${cp.certs.caCert}`,
    "--set",
    "storage.storageClassName=local-path",
    "--set",
    "storage.workspaceSize=1Gi",
    "--set",
    "resources.requests.cpu=50m",
    "--set",
    "ingress.enabled=false",
  ];
}

async function portForward(): Promise<{ url: string; proc: ResultPromise }> {
  const [port] = (await freePorts(1)) as [number];
  const proc = execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, "-n", NS, "port-forward", "svc/orchestrator", `${port}:80`], {
    reject: false,
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (
    !(await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error("port-forward to svc/orchestrator did not answer /health");
    await new Promise((r) => setTimeout(r, 300));
  }
  return { url, proc };
}

describe.each([
  ["Helm 4", () => inject("helm"), 91],
  ["Helm 3", () => inject("helm3"), 92],
])("the README with %s", (_label, helmBin, taskId) => {
  it("installs, serves /health through port-forward, turns a task into a PR, upgrades and uninstalls", async () => {
    const helm = (...args: string[]) => execa(helmBin(), ["--kubeconfig", cp.kubeconfigPath, ...args], { cwd: repoRoot() });
    await helm("install", "orchestrator", "./infra/orchestrator-chart", "--namespace", NS, ...helmValues(), "--wait", "--timeout", "180s");
    const apps = cp.kubeConfig.makeApiClient(AppsV1Api);
    const dep = await apps.readNamespacedDeployment({ name: "orchestrator", namespace: NS });
    expect(dep.status?.readyReplicas).toBe(1);

    const pf = await portForward();
    try {
      const health = await fetch(`${pf.url}/health`);
      expect(health.status).toBe(200);
      model.setResponder((req) =>
        toolResults(req) === 0
          ? { tool: "Write", input: { file_path: `${podWorkDir("services/api")}/version.js`, content: "export const version = '1';\n" } }
          : { text: "Done." },
      );
      const submit = await fetch(`${pf.url}/api/v1/pm/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({
          task_id: taskId,
          service: `api-${taskId}`,
          repository_url: `${gitHttp.url}/org/target.git`,
          docs_repository_url: `${gitHttp.url}/org/docs.git`,
          working_directory: "services/api",
          github_user: USER,
        }),
      });
      const created = (await submit.json()) as { data: { coderun_name: string } };
      expect(submit.status, JSON.stringify(created)).toBe(201);
      const name = created.data.coderun_name;
      let phase = "";
      let pr = "";
      let last: unknown;
      const deadline = Date.now() + 240_000;
      while (!["Succeeded", "Failed", "Cancelled"].includes(phase) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        const r = (await (
          await fetch(`${pf.url}/api/v1/runs/coderun/${name}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
        ).json()) as { data?: { status?: { phase?: string; pullRequestUrl?: string } } };
        last = r.data?.status;
        phase = r.data?.status?.phase ?? "";
        pr = r.data?.status?.pullRequestUrl ?? "";
      }
      expect(phase, JSON.stringify(last)).toBe("Succeeded");
      const pulls = github.pullsFor("org", "target").filter((p) => p.head === `feature/task-${taskId}-implementation`);
      expect(pulls).toHaveLength(1);
      expect(pr).toBe(pulls[0]?.html_url);
      expect(listFiles(bare("target"), pulls[0]?.head ?? "")).toContain("services/api/version.js");
      // The README's logs command shows the controller's work on this run.
      const logs = await kubectl("logs", "-n", NS, "deployment/orchestrator");
      expect(logs.stdout).toContain(name);
    } finally {
      pf.proc.kill();
      await pf.proc;
    }

    await helm(
      "upgrade",
      "orchestrator",
      "./infra/orchestrator-chart",
      "--namespace",
      NS,
      "--reuse-values",
      "--set",
      "controller.workers=4",
      "--wait",
      "--timeout",
      "180s",
    );
    const cm = await kubectl("get", "configmap", "-n", NS, "-o", "jsonpath={.items[*].data}");
    expect(cm.stdout).toMatch(/workers: 4/);
    await helm("uninstall", "orchestrator", "--namespace", NS, "--wait");
    const left = await kubectl(
      "get",
      "deployment,service,configmap,role,rolebinding,serviceaccount",
      "-n",
      NS,
      "-l",
      "app.kubernetes.io/instance=orchestrator",
      "-o",
      "name",
    );
    expect(left.stdout.trim()).toBe("");
  });
});
