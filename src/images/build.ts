// Builds images from their definitions (images/<name>.yaml) into OCI archives that
// `ctr images import`, `skopeo copy oci-archive:…` and `docker load` read. Every layer and every
// archive is cached by the hash of its definition and inputs, so a rebuild of unchanged inputs
// only hashes the sources.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { computeRef, definitionName, parseImageDefinition, type ImageDefinition, type LayerDefinition } from "./definition.js";
import { withLock } from "./lock.js";
import { buildLayer, computeLayerInputs, LayerBuildError, type LayerContext, type PackageLock } from "./layers.js";
import {
  buildDockerManifest,
  buildImageConfig,
  buildIndex,
  buildManifest,
  MediaType,
  OCI_LAYOUT,
  type Blob,
  type Descriptor,
} from "./oci.js";

/** Bump when the build's output changes for the same definition, to invalidate every cache entry. */
const BUILD_FORMAT = 1;

export interface BuildImagesOptions {
  repoRoot: string;
  /** Cache directory (layers/ and one archive per image). */
  cacheDir: string;
  /** Short names (agent, controller, pause, busybox); all definitions when absent. */
  names?: string[];
  log?: (line: string) => void;
}

/** A built image archive. */
export interface BuiltImage {
  /** Short name: the definition's file name (agent for images/agent.yaml). */
  name: string;
  /** Fully qualified reference, e.g. docker.io/orchestrator/agent:0.1.0. */
  ref: string;
  /** OCI archive (tar) holding the image. */
  archive: string;
  /** Digest of the image manifest. */
  digest: string;
  /** True when the archive came from the cache. */
  cached: boolean;
}

interface ArchiveMeta {
  ref: string;
  digest: string;
  /** Cache keys of the layers the archive was assembled from. */
  layers: string[];
}

/** A layer no archive uses is deleted once it is this old (younger ones may belong to a build in progress). */
const UNUSED_LAYER_TTL_MS = 60 * 60 * 1000;

/** The definition files in images/, by short name. */
export function listDefinitions(repoRoot: string): Map<string, string> {
  const dir = path.join(repoRoot, "images");
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  return new Map(files.map((f) => [definitionName(f), path.join(dir, f)]));
}

/** Builds (or takes from the cache) the named images, one after the other. */
export async function buildImages(opts: BuildImagesOptions): Promise<BuiltImage[]> {
  const log = opts.log ?? (() => {});
  const defs = listDefinitions(opts.repoRoot);
  const names = opts.names?.length ? opts.names : [...defs.keys()];
  const unknown = names.filter((n) => !defs.has(n));
  if (unknown.length)
    throw new LayerBuildError(`no image definition for ${unknown.join(", ")}; images/ defines: ${[...defs.keys()].join(", ")}`);
  const pkg = readJson<{ version: string }>(path.join(opts.repoRoot, "package.json"));
  const ctx: LayerContext = { repoRoot: opts.repoRoot, lock: readJson<PackageLock>(path.join(opts.repoRoot, "package-lock.json")), log };
  const out: BuiltImage[] = [];
  for (const name of names) {
    const file = defs.get(name) ?? "";
    const def = parseImageDefinition(fs.readFileSync(file, "utf8"), path.relative(opts.repoRoot, file));
    out.push(await buildImage(name, def, computeRef(def, pkg.version), ctx, opts.cacheDir));
  }
  return out;
}

async function buildImage(name: string, def: ImageDefinition, ref: string, ctx: LayerContext, cacheDir: string): Promise<BuiltImage> {
  const layerKeys: string[] = [];
  for (const layer of def.layers) layerKeys.push(hashJson({ BUILD_FORMAT, layer, inputs: await computeLayerInputs(layer, ctx) }));
  const key = hashJson({ BUILD_FORMAT, ref, config: def.config, layerKeys });
  const archive = path.join(cacheDir, `${name}-${key.slice(0, 16)}.tar`);
  const metaFile = `${archive}.json`;
  if (fs.existsSync(archive) && fs.existsSync(metaFile)) {
    const meta = readJson<ArchiveMeta>(metaFile);
    return { name, ref: meta.ref, archive, digest: meta.digest, cached: true };
  }
  const started = performance.now();
  const layers: CachedLayer[] = [];
  for (const [i, layer] of def.layers.entries()) layers.push(await ensureLayer(layer, layerKeys[i] ?? "", ctx, cacheDir));
  const config = buildImageConfig(
    def.config,
    layers.map((l) => l.descriptor.digest),
  );
  const manifest = buildManifest(
    config.descriptor,
    layers.map((l) => l.descriptor),
  );
  await writeArchive(archive, { ref, config, manifest, layers });
  writeAtomic(metaFile, JSON.stringify({ ref, digest: manifest.descriptor.digest, layers: layerKeys } satisfies ArchiveMeta));
  pruneArchives(cacheDir, name, archive);
  pruneLayers(cacheDir, Date.now());
  ctx.log(`built ${ref} in ${((performance.now() - started) / 1000).toFixed(1)}s → ${archive}`);
  return { name, ref, archive, digest: manifest.descriptor.digest, cached: false };
}

interface CachedLayer {
  descriptor: Descriptor;
  /** The layer's tar in the cache. */
  file: string;
}

/** The layer's cached tar, built now if missing. */
async function ensureLayer(layer: LayerDefinition, key: string, ctx: LayerContext, cacheDir: string): Promise<CachedLayer> {
  const dir = path.join(cacheDir, "layers");
  const tar = path.join(dir, `${key}.tar`);
  const metaFile = path.join(dir, `${key}.json`);
  const cached = () =>
    fs.existsSync(tar) && fs.existsSync(metaFile) ? { descriptor: readJson<Descriptor>(metaFile), file: tar } : undefined;
  const hit = cached();
  if (hit) return hit;
  fs.mkdirSync(dir, { recursive: true });
  return withLock(path.join(dir, `${key}.lock`), cached, () => buildCachedLayer(layer, ctx, dir, key));
}

async function buildCachedLayer(layer: LayerDefinition, ctx: LayerContext, dir: string, key: string): Promise<CachedLayer> {
  const tar = path.join(dir, `${key}.tar`);
  // Build beside the cache entry and rename: nobody ever sees half a file.
  const scratch = fs.mkdtempSync(path.join(dir, `${key.slice(0, 16)}.tmp-`));
  try {
    const stage = path.join(scratch, "stage");
    fs.mkdirSync(stage, { mode: 0o755 });
    const started = performance.now();
    await buildLayer(layer, ctx, stage, path.join(scratch, "layer.tar"));
    const descriptor: Descriptor = {
      mediaType: MediaType.layer,
      digest: await fileDigest(path.join(scratch, "layer.tar")),
      size: fs.statSync(path.join(scratch, "layer.tar")).size,
    };
    fs.renameSync(path.join(scratch, "layer.tar"), tar);
    writeAtomic(path.join(dir, `${key}.json`), JSON.stringify(descriptor));
    ctx.log(
      `layer ${Object.keys(layer)[0]} ${descriptor.digest.slice(7, 19)} (${(descriptor.size / 1e6).toFixed(1)} MB) in ${((performance.now() - started) / 1000).toFixed(1)}s`,
    );
    return { descriptor, file: tar };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

interface ArchiveParts {
  ref: string;
  config: Blob;
  manifest: Blob;
  layers: CachedLayer[];
}

/** Writes the OCI image layout (plus Docker's manifest.json) as one tar; layer blobs are hard links to the cache. */
async function writeArchive(archive: string, parts: ArchiveParts): Promise<void> {
  const dir = fs.mkdtempSync(`${archive}.tmp-`);
  try {
    const blobs = path.join(dir, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });
    const blobFile = (d: Descriptor) => path.join(blobs, d.digest.slice("sha256:".length));
    for (const blob of [parts.config, parts.manifest]) fs.writeFileSync(blobFile(blob.descriptor), blob.bytes);
    for (const layer of parts.layers) if (!fs.existsSync(blobFile(layer.descriptor))) fs.linkSync(layer.file, blobFile(layer.descriptor));
    fs.writeFileSync(path.join(dir, "oci-layout"), OCI_LAYOUT);
    fs.writeFileSync(path.join(dir, "index.json"), buildIndex(parts.manifest.descriptor, parts.ref));
    fs.writeFileSync(
      path.join(dir, "manifest.json"),
      buildDockerManifest(
        parts.config.descriptor,
        parts.layers.map((l) => l.descriptor),
        parts.ref,
      ),
    );
    const tmp = path.join(dir, "archive.tar");
    const args = [
      "--create",
      `--file=${tmp}`,
      `--directory=${dir}`,
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@0",
      "--mode=a+r",
      "--format=posix",
      "--pax-option=delete=atime,delete=ctime",
      "oci-layout",
      "index.json",
      "manifest.json",
      "blobs",
    ];
    const r = await execa("tar", args, { reject: false, all: true });
    if (r.exitCode !== 0) throw new LayerBuildError(`tar failed writing ${archive}: ${String(r.all)}`);
    fs.renameSync(tmp, archive);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Keeps only the newest archive per image: an old one is never used again and may be 1 GB. */
function pruneArchives(cacheDir: string, name: string, keep: string): void {
  const re = new RegExp(`^${name}-[0-9a-f]{16}\\.tar(\\.json)?$`);
  for (const f of fs.readdirSync(cacheDir)) {
    const p = path.join(cacheDir, f);
    if (re.test(f) && p !== keep && p !== `${keep}.json`) fs.rmSync(p, { force: true });
  }
}

/** Deletes layers that no kept archive was built from, once they are old enough. */
function pruneLayers(cacheDir: string, now: number): void {
  const used = new Set<string>();
  for (const f of fs.readdirSync(cacheDir))
    if (f.endsWith(".tar.json")) for (const k of readJson<Partial<ArchiveMeta>>(path.join(cacheDir, f)).layers ?? []) used.add(k);
  const dir = path.join(cacheDir, "layers");
  for (const f of fs.readdirSync(dir)) {
    // Scratch directories of builds that were killed (a live build's is younger than the TTL).
    if (/\.tmp-/.test(f) && now - fs.statSync(path.join(dir, f)).mtimeMs > UNUSED_LAYER_TTL_MS)
      fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    const m = /^([0-9a-f]{64})\.(tar|json)$/.exec(f);
    if (!m?.[1] || used.has(m[1])) continue;
    const p = path.join(dir, f);
    if (now - fs.statSync(p).mtimeMs > UNUSED_LAYER_TTL_MS) fs.rmSync(p, { force: true });
  }
}

function hashJson(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}

async function fileDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}
