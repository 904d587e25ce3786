// `npm run cluster`: a local full-mode control plane (etcd, kube-apiserver, controller-manager,
// scheduler, kwok with one fake node) with the project CRDs installed. Runs until Ctrl-C.
import fs from "node:fs";
import path from "node:path";
import { ControlPlane, ensureControlPlaneBinaries, repoRoot, type StartupTimes } from "../controlplane/index.js";

function crdPaths(): string[] {
  const dir = path.join(repoRoot(), "infra", "charts", "orchestrator", "crds");
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).some((f) => /\.ya?ml$/.test(f)) ? [dir] : [];
}

function formatTimes(t: StartupTimes): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}=${((v ?? 0) / 1000).toFixed(1)}s`)
    .join(" ");
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[cluster] ${line}\n`);
  const bins = await ensureControlPlaneBinaries();
  log(`binaries: ${bins.binDir} (checked in ${(bins.ms / 1000).toFixed(1)}s)`);
  const crds = crdPaths();
  if (crds.length) log(`installing CRDs from ${crds.join(", ")}`);

  // Filled in once start() resolves; the signal handler may run before that.
  const state: { cp?: ControlPlane } = {};
  let shuttingDown = false;
  const shutdown = (sig: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`${sig}: stopping control plane...`);
    void (state.cp?.stop() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        log(`stop failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  // Our own listeners make process.ts leave graceful shutdown to us.
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGHUP", () => shutdown("SIGHUP"));

  const cp = await ControlPlane.start({ mode: "full", crdPaths: crds, binDir: bins.binDir, log });
  state.cp = cp;
  if (shuttingDown) {
    await cp.stop();
    return;
  }
  console.log(`KUBECONFIG=${cp.kubeconfigPath}`);
  console.log(`export KUBECONFIG=${cp.kubeconfigPath}`);
  console.log(`server: ${cp.server}   node: ${cp.nodeName}   logs: ${path.join(cp.rootDir, "logs")}`);
  console.log(`start-up: ${formatTimes(cp.startupMs)}`);
  console.log("Press Ctrl-C to stop (the temp dir and all processes are removed).");
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}

main().catch((err: unknown) => {
  process.stderr.write(`[cluster] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
