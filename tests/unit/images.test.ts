// The pure parts of the image builder: definitions, references, OCI documents, source hashing.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { listDefinitions } from "../../src/images/build.js";
import { computeRef, ImageDefinitionError, parseImageDefinition, type ImageDefinition } from "../../src/images/definition.js";
import { execa } from "execa";
import { buildLayer, hashTree } from "../../src/images/layers.js";
import { withLock } from "../../src/images/lock.js";
import { buildPublishCommand, computePublishTarget } from "../../src/images/publish.js";
import { buildDockerManifest, buildImageConfig, buildIndex, buildManifest, MediaType, sha256Digest } from "../../src/images/oci.js";

const repo = path.resolve(import.meta.dirname, "../..");

const minimal = (extra: string) =>
  `name: orchestrator/test\nlayers:\n  - go: {source: images/pause, to: /pause}\nconfig:\n  entrypoint: ["/pause"]\n${extra}`;

describe("image definitions", () => {
  it("every images/*.yaml parses", () => {
    const defs = listDefinitions(repo);
    expect([...defs.keys()]).toEqual(expect.arrayContaining(["busybox", "pause"]));
    for (const [, file] of defs) expect(() => parseImageDefinition(fs.readFileSync(file, "utf8"), file)).not.toThrow();
  });

  it.each([
    [
      "an unpinned Debian package",
      "name: a/b\nlayers:\n  - debian: {suite: bookworm, sources: [http://deb.debian.org/debian], variant: minbase, packages: [git]}\nconfig: {}\n",
      /layers\.0\.debian\.packages\.0: must pin the version as name=version/,
    ],
    [
      "a relative image path",
      "name: a/b\nlayers:\n  - go: {source: images/pause, to: pause}\nconfig: {}\n",
      /layers\.0\.go\.to: must be an absolute path/,
    ],
    ["a path climbing out", "name: a/b\nlayers:\n  - files: {links: {/a/../../b: x}}\nconfig: {}\n", /must not contain '\.\.'/],
    ["an unknown layer kind", "name: a/b\nlayers:\n  - docker: {from: node}\nconfig: {}\n", /layers\.0: Unrecognized key: "docker"/],
    [
      "two kinds in one layer",
      "name: a/b\nlayers:\n  - {app: {to: /a}, go: {source: s, to: /b}}\nconfig: {}\n",
      /layers\.0: each layer has exactly one kind/,
    ],
    ["an unknown config key", minimal("  healthcheck: yes\n"), /config: Unrecognized key/],
    [
      "an upper-case name",
      "name: Orchestrator/X\nlayers: [{go: {source: s, to: /x}}]\nconfig: {}\n",
      /name: must be a lower-case repository name/,
    ],
    ["no layers", "name: a/b\nlayers: []\nconfig: {}\n", /layers: /],
    ["broken YAML", "name: [", /not valid YAML/],
  ])("rejects %s, naming the file and the field", (_what, text, message) => {
    let err: unknown;
    try {
      parseImageDefinition(text, "images/x.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImageDefinitionError);
    expect((err as Error).message).toMatch(/^images\/x\.yaml/);
    expect((err as Error).message).toMatch(message);
  });

  it.each([
    ["orchestrator/agent", undefined, "docker.io/orchestrator/agent:0.1.0"],
    ["orchestrator/pause", "1.0", "docker.io/orchestrator/pause:1.0"],
    ["ghcr.io/acme/agent", undefined, "ghcr.io/acme/agent:0.1.0"],
    ["localhost/agent", "dev", "localhost/agent:dev"],
  ])("%s (tag %s) is referenced as %s", (name, tag, ref) => {
    const def = { ...parseImageDefinition(minimal(""), "x"), name, tag } as ImageDefinition;
    expect(computeRef(def, "0.1.0")).toBe(ref);
  });
});

describe("OCI documents", () => {
  const config = parseImageDefinition(minimal("  user: '1000:1000'\n  env: {A: b}\n  workdir: /w\n  ports: [8080]\n"), "x").config;
  const layer = { mediaType: MediaType.layer, digest: sha256Digest("layer"), size: 5 };

  it("the config carries the runtime settings and the layers' diff_ids, with fixed timestamps", () => {
    const blob = buildImageConfig(config, [layer.digest]);
    const doc = JSON.parse(blob.bytes.toString()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      created: "1970-01-01T00:00:00Z",
      architecture: "amd64",
      os: "linux",
      config: { User: "1000:1000", Env: ["A=b"], WorkingDir: "/w", Entrypoint: ["/pause"], ExposedPorts: { "8080/tcp": {} } },
      rootfs: { type: "layers", diff_ids: [layer.digest] },
    });
    expect(blob.descriptor).toEqual({ mediaType: MediaType.config, digest: sha256Digest(blob.bytes), size: blob.bytes.length });
    expect(buildImageConfig(config, [layer.digest]).bytes.equals(blob.bytes)).toBe(true);
  });

  it("the index names the manifest for containerd and OCI tools; manifest.json for docker load", () => {
    const cfg = buildImageConfig(config, [layer.digest]);
    const manifest = buildManifest(cfg.descriptor, [layer]);
    expect(JSON.parse(manifest.bytes.toString())).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.manifest,
      config: cfg.descriptor,
      layers: [layer],
    });
    const index = JSON.parse(buildIndex(manifest.descriptor, "docker.io/orchestrator/agent:0.1.0").toString()) as {
      manifests: { annotations: Record<string, string>; digest: string }[];
    };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]?.digest).toBe(manifest.descriptor.digest);
    expect(index.manifests[0]?.annotations).toEqual({
      "io.containerd.image.name": "docker.io/orchestrator/agent:0.1.0",
      "org.opencontainers.image.ref.name": "0.1.0",
    });
    const docker = JSON.parse(buildDockerManifest(cfg.descriptor, [layer], "docker.io/orchestrator/agent:0.1.0").toString()) as unknown;
    expect(docker).toEqual([
      {
        Config: `blobs/sha256/${cfg.descriptor.digest.slice(7)}`,
        RepoTags: ["orchestrator/agent:0.1.0"],
        Layers: [`blobs/sha256/${layer.digest.slice(7)}`],
      },
    ]);
  });
});

describe("hashTree", () => {
  it("changes with a file's content, name or executable bit, and only then", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-hash-"));
    try {
      fs.mkdirSync(path.join(dir, "src"));
      fs.writeFileSync(path.join(dir, "src", "a.ts"), "a");
      fs.writeFileSync(path.join(dir, "package.json"), "{}");
      const h = () => hashTree(dir, ["src", "package.json"]);
      const first = h();
      expect(h()).toBe(first);
      fs.writeFileSync(path.join(dir, "src", "a.ts"), "b");
      const second = h();
      expect(second).not.toBe(first);
      fs.chmodSync(path.join(dir, "src", "a.ts"), 0o755);
      const third = h();
      expect(third).not.toBe(second);
      fs.renameSync(path.join(dir, "src", "a.ts"), path.join(dir, "src", "b.ts"));
      expect(h()).not.toBe(third);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("publishing", () => {
  it.each([
    ["ghcr.io/acme", "docker.io/orchestrator/agent:0.1.0", "ghcr.io/acme/orchestrator/agent:0.1.0"],
    ["docker://ghcr.io/acme/", "docker.io/orchestrator/controller:0.1.0", "ghcr.io/acme/orchestrator/controller:0.1.0"],
    ["localhost:5000", "docker.io/orchestrator/pause:1.0", "localhost:5000/orchestrator/pause:1.0"],
  ])("%s + %s → %s", (prefix, ref, target) => {
    expect(computePublishTarget(prefix, ref)).toBe(target);
  });

  it("refuses a prefix that is not a registry path", () => {
    expect(() => computePublishTarget("https://ghcr.io/Acme", "docker.io/a/b:1")).toThrow(
      /--registry https:\/\/ghcr.io\/Acme is not a registry prefix such as ghcr.io\/acme/,
    );
  });

  it("pushes the tested archive itself with skopeo", () => {
    const img = {
      name: "agent",
      ref: "docker.io/orchestrator/agent:0.1.0",
      archive: "/cache/agent-1.tar",
      digest: "sha256:1",
      cached: true,
    };
    expect(buildPublishCommand(img, "ghcr.io/acme/orchestrator/agent:0.1.0")).toEqual([
      "skopeo",
      "copy",
      "--retry-times=3",
      "--dest-compress-format=gzip",
      "oci-archive:/cache/agent-1.tar",
      "docker://ghcr.io/acme/orchestrator/agent:0.1.0",
    ]);
  });
});

describe("layer tars", () => {
  it("are reproducible: same definition, byte-identical tar, with the staged owners and modes and epoch mtimes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-layer-"));
    try {
      const layer = {
        files: { dirs: [{ path: "/workspace", mode: "0750", owner: "1000:1000" }], links: { "/usr/local/bin/tool": "/app/tool.js" } },
      };
      const ctx = { repoRoot: repo, lock: { packages: {} }, log: () => {} };
      const tars: Buffer[] = [];
      for (const n of [1, 2]) {
        const stage = path.join(dir, `stage${n}`);
        fs.mkdirSync(stage);
        await buildLayer(layer, ctx, stage, path.join(dir, `layer${n}.tar`));
        tars.push(fs.readFileSync(path.join(dir, `layer${n}.tar`)));
      }
      expect(tars[0]?.equals(tars[1] ?? Buffer.alloc(0))).toBe(true);
      const listing = (
        await execa("tar", ["--list", "--verbose", "--numeric-owner", "--full-time", `--file=${path.join(dir, "layer1.tar")}`])
      ).stdout.split("\n");
      expect(listing).toEqual([
        "drwxr-xr-x 0/0               0 1970-01-01 00:00:00 usr/",
        "drwxr-xr-x 0/0               0 1970-01-01 00:00:00 usr/local/",
        "drwxr-xr-x 0/0               0 1970-01-01 00:00:00 usr/local/bin/",
        "lrwxrwxrwx 0/0               0 1970-01-01 00:00:00 usr/local/bin/tool -> /app/tool.js",
        "drwxr-x--- 1000/1000         0 1970-01-01 00:00:00 workspace/",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("withLock", () => {
  it("builds an entry once when two callers want it at the same time; the second gets the first's result", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-lock-"));
    try {
      let entry: string | undefined;
      let builds = 0;
      const build = async () => {
        builds++;
        await new Promise((r) => setTimeout(r, 100));
        entry = `built ${builds}`;
        return entry;
      };
      const results = await Promise.all([
        withLock(path.join(dir, "x.lock"), () => entry, build, 20),
        withLock(path.join(dir, "x.lock"), () => entry, build, 20),
      ]);
      expect(results).toEqual(["built 1", "built 1"]);
      expect(builds).toBe(1);
      expect(fs.existsSync(path.join(dir, "x.lock"))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes over a lock whose holder died", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-lock-"));
    try {
      const dead = spawnSync("true");
      fs.mkdirSync(path.join(dir, "x.lock"));
      fs.writeFileSync(path.join(dir, "x.lock", "pid"), String(dead.pid));
      await expect(
        withLock(
          path.join(dir, "x.lock"),
          () => undefined,
          async () => "mine",
          20,
        ),
      ).resolves.toBe("mine");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
