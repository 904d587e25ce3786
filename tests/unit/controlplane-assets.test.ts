import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ensureControlPlaneBinaries, pinnedVersions } from "../../src/controlplane/assets.js";

const saved = { ...process.env };

afterEach(() => {
  for (const k of ["PATH", "ORCHESTRATOR_CACHE", "KUBEBUILDER_ASSETS"]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe("ensureControlPlaneBinaries", () => {
  it("fails with the script's stderr and what to install when binaries cannot be obtained", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-nocache-"));
    try {
      // Empty cache, no Go toolchain on PATH, no KUBEBUILDER_ASSETS.
      process.env.ORCHESTRATOR_CACHE = cache;
      process.env.PATH = "/usr/bin:/bin";
      delete process.env.KUBEBUILDER_ASSETS;
      const err = await ensureControlPlaneBinaries({ log: () => {} }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/Go >= 1\.25/);
      expect(err?.message).toMatch(/KUBEBUILDER_ASSETS/);
      expect(err?.message).toContain("no Go toolchain on PATH"); // from build.sh's stderr
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });

  it("uses KUBEBUILDER_ASSETS binaries without building", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-assets-cache-"));
    const assets = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-assets-"));
    try {
      for (const b of [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "kwok",
        "local-path-provisioner",
        "coredns",
      ]) {
        fs.writeFileSync(path.join(assets, b), "#!/bin/sh\necho fake\n", { mode: 0o755 });
      }
      process.env.ORCHESTRATOR_CACHE = cache;
      process.env.KUBEBUILDER_ASSETS = assets;
      process.env.PATH = "/usr/bin:/bin";
      const bins = await ensureControlPlaneBinaries({ log: () => {} });
      expect(bins.binDir.startsWith(cache)).toBe(true);
      expect(fs.realpathSync(path.join(bins.binDir, "etcd"))).toBe(fs.realpathSync(path.join(assets, "etcd")));
      expect(fs.realpathSync(path.join(bins.binDir, "coredns"))).toBe(fs.realpathSync(path.join(assets, "coredns")));
      expect(bins.buildSeconds).toEqual({});
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
      fs.rmSync(assets, { recursive: true, force: true });
    }
  });
});

describe("pinnedVersions", () => {
  it("reads hack/control-plane/versions.env", () => {
    const v = pinnedVersions();
    expect(v.KUBERNETES_VERSION).toMatch(/^v1\.\d+\.\d+$/);
    expect(v.ETCD_VERSION).toMatch(/^v3\.\d+\.\d+$/);
    expect(v.KWOK_VERSION).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(v.COREDNS_VERSION).toMatch(/^v1\.\d+\.\d+$/);
  });
});
