#!/usr/bin/env node
// Bundles compiled entry points into single files (run after tsc; `npm run build` and the image
// build do). Usage: node hack/bundle.mjs [distDir] [agent|controller ...]   (default: both)
//
// - agent: the agent pod's two commands, dist/cmd/{channel,runner}.js → dist/agent/*.js. A pod's
//   Node then reads one file instead of resolving and linking several hundred modules, which took
//   most of the channel's start-up.
// - controller: dist/cmd/main.js, minified, in its place. V8 keeps the source text of every
//   module it loads, and @kubernetes/client-node's generated clients are over 20 MB of JavaScript,
//   loaded whole by its index whatever is used: minified in one file the controller's V8 heap at
//   1000 runs (npm run bench:controller) is about 50 MB instead of 80. The bundle sits where
//   main.js was, so what it resolves against its own location (../../package.json,
//   ../../dist/web) is unchanged; the local development cluster's modules (imported only without
//   a Kubernetes context) stay separate files.
//
// Both leave pino-pretty (loaded lazily) to node_modules.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const dist = path.resolve(process.argv[2] ?? "dist");
const wanted = process.argv.length > 3 ? process.argv.slice(3) : ["agent", "controller"];

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node24",
  // CommonJS dependencies require Node's built-ins at run time.
  banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  // The image build compiles into a staging directory: dependencies come from this checkout.
  nodePaths: [path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules")],
  logLevel: "warning",
  legalComments: "none",
};

function compiled(name) {
  const file = path.join(dist, "cmd", `${name}.js`);
  if (!fs.existsSync(file)) {
    console.error(`${file} does not exist: compile src/ first (tsc -p tsconfig.build.json).`);
    process.exit(1);
  }
  return file;
}

/** The channel's GitHub tools, imported lazily: left to a bundle of their own beside channel.js. */
const githubToolsApart = {
  name: "github-tools-apart",
  setup(b) {
    b.onResolve({ filter: /^\.\/github-tools\.js$/ }, () => ({ path: "./github-tools.js", external: true }));
  },
};

const targets = {
  async agent() {
    const outdir = path.join(dist, "agent");
    fs.rmSync(outdir, { recursive: true, force: true }); // no chunks of an earlier build
    await build({
      ...common,
      entryPoints: { channel: compiled("channel"), runner: compiled("runner") },
      outdir,
      // What the two share goes into chunks beside them. The GitHub tools (the MCP SDK, its JSON
      // Schema validator and zod's full build) are a bundle of their own, loaded once the task is
      // handed out: shared chunks would put what they need of zod into the channel's start-up,
      // which needs only zod/mini. The channel parses 0.8 MB at start instead of 2.3 MB.
      splitting: true,
      chunkNames: "chunks/[name]-[hash]",
      external: ["pino-pretty"],
      plugins: [githubToolsApart],
    });
    await build({
      ...common,
      entryPoints: { "github-tools": path.join(dist, "runner", "github-tools.js") },
      outdir,
    });
    for (const f of ["channel.js", "runner.js"]) fs.chmodSync(path.join(outdir, f), 0o755);
  },
  async controller() {
    const entry = compiled("main");
    await build({
      ...common,
      entryPoints: [entry],
      outfile: entry,
      allowOverwrite: true,
      minify: true,
      // Class and function names stay readable in logs and stack traces.
      keepNames: true,
      // ASCII source: V8 keeps it as a one-byte string, not a two-byte one of twice the size.
      charset: "ascii",
      external: ["pino-pretty", "../controlplane/*"],
    });
    fs.chmodSync(entry, 0o755);
  },
};

for (const name of wanted) {
  if (!(name in targets)) {
    console.error(`Unknown bundle ${name}: use agent or controller.`);
    process.exit(2);
  }
  await targets[name]();
}
