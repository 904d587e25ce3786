// The dashboard's build: web/ → dist/web, served by the orchestrator at `/`. Relative asset
// paths (base "./") keep it working under any path prefix an Ingress mounts it at.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // No inline polyfill script: the page's CSP allows scripts from the origin only.
    modulePreload: { polyfill: false },
  },
});
