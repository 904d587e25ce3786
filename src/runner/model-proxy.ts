/**
 * The agent's only way to the model: a proxy of the Anthropic Messages API on loopback. The
 * agent's ANTHROPIC_BASE_URL points here and its ANTHROPIC_API_KEY is a placeholder; the proxy
 * drops whatever key the agent sends and adds the real one, so the key never enters the agent's
 * process. On the way back it reads the usage of every answer (streamed or not), prices it with
 * the list prices of src/runner/pricing.ts and, once the run's dollar budget is spent, refuses
 * further requests and tells its owner (who stops the agent and pushes its work).
 */
import type http from "node:http";
import type { Logger } from "pino";
import { estimateCostUsd, type TokenUsage } from "./pricing.js";

/** The Messages API paths the proxy forwards; anything else is answered 404 without reaching upstream. */
const FORWARDED = new Set(["/v1/messages", "/v1/messages/count_tokens"]);
/** Request headers never forwarded: the agent's own credentials and hop-by-hop headers. */
const DROPPED_REQUEST_HEADERS = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "x-api-key",
  "authorization",
  "accept-encoding",
  "keep-alive",
  "proxy-authorization",
]);
/** fetch decodes the body, so these no longer describe what the proxy sends on. */
const DROPPED_RESPONSE_HEADERS = new Set(["content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"]);

/** What the proxy has metered for the run so far. */
export interface CostMeter extends TokenUsage {
  /** Answered model requests (count_tokens calls are free and not counted). */
  requests: number;
  /** Sum of the priced requests, USD at list prices. */
  costUsd: number;
  /** Requests for a model without a known price (only possible without a budget). */
  unpricedRequests: number;
  /** Requests refused because the budget was spent. */
  refusedRequests: number;
  /** The budget was reached; no further request goes upstream. */
  budgetSpent: boolean;
}

export interface ModelProxyOptions {
  /** Messages API base URL (https://api.anthropic.com, or the configured agent.anthropicBaseUrl). */
  upstream: string;
  apiKey: string;
  /** Dollar budget; undefined or 0 = none. */
  maxCostUsd?: number;
  log: Logger;
  /** Called once, when the metered cost reaches the budget. */
  onBudgetSpent?: (meter: CostMeter) => void;
}

export interface ModelProxy {
  /** Answers one request whose path starts with /v1/ (or HEAD /). */
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  meter(): CostMeter;
}

/** Accumulates the usage of one Messages API answer from its server-sent events or its JSON body (pure, incremental). */
export class UsageReader {
  usage: TokenUsage = { inputTokens: 0, outputTokens: 0, cacheWriteTokens: 0, cacheReadTokens: 0 };
  private pending = "";

  /** Feeds a chunk of an event stream. */
  push(chunk: string): void {
    this.pending += chunk;
    const lines = this.pending.split("\n");
    this.pending = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("data:")) this.readEvent(line.slice(5).trim());
  }

  /** Reads a whole JSON answer (non-streaming). */
  readBody(text: string): void {
    try {
      this.take((JSON.parse(text) as { usage?: unknown }).usage);
    } catch {
      // Not JSON (an upstream error page): nothing to meter.
    }
  }

  private readEvent(data: string): void {
    let event: { type?: unknown; message?: { usage?: unknown }; usage?: unknown };
    try {
      event = JSON.parse(data) as typeof event;
    } catch {
      return;
    }
    if (event.type === "message_start") this.take(event.message?.usage);
    if (event.type === "message_delta") this.take(event.usage);
  }

  /** Usage fields are cumulative within one answer, so the largest value seen wins. */
  private take(raw: unknown): void {
    const u = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
    const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);
    this.usage = {
      inputTokens: Math.max(this.usage.inputTokens, n(u.input_tokens)),
      outputTokens: Math.max(this.usage.outputTokens, n(u.output_tokens)),
      cacheWriteTokens: Math.max(this.usage.cacheWriteTokens, n(u.cache_creation_input_tokens)),
      cacheReadTokens: Math.max(this.usage.cacheReadTokens, n(u.cache_read_input_tokens)),
    };
  }
}

/** An Anthropic-shaped error answer, so Claude Code prints the message and does not retry. */
function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ type: "error", error: { type, message } }));
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function modelOf(body: Buffer): string | null {
  try {
    const model = (JSON.parse(body.toString("utf8")) as { model?: unknown }).model;
    return typeof model === "string" ? model : null;
  } catch {
    return null;
  }
}

function forwardHeaders(req: http.IncomingMessage, apiKey: string): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (DROPPED_REQUEST_HEADERS.has(name) || value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  headers.set("x-api-key", apiKey);
  return headers;
}

/** Streams the upstream answer to the agent while reading its usage. */
async function relay(upstream: Response, res: http.ServerResponse, reader: UsageReader): Promise<void> {
  const headers: Record<string, string> = {};
  upstream.headers.forEach((value, name) => {
    if (!DROPPED_RESPONSE_HEADERS.has(name)) headers[name] = value;
  });
  res.writeHead(upstream.status, headers);
  const streaming = (upstream.headers.get("content-type") ?? "").includes("text/event-stream");
  const decoder = new TextDecoder();
  let text = "";
  if (upstream.body) {
    for await (const chunk of upstream.body) {
      res.write(chunk);
      const piece = decoder.decode(chunk, { stream: true });
      if (streaming) reader.push(piece);
      else text += piece;
    }
  }
  res.end();
  if (!streaming && upstream.ok) reader.readBody(text);
}

/** The run's meter and budget: records priced usage and says why a request may not go upstream. */
class CostBook {
  readonly meter: CostMeter = {
    requests: 0,
    costUsd: 0,
    unpricedRequests: 0,
    refusedRequests: 0,
    budgetSpent: false,
    inputTokens: 0,
    outputTokens: 0,
    cacheWriteTokens: 0,
    cacheReadTokens: 0,
  };
  private readonly budget: number | undefined;

  constructor(private readonly options: ModelProxyOptions) {
    this.budget = options.maxCostUsd && options.maxCostUsd > 0 ? options.maxCostUsd : undefined;
  }

  record(model: string | null, usage: TokenUsage): void {
    const m = this.meter;
    m.requests++;
    m.inputTokens += usage.inputTokens;
    m.outputTokens += usage.outputTokens;
    m.cacheWriteTokens += usage.cacheWriteTokens;
    m.cacheReadTokens += usage.cacheReadTokens;
    const cost = estimateCostUsd(model, usage);
    if (cost === undefined) m.unpricedRequests++;
    else m.costUsd = Math.round((m.costUsd + cost) * 1_000_000) / 1_000_000;
    if (this.budget !== undefined && m.costUsd >= this.budget && !m.budgetSpent) {
      m.budgetSpent = true;
      this.options.log.warn({ costUsd: m.costUsd, maxCostUsd: this.budget, requests: m.requests }, "Spent the run's dollar budget");
      this.options.onBudgetSpent?.({ ...m });
    }
  }

  /** Why a request may not go upstream, or null. */
  refusal(path: string, model: string | null): string | null {
    if (this.meter.budgetSpent)
      return `The run's dollar budget of $${this.budget} is spent ($${this.meter.costUsd} metered); the orchestrator stops the agent and pushes its work.`;
    if (this.budget !== undefined && path === "/v1/messages" && estimateCostUsd(model, this.meter) === undefined)
      return `Model ${model ?? "(none)"} has no known price, so the run's dollar budget could not be enforced; use a model the orchestrator prices (src/runner/pricing.ts).`;
    return null;
  }
}

/** A proxy for one run. */
export function createModelProxy(options: ModelProxyOptions): ModelProxy {
  const book = new CostBook(options);
  const upstreamBase = options.upstream.replace(/\/+$/, "");
  const log = options.log;
  return {
    meter: () => ({ ...book.meter }),
    async handle(req, res) {
      const path = new URL(req.url ?? "/", "http://proxy").pathname;
      if (req.method === "HEAD" && path === "/") return void res.writeHead(200).end();
      if (req.method !== "POST" || !FORWARDED.has(path))
        return sendError(res, 404, "not_found_error", `The model proxy forwards only POST ${[...FORWARDED].join(", ")}.`);
      const body = await readBody(req);
      const model = modelOf(body);
      const refused = book.refusal(path, model);
      if (refused) {
        book.meter.refusedRequests++;
        log.warn({ path, model, costUsd: book.meter.costUsd }, "Refused a model request");
        return sendError(res, 400, "invalid_request_error", refused);
      }
      let upstream: Response;
      try {
        upstream = await fetch(`${upstreamBase}${req.url}`, { method: "POST", headers: forwardHeaders(req, options.apiKey), body });
      } catch (err) {
        log.error({ err: (err as Error).message, upstream: upstreamBase }, "Could not reach the model API");
        return sendError(res, 502, "api_error", `The model proxy could not reach ${upstreamBase}: ${(err as Error).message}`);
      }
      const reader = new UsageReader();
      await relay(upstream, res, reader);
      if (path === "/v1/messages" && upstream.ok) book.record(model, reader.usage);
    },
  };
}
