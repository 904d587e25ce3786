import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ManagedProcess, RingBuffer, liveProcessCount } from "../../src/controlplane/process.js";
import { freePorts } from "../../src/controlplane/net.js";

describe("RingBuffer", () => {
  it("keeps only the most recent lines", () => {
    const r = new RingBuffer(3);
    for (const l of ["a", "b", "c", "d", "e"]) r.push(l);
    expect(r.tail(10)).toEqual(["c", "d", "e"]);
    expect(r.tail(2)).toEqual(["d", "e"]);
  });
});

describe("ManagedProcess", () => {
  it("reports exit code and stderr tail of a process that dies", async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "cp-proc-")), "x.log");
    const p = ManagedProcess.start({ name: "fake", command: "bash", args: ["-c", "echo out; echo boom >&2; exit 3"], logFile: log });
    const info = await p.exited;
    expect(info.code).toBe(3);
    const err = p.exitError("during start-up");
    expect(err.message).toContain("fake exited with code 3 during start-up");
    expect(err.message).toContain("boom");
    expect(fs.readFileSync(log, "utf8")).toContain("boom");
    fs.rmSync(path.dirname(log), { recursive: true });
  });

  it("reports binaries that cannot be spawned", async () => {
    const p = ManagedProcess.start({ name: "missing", command: "/nonexistent/binary", args: [] });
    const info = await p.exited;
    expect(info.error).toBeDefined();
    expect(p.exitError("x").message).toContain("could not be started");
  });

  it("stops with SIGTERM, escalating to SIGKILL", async () => {
    const before = liveProcessCount();
    const stubborn = ManagedProcess.start({
      name: "stubborn",
      command: "bash",
      args: ["-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"],
    });
    while (stubborn.stdout.size === 0) await new Promise((r) => setTimeout(r, 20));
    expect(liveProcessCount()).toBe(before + 1);
    const info = await stubborn.stop(300);
    expect(info.signal).toBe("SIGKILL");
    expect(liveProcessCount()).toBe(before);
  });
});

describe("freePorts", () => {
  it("returns distinct loopback ports", async () => {
    const ports = await freePorts(6);
    expect(new Set(ports).size).toBe(6);
    for (const p of ports) expect(p).toBeGreaterThan(0);
  });
});
