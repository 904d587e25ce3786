#!/usr/bin/env node
// Bundles the agent pod's two entry points (dist/cmd/channel.js, dist/cmd/runner.js) into one file
// each, dist/agent/{channel,runner}.js: a pod then starts Node on one file instead of resolving
// and linking several hundred modules, which took most of the channel's start-up. The bundles sit
// next to dist/cmd, so what they load lazily (pino-pretty) still resolves from node_modules.
// Usage: node hack/bundle-agent.mjs [distDir]   (run after tsc; `npm run build` does)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = path.resolve(process.argv[2] ?? "dist");
const outdir = path.join(dist, "agent");
await build({
  entryPoints: { channel: path.join(dist, "cmd", "channel.js"), runner: path.join(dist, "cmd", "runner.js") },
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  // CommonJS dependencies require Node's built-ins at run time.
  banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  external: ["pino-pretty"],
  // The image build compiles into a staging directory: dependencies come from this checkout.
  nodePaths: [path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules")],
  logLevel: "warning",
  legalComments: "none",
});
for (const f of ["channel.js", "runner.js"]) fs.chmodSync(path.join(outdir, f), 0o755);
