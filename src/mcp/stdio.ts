/**
 * `orchestrator mcp`: the MCP server over stdio, for an editor's agent (Claude Code, Cursor, ...).
 * It talks to the REST API with the CLI's URL and token, and fills repository, directory and
 * branch from the git checkout it was started in. Nothing but MCP messages goes to stdout.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CliSettings } from "../config/cli.js";
import { ApiClient } from "../client/api.js";
import { detectGit } from "../client/git.js";
import { createMcpServer, packageVersion } from "./server.js";

/** Serves until stdin closes. */
export async function serveStdio(settings: CliSettings, o: { cwd: string }): Promise<void> {
  const client = new ApiClient({ baseUrl: settings.baseUrl, token: settings.token, source: settings.source });
  const server = createMcpServer({ client, git: () => detectGit(o.cwd), version: packageVersion() });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  await server.connect(transport);
  await closed;
}
