/**
 * The real node leaves the host as it found it: after stop(), and after the process that started
 * it was SIGKILLed (its watchdog, or the next start, runs hack/node/cleanup.sh).
 */
import fs from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { ControlPlane, repoRoot } from "../../src/controlplane/index.js";
import { hostSnapshot, nodeImages } from "../support/real-node.js";

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("real node clean-up", () => {
  it("stop() restores sysctls, iptables, mounts, processes and the bridge", async () => {
    const before = await hostSnapshot();
    const cp = await ControlPlane.start({ mode: "full", node: "real", binDir: inject("controlPlaneBinDir"), nodeImages });
    expect(cp.nodeKind).toBe("real");
    const during = await hostSnapshot();
    expect(during.iptables).toMatch(/KUBE-SERVICES/);
    expect(during.processes.length).toBeGreaterThan(before.processes.length);
    expect(during.processes.some((p) => p.split(" ")[0]?.endsWith("/coredns"))).toBe(true);
    await cp.stop();
    expect(await hostSnapshot()).toEqual(before);
    expect(fs.existsSync("/run/orchestrator-node")).toBe(false);
  });

  it("a SIGKILLed owner's node is cleaned up by its watchdog", async () => {
    const before = await hostSnapshot();
    const script = path.join(repoRoot(), "tests", "node", "fixtures", "start-node.ts");
    const child = execa(process.execPath, ["--import", "tsx", script, inject("controlPlaneBinDir")], {
      cwd: repoRoot(),
      reject: false,
      all: true,
    });
    let out = "";
    child.all?.on("data", (c: Buffer) => (out += c.toString()));
    await waitFor("the child's node to be ready", () => out.includes("NODE READY"), 180_000);
    const during = await hostSnapshot();
    expect(during.iptables).toMatch(/KUBE-SERVICES/);
    child.kill("SIGKILL");
    await child;
    await waitFor("the watchdog's clean-up", async () => !fs.existsSync("/run/orchestrator-node.lock"), 60_000);
    expect(await hostSnapshot()).toEqual(before);
  });
});
