// Image definitions (images/<name>.yaml): the one description of each image. The local build,
// the tests and publishing all build from it (src/images/build.ts); nothing else describes an
// image. Parsing is pure.
import path from "node:path";
import YAML from "yaml";
import { z } from "zod";

const imagePath = z
  .string()
  .regex(/^\/[^\0]*$/, "must be an absolute path inside the image")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'");

const pinnedPackage = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9+.-]+=[A-Za-z0-9.+~:-]+$/,
    "must pin the version as name=version ('apt-cache policy <name>' shows the candidate)",
  );

/** A Debian root filesystem made by mmdebstrap from a pinned suite and pinned packages. */
const debianLayer = z.strictObject({
  suite: z.string().regex(/^[a-z]+$/, "must be a Debian suite name such as bookworm"),
  /** mmdebstrap mirror arguments: a URL (used for the suite's main component) or a full sources line. */
  sources: z.array(z.string().min(1)).min(1),
  /** minbase: Essential packages + apt, installed. extract: only the listed packages, unpacked. */
  variant: z.enum(["minbase", "extract"]),
  packages: z.array(pinnedPackage).default([]),
  /** Shell commands run after installation (mmdebstrap --customize-hook); "$1" is the root directory. */
  hooks: z.array(z.string().min(1)).default([]),
});

/** A static Go program built from a directory of this repository (CGO off, -trimpath). */
const goLayer = z.strictObject({ source: z.string().min(1), to: imagePath });

/** Files of an installed npm package (its version is the one package-lock.json pins). */
const npmLayer = z.strictObject({ package: z.string().min(1), files: z.record(z.string().min(1), imagePath) });

/** The orchestrator itself: dist/ compiled from src/, and package.json. */
const appLayer = z.strictObject({ to: imagePath });

/** The orchestrator's production node_modules, installed from package-lock.json. */
const dependenciesLayer = z.strictObject({ to: imagePath });

const ownedDir = z.strictObject({
  path: imagePath,
  mode: z.string().regex(/^[0-7]{3,4}$/, "must be an octal mode such as 0755"),
  owner: z.string().regex(/^\d+:\d+$/, "must be uid:gid"),
});

/** Directories with an owner and mode, and symbolic links (path → target). */
const filesLayer = z.strictObject({ dirs: z.array(ownedDir).default([]), links: z.record(imagePath, z.string().min(1)).default({}) });

type OneOf<T> = { [K in keyof T]: { [P in K]: T[P] } }[keyof T];

/** Exactly one kind per layer; each kind's fields are checked, so errors name the exact field. */
export type DebianLayer = z.infer<typeof debianLayer>;
export type GoLayer = z.infer<typeof goLayer>;
export type NpmLayer = z.infer<typeof npmLayer>;
export type AppLayer = z.infer<typeof appLayer>;
export type DependenciesLayer = z.infer<typeof dependenciesLayer>;
export type FilesLayer = z.infer<typeof filesLayer>;
const layerSchema = z
  .strictObject({
    debian: debianLayer.optional(),
    go: goLayer.optional(),
    npm: npmLayer.optional(),
    app: appLayer.optional(),
    dependencies: dependenciesLayer.optional(),
    files: filesLayer.optional(),
  })
  .refine((l) => Object.keys(l).length === 1, "each layer has exactly one kind: debian, go, npm, dependencies, app or files")
  .transform(
    (l) =>
      l as OneOf<{ debian: DebianLayer; go: GoLayer; npm: NpmLayer; dependencies: DependenciesLayer; app: AppLayer; files: FilesLayer }>,
  );

const configSchema = z.strictObject({
  user: z
    .string()
    .regex(/^\d+(:\d+)?$/, "must be a numeric uid or uid:gid")
    .optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name"), z.string()).default({}),
  workdir: imagePath.optional(),
  entrypoint: z.array(z.string()).min(1).optional(),
  cmd: z.array(z.string()).min(1).optional(),
  ports: z.array(z.number().int().min(1).max(65535)).default([]),
  labels: z.record(z.string(), z.string()).default({}),
});

const definitionSchema = z.strictObject({
  /** Repository name without registry, e.g. orchestrator/agent. */
  name: z
    .string()
    .regex(
      /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/,
      "must be a lower-case repository name such as orchestrator/agent",
    ),
  /** Fixed tag; when absent the image is tagged with package.json's version. */
  tag: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be a valid image tag")
    .optional(),
  layers: z.array(layerSchema).min(1),
  config: configSchema,
});

export type ImageDefinition = z.infer<typeof definitionSchema>;
export type LayerDefinition = ImageDefinition["layers"][number];

export type ImageConfigDefinition = ImageDefinition["config"];

/** An invalid images/<name>.yaml; the message names the file and every problem. */
export class ImageDefinitionError extends Error {
  override name = "ImageDefinitionError";
}

/** Parses and validates one definition file's text. `file` only labels errors. */
export function parseImageDefinition(text: string, file: string): ImageDefinition {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ImageDefinitionError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const result = definitionSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join(".") || "(top level)"}: ${issueMessage(i)}`);
    throw new ImageDefinitionError(`${file} is not a valid image definition (see images/README.md):\n${problems.join("\n")}`);
  }
  return result.data;
}

/** A record key's issue carries the key schema's own messages; show those. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key" && issue.issues.length) return `invalid key: ${issue.issues.map((i) => i.message).join("; ")}`;
  return issue.message;
}

/** The short name of a definition file: images/agent.yaml → agent. */
export function definitionName(file: string): string {
  return path.basename(file).replace(/\.ya?ml$/, "");
}

/** The tag an image gets: its fixed tag, else the project version. */
export function computeTag(def: ImageDefinition, projectVersion: string): string {
  return def.tag ?? projectVersion;
}

/** The fully qualified reference containerd stores and kubelet resolves (docker.io/ is implied by short names). */
export function computeRef(def: ImageDefinition, projectVersion: string): string {
  const first = def.name.split("/")[0] ?? "";
  const domain = first.includes(".") || first.includes(":") || first === "localhost" ? "" : "docker.io/";
  return `${domain}${def.name}:${computeTag(def, projectVersion)}`;
}
