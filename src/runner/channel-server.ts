/**
 * The agent's channel to the outside, on 127.0.0.1 only: the model proxy (/v1/messages, ...) and
 * the scoped GitHub tools (MCP at /mcp). It runs on the credentialed side; the agent gets its URL
 * and nothing else.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { CHANNEL_MCP_PATH } from "../api/runner-contract.js";
import type * as GitHubTools from "./github-tools.js";
import type { GitHubToolsOptions } from "./github-tools.js";
import type { ModelProxy } from "./model-proxy.js";

/**
 * The GitHub tools (the MCP SDK, ajv and zod: about 0.2 s of CPU to load) load once the task is
 * handed out, while Claude Code starts (it asks for the tools about a second later): loaded
 * earlier, they took that CPU from the workspace's preparation.
 */
let githubTools: Promise<typeof GitHubTools> | undefined;
const loadGitHubTools = () => (githubTools ??= import("./github-tools.js"));
const preloadGitHubTools = (log: Logger) =>
  void loadGitHubTools().catch((err: unknown) => log.error({ err: (err as Error).message }, "Could not load the GitHub tools"));

/**
 * What the server answers; read on every request, so the credentialed side fills it in as the run
 * goes (the proxy and tools once the run is known, the task once the workspace is prepared).
 */
export interface ChannelHandlers {
  proxy?: ModelProxy;
  tools?: GitHubToolsOptions;
  /** GET /task: the agent's task, or the run's result when preparation failed; undefined = not ready. */
  task?: unknown;
  /** POST /finish: the agent's outcome in, the run's result out. */
  finish?: (body: unknown) => Promise<unknown>;
}

export interface ChannelServerOptions {
  /** 0 = any free port. */
  port: number;
  handlers: ChannelHandlers;
  log: Logger;
}

export interface ChannelServer {
  url: string;
  /** Resolves once the agent container is gone: the GET /attach it held has closed. */
  agentGone: Promise<void>;
  /** Whether the agent container has attached (GET /attach) yet. */
  agentAttached(): boolean;
  close(): Promise<void>;
}

const MAX_MCP_BODY = 1024 * 1024;
/** How long GET /task waits for the task before answering 503 (the agent asks again). */
const TASK_HOLD_MS = 5_000;

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_MCP_BODY) throw new Error(`request body over ${MAX_MCP_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/**
 * The agent container's presence. Its runner opens GET /attach first thing and holds it for its
 * whole life; the kernel closes it when the runner's process ends, however it ends. Only the first
 * attach counts: a later one (Claude Code is the runner's child and could try) gets 409, so nothing
 * the agent runs can keep the channel, and so the pod, alive after the runner is gone.
 */
class Presence {
  private attached = false;
  private leave!: () => void;
  readonly gone = new Promise<void>((resolve) => (this.leave = resolve));

  isAttached(): boolean {
    return this.attached;
  }

  attach(res: http.ServerResponse): void {
    if (this.attached) return sendJson(res, 409, { message: "An agent is already attached to this channel." });
    this.attached = true;
    res.on("close", () => this.leave());
    res.writeHead(200, { "content-type": "text/plain" }).flushHeaders();
  }
}

async function route(o: ChannelServerOptions, presence: Presence, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://channel").pathname;
  const h = o.handlers;
  if (path === "/attach") return presence.attach(res);
  if (path === "/task") {
    // Held until the task is ready (checked every 10 ms in process): the agent learns of it at
    // once instead of on its next poll.
    for (const until = Date.now() + TASK_HOLD_MS; h.task === undefined && Date.now() < until && !req.socket.destroyed;)
      await new Promise((r) => setTimeout(r, 10));
    if (h.task === undefined) return sendJson(res, 503, { message: "The workspace is being prepared." });
    sendJson(res, 200, h.task);
    if (h.tools) preloadGitHubTools(o.log);
    return;
  }
  if (path === "/finish") return finish(h, req, res);
  if (path === CHANNEL_MCP_PATH) {
    const tools = h.tools;
    if (req.method !== "POST" || !tools)
      return sendJson(res, 405, { jsonrpc: "2.0", error: { code: -32000, message: "Send JSON-RPC requests with POST." }, id: null });
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      return sendJson(res, 400, { jsonrpc: "2.0", error: { code: -32700, message: `Parse error: ${(err as Error).message}` }, id: null });
    }
    const started = performance.now();
    await (await loadGitHubTools()).handleGitHubTools(tools, req, res, body);
    const method = (body as { method?: unknown } | null)?.method;
    o.log.debug(
      { method: typeof method === "string" ? method : undefined, ms: Math.round(performance.now() - started) },
      "Served a GitHub tools request",
    );
    return;
  }
  if (!h.proxy) return sendJson(res, 503, { type: "error", error: { type: "api_error", message: "The model proxy is not ready." } });
  return h.proxy.handle(req, res);
}

/** POST /finish, answered once: a second call gets 409 (the run is delivered once). */
async function finish(h: ChannelHandlers, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const handler = h.finish;
  if (req.method !== "POST" || !handler) return sendJson(res, 409, { message: "Nothing to finish: the agent has no task." });
  h.finish = undefined;
  let body: unknown;
  try {
    body = await readJson(req);
  } catch (err) {
    body = { parseError: (err as Error).message };
  }
  sendJson(res, 200, await handler(body));
}

/** Starts the channel's HTTP server on loopback. */
export async function startChannelServer(o: ChannelServerOptions): Promise<ChannelServer> {
  const presence = new Presence();
  const server = http.createServer((req, res) => {
    route(o, presence, req, res).catch((err: unknown) => {
      o.log.error({ err: (err as Error).message, path: req.url }, "Channel request failed");
      if (!res.headersSent) sendJson(res, 500, { type: "error", error: { type: "api_error", message: "The channel failed." } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    agentGone: presence.gone,
    agentAttached: () => presence.isAttached(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
