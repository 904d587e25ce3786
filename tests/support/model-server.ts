/**
 * A scripted Anthropic Messages API on 127.0.0.1 that plays the model for the real Claude Code
 * CLI. Each "main loop" request (one that offers tools) consumes the next turn of the script: a
 * tool call (Write, Edit, Bash, ...) that the CLI really executes in the workspace, or a final
 * text answer (end_turn). Side requests without tools get a short text answer. Every request is
 * recorded so tests can assert what the CLI sent (for example the replayed history of --continue).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One model turn: call a tool, or answer with text and end the turn. */
export type ScriptTurn = { tool: string; input: Record<string, unknown>; text?: string } | { text: string };

/** A turn, or a function of the request that produces one (to echo paths, ids, ...). */
export type ScriptStep = ScriptTurn | ((request: MessagesRequest) => ScriptTurn);

export interface MessagesRequest {
  model?: string;
  stream?: boolean;
  system?: unknown;
  tools?: { name: string }[];
  messages: { role: string; content: string | { type: string; [k: string]: unknown }[] }[];
  [k: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: MessagesRequest | null;
  /** True when the request offered tools, i.e. came from the agent loop and consumed a turn. */
  main: boolean;
  headers: http.IncomingHttpHeaders;
}

export interface ModelServer {
  url: string;
  requests: RecordedRequest[];
  /** Replace the script; the next main request gets its first turn. */
  setScript(steps: ScriptStep[]): void;
  /**
   * Answers every main-loop request from the request itself (takes precedence over the script):
   * for concurrent agents, where one shared script would interleave. May wait (an agent "thinking").
   */
  setResponder(fn: ((request: MessagesRequest) => ScriptTurn | Promise<ScriptTurn>) | undefined): void;
  /** Main-loop requests only. */
  mainRequests(): RecordedRequest[];
  close(): Promise<void>;
}

const FINAL_TEXT = "Done.";

/** Serialises one message as Messages API server-sent events. */
function sseEvents(model: string, turn: ScriptTurn, id: string): string {
  const events: [string, unknown][] = [];
  events.push([
    "message_start",
    {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 120, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
    },
  ]);
  let index = 0;
  const text = "tool" in turn ? turn.text : turn.text;
  if (text) {
    events.push(["content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }]);
    events.push(["content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text } }]);
    events.push(["content_block_stop", { type: "content_block_stop", index }]);
    index++;
  }
  if ("tool" in turn) {
    events.push([
      "content_block_start",
      {
        type: "content_block_start",
        index,
        content_block: { type: "tool_use", id: `toolu_${id}`, name: turn.tool, input: {} },
      },
    ]);
    events.push([
      "content_block_delta",
      {
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(turn.input) },
      },
    ]);
    events.push(["content_block_stop", { type: "content_block_stop", index }]);
  }
  events.push([
    "message_delta",
    {
      type: "message_delta",
      delta: { stop_reason: "tool" in turn ? "tool_use" : "end_turn", stop_sequence: null },
      usage: { output_tokens: 30 },
    },
  ]);
  events.push(["message_stop", { type: "message_stop" }]);
  return events.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join("");
}

function plainMessage(model: string, text: string, id: string): unknown {
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 5 },
  };
}

/** `host`: the address to listen on (pods on a real node reach the host's IP, never its loopback). */
export async function startModelServer(initial: ScriptStep[] = [], opts: { host?: string } = {}): Promise<ModelServer> {
  const host = opts.host ?? "127.0.0.1";
  const requests: RecordedRequest[] = [];
  let responder: ((request: MessagesRequest) => ScriptTurn | Promise<ScriptTurn>) | undefined;
  let script: ScriptStep[] = [...initial];
  let next = 0;
  let counter = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on(
      "end",
      () =>
        void (async () => {
          const url = new URL(req.url ?? "/", "http://localhost");
          const method = req.method ?? "GET";
          let body: MessagesRequest | null = null;
          if (chunks.length > 0) {
            try {
              body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as MessagesRequest;
            } catch {
              body = null;
            }
          }
          const main = Boolean(body && Array.isArray(body.tools) && body.tools.length > 0);
          requests.push({ method, path: url.pathname, body, main, headers: req.headers });

          if (method === "HEAD" && url.pathname === "/") {
            res.writeHead(200).end();
            return;
          }
          if (method === "POST" && url.pathname === "/v1/messages/count_tokens") {
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ input_tokens: 100 }));
            return;
          }
          if (method !== "POST" || url.pathname !== "/v1/messages" || !body) {
            res
              .writeHead(404, { "content-type": "application/json" })
              .end(JSON.stringify({ type: "error", error: { type: "not_found_error", message: "Not found" } }));
            return;
          }
          const id = `msg_${String(++counter).padStart(4, "0")}`;
          const model = body.model ?? "claude-test";
          let turn: ScriptTurn = { text: FINAL_TEXT };
          if (main && responder) turn = await responder(body);
          else if (main && next < script.length) {
            const step = script[next++]!;
            turn = typeof step === "function" ? step(body) : step;
          }
          if (!body.stream) {
            res
              .writeHead(200, { "content-type": "application/json" })
              .end(JSON.stringify(plainMessage(model, "tool" in turn ? FINAL_TEXT : turn.text, id)));
            return;
          }
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
          res.end(sseEvents(model, turn, id));
        })(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    requests,
    setScript(steps) {
      script = [...steps];
      next = 0;
    },
    setResponder(fn) {
      responder = fn;
    },
    mainRequests: () => requests.filter((r) => r.main),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** How many tool results the request carries (the agent ran the tools it was asked to). */
export function toolResults(req: MessagesRequest): number {
  return req.messages.filter((m) => Array.isArray(m.content) && m.content.some((c) => c.type === "tool_result")).length;
}

/**
 * Tool results since the last prompt: a session that continues (--continue) replays the earlier
 * conversation with a new prompt, so its agent starts over from 0 while the history holds the
 * earlier results.
 */
export function toolResultsSincePrompt(req: MessagesRequest): number {
  let n = 0;
  for (const m of [...req.messages].reverse()) {
    if (m.role !== "user") continue;
    if (!(Array.isArray(m.content) && m.content.some((c) => c.type === "tool_result"))) break;
    n++;
  }
  return n;
}

/** All text of a request's messages (tool results included), for assertions. */
export function requestText(request: RecordedRequest): string {
  return JSON.stringify(request.body?.messages ?? []);
}
