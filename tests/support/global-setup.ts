// Vitest global setup: obtains the control-plane binaries (building them on a cold machine)
// and the kubectl/helm CLIs once per run, logs the timings, and provides the paths to tests.
// Nothing is skipped: if the binaries cannot be obtained, setup throws and the run fails
// with the reason (install Go >= 1.25 or set KUBEBUILDER_ASSETS).
import type { TestProject } from "vitest/node";
import { ensureControlPlaneBinaries, ensureKubeTools, pinnedVersions } from "../../src/controlplane/index.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok. */
    controlPlaneBinDir: string;
    /** kubectl 1.35 / helm 4 and kubectl 1.31 / helm 3 (absolute paths). */
    kubectl: string;
    helm: string;
    helm3: string;
    kubectl131: string;
    /** Pinned versions from hack/control-plane/versions.env. */
    kubernetesVersion: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const started = performance.now();
  const [bins, tools] = await Promise.all([ensureControlPlaneBinaries(), ensureKubeTools()]);
  const steps = Object.entries(bins.buildSeconds);
  if (steps.length) {
    console.log(
      `[control-plane] cold build: ${steps.map(([k, v]) => `${k} ${v}s`).join(", ")} (build.sh wall ${(bins.ms / 1000).toFixed(1)}s)`,
    );
  } else {
    console.log(`[control-plane] binaries cached in ${bins.binDir} (checked in ${(bins.ms / 1000).toFixed(1)}s)`);
  }
  console.log(`[control-plane] global setup took ${((performance.now() - started) / 1000).toFixed(1)}s`);
  const versions = pinnedVersions();
  project.provide("controlPlaneBinDir", bins.binDir);
  project.provide("kubectl", tools.kubectl);
  project.provide("helm", tools.helm);
  project.provide("helm3", tools.helm3);
  project.provide("kubectl131", tools.kubectl131);
  project.provide("kubernetesVersion", versions.KUBERNETES_VERSION ?? "");
}
