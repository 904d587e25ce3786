#!/usr/bin/env node
// Bundles the controller's entry point, dist/cmd/main.js, into one minified file in its place.
// V8 keeps the source text of every module it loads, and @kubernetes/client-node's generated
// clients are over 20 MB of JavaScript, loaded whole by its index whatever is used: minified in
// one file the controller's V8 heap at 1000 runs (npm run bench:controller) is about 50 MB
// instead of 80. The bundle sits where main.js was, so what it resolves against its own location
// (../../package.json, ../../dist/web) is unchanged; the local development cluster's modules
// (imported only without a Kubernetes context) stay separate files, and what loads lazily
// (pino-pretty) still resolves from node_modules.
// Usage: node hack/bundle-controller.mjs [distDir]   (run after tsc; `npm run build` does)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = path.resolve(process.argv[2] ?? "dist");
const entry = path.join(dist, "cmd", "main.js");
if (!fs.existsSync(entry)) {
  console.error(`${entry} does not exist: compile src/ first (tsc -p tsconfig.build.json).`);
  process.exit(1);
}
await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  minify: true,
  // Class and function names stay readable in logs and stack traces.
  keepNames: true,
  // ASCII source: V8 keeps it as a one-byte string, not a two-byte one of twice the size.
  charset: "ascii",
  // CommonJS dependencies require Node's built-ins at run time.
  banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  external: ["pino-pretty", "../controlplane/*"],
  // The image build compiles into a staging directory: dependencies come from this checkout.
  nodePaths: [path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules")],
  logLevel: "warning",
  legalComments: "none",
});
fs.chmodSync(entry, 0o755);
