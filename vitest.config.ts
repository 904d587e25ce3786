import { defineConfig } from "vitest/config";

/** The control-plane binaries and kube CLIs: only the projects that start a control plane wait for them. */
const controlPlaneSetup = ["tests/support/global-setup.ts"];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start one control plane per file; two cores do not benefit from more workers.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" summary line.
    reporters: ["default", ["json", { outputFile: ".cache/vitest-report.json" }]],
    // `vitest run` runs every project; `--project unit` is the fast inner loop (no servers, no build).
    projects: [
      // Unit files share a worker's module cache (isolate: false): importing the SDKs once per
      // worker instead of once per file takes the project from 130-210 s to about 45 s here.
      { extends: true, test: { name: "unit", include: ["tests/unit/**/*.test.ts"], isolate: false } },
      { extends: true, test: { name: "integration", include: ["tests/integration/**/*.test.ts"], globalSetup: controlPlaneSetup } },
      { extends: true, test: { name: "e2e", include: ["tests/e2e/**/*.test.ts"], globalSetup: controlPlaneSetup } },
      // The real node is one per machine (fixed paths, iptables, a bridge): its files run last,
      // one at a time, after the other projects have finished.
      {
        extends: true,
        test: {
          name: "node",
          include: ["tests/node/**/*.test.ts"],
          globalSetup: controlPlaneSetup,
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
