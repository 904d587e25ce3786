import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/support/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start one control plane per file; two cores do not benefit from more workers.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" summary line.
    reporters: ["default", ["json", { outputFile: ".cache/vitest-report.json" }]],
  },
});
