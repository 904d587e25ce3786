// Pure builders for the JSON documents of an OCI image layout (image-spec v1.0): the image
// config, the manifest, index.json, plus Docker's manifest.json so `docker load` reads the same
// archive. Same input, byte-identical output: the timestamps are fixed, so a rebuild of
// unchanged inputs has the same digest.
import { createHash } from "node:crypto";
import type { ImageConfigDefinition } from "./definition.js";

export const MediaType = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

/** containerd names an imported image after this index annotation. */
export const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";
export const OCI_REF_ANNOTATION = "org.opencontainers.image.ref.name";
const EPOCH = "1970-01-01T00:00:00Z";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** A JSON document ready to be written as a blob. */
export interface Blob {
  bytes: Buffer;
  descriptor: Descriptor;
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function jsonBlob(mediaType: string, doc: unknown): Blob {
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length } };
}

/** The image config: runtime settings plus the uncompressed layers' digests (diff_ids). */
export function buildImageConfig(config: ImageConfigDefinition, diffIds: string[]): Blob {
  const runtime: Record<string, unknown> = {};
  if (config.user) runtime.User = config.user;
  const env = Object.entries(config.env).map(([k, v]) => `${k}=${v}`);
  if (env.length) runtime.Env = env;
  if (config.workdir) runtime.WorkingDir = config.workdir;
  if (config.entrypoint) runtime.Entrypoint = config.entrypoint;
  if (config.cmd) runtime.Cmd = config.cmd;
  if (config.ports.length) runtime.ExposedPorts = Object.fromEntries(config.ports.map((p) => [`${p}/tcp`, {}]));
  if (Object.keys(config.labels).length) runtime.Labels = config.labels;
  return jsonBlob(MediaType.config, {
    created: EPOCH,
    architecture: "amd64",
    os: "linux",
    config: runtime,
    rootfs: { type: "layers", diff_ids: diffIds },
    history: diffIds.map(() => ({ created: EPOCH, created_by: "orchestrator image build" })),
  });
}

export function buildManifest(config: Descriptor, layers: Descriptor[]): Blob {
  return jsonBlob(MediaType.manifest, { schemaVersion: 2, mediaType: MediaType.manifest, config, layers });
}

/** index.json naming the manifest: containerd's importer uses the full reference, OCI tools the tag. */
export function buildIndex(manifest: Descriptor, ref: string): Buffer {
  const tag = ref.slice(ref.lastIndexOf(":") + 1);
  const named = { ...manifest, annotations: { [CONTAINERD_NAME_ANNOTATION]: ref, [OCI_REF_ANNOTATION]: tag } };
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: [named] }));
}

/** Docker's manifest.json (read by `docker load` and skopeo's docker-archive transport). */
export function buildDockerManifest(config: Descriptor, layers: Descriptor[], ref: string): Buffer {
  const blobPath = (d: Descriptor) => `blobs/sha256/${d.digest.slice("sha256:".length)}`;
  const repoTag = ref.replace(/^docker\.io\//, "");
  return Buffer.from(JSON.stringify([{ Config: blobPath(config), RepoTags: [repoTag], Layers: layers.map(blobPath) }]));
}

export const OCI_LAYOUT = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));
