// The images built from images/*.yaml, imported into a real (private) containerd exactly as the
// node harness imports them (`ctr -n k8s.io images import`) and run with runc.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureImages } from "../../src/controlplane/images.js";
import type { BuiltImage } from "../../src/images/index.js";
import { PrivateContainerd } from "../support/containerd.js";

const NODE_IMAGES = ["pause", "busybox"];

let images: BuiltImage[];
let containerd: PrivateContainerd;

function image(name: string): BuiltImage {
  const img = images.find((i) => i.name === name);
  if (!img) throw new Error(`image ${name} was not built`);
  return img;
}

beforeAll(async () => {
  images = await ensureImages(NODE_IMAGES);
  containerd = await PrivateContainerd.start();
  for (const img of images) {
    const r = await containerd.ctr(["images", "import", img.archive]);
    expect(r.stderr, `import of ${img.archive}`).toBe("");
    expect(r.ok).toBe(true);
  }
}, 600_000);

afterAll(async () => {
  await containerd?.stop();
});

describe("node images", () => {
  it("are imported under the references ensureImages reports, with the manifest digests it reports", async () => {
    const ls = await containerd.ctr(["images", "ls"]);
    for (const img of images) {
      const row = ls.stdout.split("\n").find((l) => l.startsWith(`${img.ref} `));
      expect(row, `${img.ref} in:\n${ls.stdout}`).toBeDefined();
      expect(row).toContain(img.digest);
      expect(row).toContain("linux/amd64");
    }
    expect(image("pause").ref).toBe("docker.io/orchestrator/pause:1.0");
    expect(image("busybox").ref).toMatch(/^docker\.io\/orchestrator\/busybox:/);
  });

  it("busybox runs its shell and applets", async () => {
    const r = await containerd.run(image("busybox").ref, "busybox-sh", [
      "sh",
      "-c",
      "echo hello from $(uname -s); id -u; readlink /usr/bin/env; nc 2>&1 | head -1",
    ]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout).split(/\r?\n/).slice(0, 3)).toEqual(["hello from Linux", "0", "/bin/busybox"]);
    expect(String(r.stdout)).toMatch(/BusyBox v1\.35\.0/);
  });

  it("pause runs as 65535, stays up, and exits 0 on SIGTERM", async () => {
    const run = containerd.run(image("pause").ref, "pause-term");
    let exited = false;
    void run.finally(() => (exited = true));
    const pid = await waitForTask("pause-term");
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\s+65535\s+65535/m);
    await new Promise((r) => setTimeout(r, 500));
    expect(exited).toBe(false); // still sleeping
    const kill = await containerd.ctr(["tasks", "kill", "-s", "SIGTERM", "pause-term"]);
    expect(kill.ok, kill.stderr).toBe(true);
    const done = await run;
    expect(done.exitCode, String(done.stderr)).toBe(0);
  });

  it("skopeo, which publishes, reads the archive as the same image (digest and config)", async () => {
    const img = image("busybox");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-skopeo-"));
    try {
      const inspect = await execa("skopeo", ["inspect", `oci-archive:${img.archive}`]);
      expect(JSON.parse(inspect.stdout)).toMatchObject({ Digest: img.digest, Architecture: "amd64", Os: "linux" });
      const copy = await execa(
        "skopeo",
        ["copy", "--dest-oci-accept-uncompressed-layers", `oci-archive:${img.archive}`, `oci:${dir}:copy`],
        { reject: false },
      );
      expect(copy.exitCode, String(copy.stderr)).toBe(0);
      const index = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")) as { manifests: { digest: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([img.digest]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a second build of unchanged definitions comes from the cache in seconds", async () => {
    const started = performance.now();
    const again = await ensureImages(NODE_IMAGES);
    const seconds = (performance.now() - started) / 1000;
    expect(again.map((i) => ({ ...i, cached: true }))).toEqual(images.map((i) => ({ ...i, cached: true })));
    expect(again.every((i) => i.cached)).toBe(true);
    // Hashing the sources only: a rebuild of even the dist layer takes over a minute.
    expect(seconds).toBeLessThan(30);
  });
});

/** The host pid of a running task, once `ctr tasks ls` shows it RUNNING. */
async function waitForTask(id: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ls = await containerd.ctr(["tasks", "ls"]);
    const m = new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, "m").exec(ls.stdout);
    if (m?.[1]) return Number(m[1]);
    if (Date.now() > deadline) throw new Error(`task ${id} is not RUNNING after 30s:\n${ls.stdout}${ls.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
