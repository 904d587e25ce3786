// A private containerd for image tests: its own root, state, socket and runc root under a temp
// dir, no CRI plugin, so it never meets the node's containerd (/run/containerd) or kubelet.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { ManagedProcess, recordPid, registerTempRoot, releaseTempRoot } from "../../src/controlplane/process.js";

/** The namespace kubelet's containerd uses; images are imported exactly as the node harness does. */
export const K8S_NAMESPACE = "k8s.io";

export interface RunOptions {
  env?: Record<string, string>;
  /** Container path → host path. */
  readOnlyMounts?: Record<string, string>;
  /** Share the host's network namespace (to reach servers on 127.0.0.1). */
  netHost?: boolean;
  timeoutMs?: number;
}

export class PrivateContainerd {
  private constructor(
    readonly root: string,
    private readonly proc: ManagedProcess,
  ) {}

  get address(): string {
    return path.join(this.root, "containerd.sock");
  }

  static async start(): Promise<PrivateContainerd> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-containerd-"));
    registerTempRoot(root);
    const config = [
      "version = 2",
      `root = "${root}/root"`,
      `state = "${root}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${root}/containerd.sock"`,
      "[ttrpc]",
      `  address = "${root}/containerd.sock.ttrpc"`,
    ].join("\n");
    fs.writeFileSync(path.join(root, "config.toml"), config + "\n");
    const proc = ManagedProcess.start({
      name: "containerd",
      command: "containerd",
      args: ["--config", path.join(root, "config.toml")],
      logFile: path.join(root, "containerd.log"),
    });
    recordPid(root, proc.pid);
    const ctd = new PrivateContainerd(root, proc);
    const deadline = Date.now() + 20_000;
    while (!(await ctd.ctr(["version"])).ok) {
      if (!proc.running) throw proc.exitError("while starting (is containerd installed? apt-get install containerd)");
      if (Date.now() > deadline) throw new Error(`containerd did not answer on ${ctd.address} within 20s:\n${proc.outputTail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return ctd;
  }

  /** Runs ctr against this containerd in the k8s.io namespace. */
  async ctr(args: string[], timeoutMs = 120_000): Promise<{ ok: boolean; exitCode: number | undefined; stdout: string; stderr: string }> {
    const r = await execa("ctr", ["--address", this.address, "--namespace", K8S_NAMESPACE, ...args], { reject: false, timeout: timeoutMs });
    return { ok: r.exitCode === 0, exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /**
   * `ctr run --rm` of an imported image; `args` replace the image's entrypoint and command (none:
   * the image's own). runc state and FIFOs stay under the temp dir.
   */
  run(ref: string, id: string, args: string[] = [], opts: RunOptions = {}): ResultPromise<{ reject: false }> {
    const flags = ["--rm", "--runc-root", path.join(this.root, "runc"), "--fifo-dir", path.join(this.root, "fifo")];
    if (opts.netHost) flags.push("--net-host");
    for (const [k, v] of Object.entries(opts.env ?? {})) flags.push("--env", `${k}=${v}`);
    for (const [dst, src] of Object.entries(opts.readOnlyMounts ?? {}))
      flags.push("--mount", `type=bind,src=${src},dst=${dst},options=rbind:ro`);
    return execa("ctr", ["--address", this.address, "--namespace", K8S_NAMESPACE, "run", ...flags, ref, id, ...args], {
      reject: false,
      timeout: opts.timeoutMs ?? 120_000,
    });
  }

  /** Kills what still runs (a failed test may leave a task), then stops containerd and removes the temp dir. */
  async stop(): Promise<void> {
    const tasks = await this.ctr(["tasks", "ls", "-q"]);
    for (const id of tasks.stdout.split("\n").filter(Boolean)) {
      await this.ctr(["tasks", "kill", "-s", "SIGKILL", id]);
      await this.ctr(["tasks", "delete", "-f", id]);
    }
    for (const id of (await this.ctr(["containers", "ls", "-q"])).stdout.split("\n").filter(Boolean))
      await this.ctr(["containers", "rm", id]);
    await this.proc.stop(10_000);
    releaseTempRoot(this.root);
  }
}
