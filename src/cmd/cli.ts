#!/usr/bin/env node
/**
 * The `orchestrator` command (package bin): the CLI over the REST API, `orchestrator serve` (the
 * service, as `npm start`), and `orchestrator mcp` (the MCP server over stdio).
 */
import { readFileSync } from "node:fs";
import { runCli } from "../cli/program.js";

function packageVersion(): string {
  try {
    return String(
      (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown }).version ?? "unknown",
    );
  } catch {
    return "unknown";
  }
}

const code = await runCli(
  process.argv.slice(2),
  {
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    // The service keeps running after this module's promise settles; it exits on SIGTERM/SIGINT.
    serve: async () => {
      await import("./main.js");
      await new Promise<never>(() => undefined);
    },
    mcp: async (settings) => {
      const { serveStdio } = await import("../mcp/stdio.js");
      await serveStdio(settings, { cwd: process.cwd() });
    },
  },
  packageVersion(),
);
process.exitCode = code;
