/** The agent container's runner before its task: it stops on SIGTERM even while the channel never answers. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import { freePorts } from "../../src/controlplane/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("agent runner", () => {
  it("stops at SIGTERM while its channel is not listening, and says it was stopped", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-stop-"));
    fs.mkdirSync(path.join(dir, "dev"));
    // A loopback port nothing listens on (bound, then closed).
    const [port] = (await freePorts(1)) as [number];
    const runner = execa(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cmd/runner.ts")], {
      cwd: ROOT,
      env: { AGENT_ROOT: dir, CHANNEL_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: "silent" },
      reject: false,
      timeout: 20_000,
    });
    // Past its start-up, it is asking the channel (every 25 ms) for the rest of its ten minutes.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const stoppedAt = Date.now();
    runner.kill("SIGTERM");
    const done = await runner;
    expect(done.timedOut).toBe(false);
    expect(done.exitCode).toBe(1);
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    const result = JSON.parse(fs.readFileSync(path.join(dir, "dev/termination-log"), "utf8")) as { reason: string; message: string };
    expect(result).toMatchObject({ outcome: "failed", reason: "Terminated" });
    expect(result.message).toMatch(/stopped \(SIGTERM\) before the channel handed out its task/);
  });
});
