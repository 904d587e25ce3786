// Building one layer of an image definition into an uncompressed, reproducible tar, and the
// fingerprint of its inputs that keys the layer cache.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { execa } from "execa";
import type { AppLayer, DebianLayer, DependenciesLayer, FilesLayer, GoLayer, LayerDefinition, NpmLayer } from "./definition.js";

/** What a layer may read besides its definition. */
export interface LayerContext {
  repoRoot: string;
  /** package-lock.json, parsed. */
  lock: PackageLock;
  log: (line: string) => void;
}

export interface PackageLock {
  packages: Record<string, { version?: string; integrity?: string } | undefined>;
}

/** A layer that cannot be built; the message says what to install or change. */
export class LayerBuildError extends Error {
  override name = "LayerBuildError";
}

/** Files the app layer is compiled from (the server from src/, the dashboard from web/). */
const APP_INPUTS = ["src", "web", "hack/bundle.mjs", "package.json", "tsconfig.json", "tsconfig.build.json"];
/** Files the production dependencies are installed from. */
const DEPENDENCY_INPUTS = ["package.json", "package-lock.json"];

/**
 * The inputs of a layer other than its definition, as a JSON-able value. Cheap (hashes sources,
 * reads the lock file): it decides whether the cached layer is still valid.
 */
export async function computeLayerInputs(layer: LayerDefinition, ctx: LayerContext): Promise<unknown> {
  if ("go" in layer) {
    const go = await run("go", ["env", "GOVERSION"], {}, "install Go (the control-plane build needs it too)");
    return { go: go.trim(), source: hashTree(ctx.repoRoot, [layer.go.source]) };
  }
  if ("npm" in layer) return lockedPackage(layer.npm.package, ctx);
  if ("app" in layer) return { sources: hashTree(ctx.repoRoot, APP_INPUTS), node: process.version };
  if ("dependencies" in layer) return { sources: hashTree(ctx.repoRoot, DEPENDENCY_INPUTS) };
  return null; // debian (pinned packages) and files are fully described by their definition
}

/** Builds the layer into `outTar`, using `stage` (an empty directory) as scratch space. */
export async function buildLayer(layer: LayerDefinition, ctx: LayerContext, stage: string, outTar: string): Promise<void> {
  if ("debian" in layer) return buildDebian(layer.debian, outTar, ctx);
  if ("go" in layer) await buildGo(layer.go, ctx, stage);
  else if ("npm" in layer) copyNpmFiles(layer.npm, ctx, stage);
  else if ("app" in layer) await buildApp(layer.app, ctx, stage);
  else if ("dependencies" in layer) await installDependencies(layer.dependencies, ctx, stage);
  else makeFiles(layer.files, stage);
  await tarDirectory(stage, outTar);
}

async function buildDebian(spec: DebianLayer, outTar: string, ctx: LayerContext): Promise<void> {
  const args = [
    "--mode=unshare",
    `--variant=${spec.variant}`,
    // Device nodes come from the container runtime, never from an image.
    "--skip=output/dev",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    ...(spec.packages.length ? [`--include=${spec.packages.join(",")}`] : []),
    // Hooks run once the packages are in place: installed (minbase) or only unpacked (extract,
    // where mmdebstrap has no customize phase).
    ...spec.hooks.map((h) => `--${spec.variant === "extract" ? "extract" : "customize"}-hook=${h}`),
    spec.suite,
    outTar,
    ...spec.sources,
  ];
  ctx.log(`mmdebstrap ${spec.variant} ${spec.suite}: ${spec.packages.join(" ") || "(no extra packages)"}`);
  // SOURCE_DATE_EPOCH makes mmdebstrap's tarball reproducible (fixed mtimes, sorted entries).
  // A Debian PATH: mmdebstrap runs its python3 helper once per package, and a version manager's
  // python3 shim on PATH (pyenv) multiplies the build time several times over.
  const env = { SOURCE_DATE_EPOCH: "0", PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };
  await run("mmdebstrap", args, env, "apt-get install mmdebstrap uidmap (Debian), run as root or with subuids");
}

async function buildGo(spec: GoLayer, ctx: LayerContext, stage: string): Promise<void> {
  const dir = path.join(ctx.repoRoot, spec.source);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".go") && !f.endsWith("_test.go"))
    .sort();
  if (!files.length) throw new LayerBuildError(`${spec.source} holds no .go files to build`);
  const out = stagePath(stage, spec.to);
  ctx.log(`go build ${spec.source} → ${spec.to}`);
  await run(
    "go",
    ["build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, ...files.map((f) => path.join(dir, f))],
    { CGO_ENABLED: "0", GOFLAGS: "", GOTOOLCHAIN: "local" },
    "install Go",
  );
}

function copyNpmFiles(spec: NpmLayer, ctx: LayerContext, stage: string): void {
  lockedPackage(spec.package, ctx); // fails clearly when node_modules does not match the lock file
  const pkgDir = path.join(ctx.repoRoot, "node_modules", ...spec.package.split("/"));
  for (const [from, to] of Object.entries(spec.files)) {
    const src = path.join(pkgDir, from);
    if (!fs.existsSync(src))
      throw new LayerBuildError(`${spec.package} has no file ${from} (run npm ci; is the package's layout the expected one?)`);
    fs.copyFileSync(src, stagePath(stage, to));
  }
}

async function buildApp(spec: AppLayer, ctx: LayerContext, stage: string): Promise<void> {
  const dest = stagePath(stage, spec.to);
  fs.mkdirSync(dest, { recursive: true });
  ctx.log(`compiling src/ → ${spec.to}/dist`);
  const tsc = path.join(ctx.repoRoot, "node_modules", "typescript", "bin", "tsc");
  await run(
    process.execPath,
    [tsc, "-p", path.join(ctx.repoRoot, "tsconfig.build.json"), "--outDir", path.join(dest, "dist")],
    {},
    "run npm ci",
  );
  ctx.log(`bundling the agent pod's and the controller's entry points → ${spec.to}/dist/agent, dist/cmd/main.js`);
  await run(process.execPath, [path.join(ctx.repoRoot, "hack", "bundle.mjs"), path.join(dest, "dist")], {}, "run npm ci", ctx.repoRoot);
  ctx.log(`building the dashboard web/ → ${spec.to}/dist/web`);
  const vite = path.join(ctx.repoRoot, "node_modules", "vite", "bin", "vite.js");
  const webConfig = path.join(ctx.repoRoot, "web", "vite.config.ts");
  await run(
    process.execPath,
    [vite, "build", "--config", webConfig, "--outDir", path.join(dest, "dist", "web"), "--emptyOutDir", "--logLevel", "warn"],
    {},
    "run npm ci",
    ctx.repoRoot,
  );
  // package.json says "type": "module", which dist/ needs.
  fs.copyFileSync(path.join(ctx.repoRoot, "package.json"), path.join(dest, "package.json"));
  // The entry points run as commands (orchestrator, orchestrator-agent-runner): they carry a shebang.
  const cmdDir = path.join(dest, "dist", "cmd");
  for (const f of fs.readdirSync(cmdDir)) if (f.endsWith(".js")) fs.chmodSync(path.join(cmdDir, f), 0o755);
}

async function installDependencies(spec: DependenciesLayer, ctx: LayerContext, stage: string): Promise<void> {
  const dest = stagePath(stage, spec.to);
  fs.mkdirSync(dest, { recursive: true });
  for (const f of DEPENDENCY_INPUTS) fs.copyFileSync(path.join(ctx.repoRoot, f), path.join(dest, f));
  ctx.log(`installing production dependencies into ${spec.to}/node_modules`);
  await run(
    "npm",
    ["ci", "--omit=dev", "--omit=optional", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
    {},
    "check that the npm registry (or npm's cache) is reachable",
    dest,
  );
  // Only node_modules belongs to this layer; the app layer above brings package.json.
  for (const f of DEPENDENCY_INPUTS) fs.rmSync(path.join(dest, f));
  fs.rmSync(path.join(dest, "node_modules", ".package-lock.json"), { force: true });
}

function makeFiles(spec: FilesLayer, stage: string): void {
  for (const d of spec.dirs) {
    const dir = stagePath(stage, d.path);
    fs.mkdirSync(dir, { recursive: true });
    const [uid, gid] = d.owner.split(":").map(Number);
    fs.chownSync(dir, uid ?? 0, gid ?? 0);
    fs.chmodSync(dir, parseInt(d.mode, 8));
  }
  for (const [link, target] of Object.entries(spec.links)) fs.symlinkSync(target, stagePath(stage, link));
}

/** The host path of an image path inside the stage; creates its parent directories (0755). */
function stagePath(stage: string, imagePath: string): string {
  const p = path.join(stage, imagePath);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
  return p;
}

/**
 * A reproducible layer tar of the stage's contents: sorted names, numeric owners as staged,
 * every mtime at the epoch, no atime/ctime records.
 */
export async function tarDirectory(stage: string, outTar: string): Promise<void> {
  const entries = fs.readdirSync(stage).sort();
  if (!entries.length) throw new LayerBuildError(`layer stage ${stage} is empty`);
  const args = [
    "--create",
    `--file=${outTar}`,
    `--directory=${stage}`,
    "--sort=name",
    "--numeric-owner",
    "--mtime=@0",
    "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    "--",
    ...entries,
  ];
  await run("tar", args, {}, "install GNU tar");
}

/** The lock file's version and integrity of an installed package; throws when node_modules differs. */
function lockedPackage(name: string, ctx: LayerContext): { version: string; integrity: string } {
  const entry = ctx.lock.packages[`node_modules/${name}`];
  if (!entry?.version || !entry.integrity)
    throw new LayerBuildError(`package-lock.json does not pin ${name}; add it with npm install --save-exact`);
  const manifest = path.join(ctx.repoRoot, "node_modules", ...name.split("/"), "package.json");
  const installed = fs.existsSync(manifest) ? (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version?: string }).version : undefined;
  if (installed !== entry.version)
    throw new LayerBuildError(
      `node_modules has ${name}@${installed ?? "(missing)"} but package-lock.json pins ${entry.version}; run npm ci`,
    );
  return { version: entry.version, integrity: entry.integrity };
}

/** sha256 over the relative paths and contents of files under `rels` (files or directories), in sorted order. */
export function hashTree(root: string, rels: string[]): string {
  const hash = createHash("sha256");
  const visit = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) {
      for (const child of fs.readdirSync(abs).sort()) visit(path.join(rel, child));
    } else if (st.isFile()) {
      hash
        .update(`${rel}\0${st.mode & 0o111 ? "x" : "-"}\0`)
        .update(fs.readFileSync(abs))
        .update("\0");
    }
  };
  for (const rel of [...rels].sort()) visit(rel);
  return hash.digest("hex");
}

async function run(cmd: string, args: string[], env: Record<string, string>, hint: string, cwd?: string): Promise<string> {
  const r = await execa(cmd, args, { env, cwd, reject: false, all: true });
  if ((r as { code?: string }).code === "ENOENT") throw new LayerBuildError(`${cmd} is not installed: ${hint}`);
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? "")
      .split("\n")
      .slice(-25)
      .join("\n");
    throw new LayerBuildError(`${cmd} failed (exit code ${r.exitCode ?? r.signal}); ${hint}.\n--- ${cmd} output (tail) ---\n${tail}`);
  }
  return String(r.stdout ?? "");
}
