/**
 * The MCP server over streamable HTTP at /mcp, registered in the REST API's authenticated scope
 * (same bearer tokens). Stateless: each POST gets a fresh server and transport (JSON responses,
 * no sessions), so any replica can answer. The tools call the REST API in-process through
 * app.inject() with the caller's own Authorization header: one validation and authorization path.
 */
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { FastifyInstance } from "fastify";
import { ApiClient } from "../client/api.js";
import { createMcpServer, packageVersion } from "./server.js";

export const MCP_PATH = "/mcp";

/** A fetch that answers from the app itself (no socket), for the in-process tools. */
function injectFetch(app: FastifyInstance): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const res = await app.inject({
      method: (init?.method ?? "GET") as "GET",
      url: url.pathname + url.search,
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      ...(typeof init?.body === "string" ? { payload: init.body } : {}),
    });
    return new Response(res.statusCode === 204 ? null : res.rawPayload, {
      status: res.statusCode,
      headers: res.headers as Record<string, string>,
    });
  }) as typeof fetch;
}

/** Registers /mcp in `api` (an authenticated scope); `root` is the whole app, for the tools' calls. */
export function registerMcpRoute(api: FastifyInstance, root: FastifyInstance): void {
  const version = packageVersion();
  api.post(MCP_PATH, async (req, reply) => {
    const authorization = req.headers.authorization;
    const client = new ApiClient({
      baseUrl: "http://in-process",
      ...(authorization?.startsWith("Bearer ") ? { token: authorization.slice(7) } : {}),
      fetch: injectFetch(root),
    });
    const server = createMcpServer({ client, version });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    reply.hijack();
    reply.raw.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req.raw, reply.raw, req.body);
  });
  // Stateless server: no server-initiated stream and no sessions to end.
  for (const method of ["GET", "DELETE"] as const) {
    api.route({
      method,
      url: MCP_PATH,
      handler: async (_req, reply) =>
        reply
          .code(405)
          .header("allow", "POST")
          .send({
            jsonrpc: "2.0",
            error: { code: -32000, message: "Method not allowed: this MCP endpoint is stateless; send JSON-RPC requests with POST." },
            id: null,
          }),
    });
  }
}
