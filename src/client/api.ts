/**
 * A small client of the orchestrator's REST API, shared by the `orchestrator` CLI and the MCP
 * server. One method per route; every failure becomes an ApiError whose message is one line a
 * person can act on: the API's problem+json `detail`, or what to check when the API cannot be
 * reached at all.
 */
import type { Play } from "../api/play.js";
import type { AnyRun } from "../api/types.js";
import type { LogContainer } from "../api/runner-contract.js";

/** The request bodies, as sent (snake_case, defaults applied by the service). */
export type Body = Record<string, unknown>;

export interface ApiClientOptions {
  baseUrl: string;
  token?: string;
  /** Where baseUrl came from ("--api-url", "context dev", ...), for error messages. */
  source?: string;
  /** Injected transport (tests, the in-process MCP endpoint); default global fetch. */
  fetch?: typeof fetch;
  /** Per-request timeout for non-streaming calls. */
  timeoutMs?: number;
}

/** A failed API call: `status` 0 when the API could not be reached. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    message: string,
    readonly status: number,
    readonly problem?: { type?: string; detail?: string; errors?: { field: string; message: string }[]; [k: string]: unknown },
  ) {
    super(message);
  }
}

export interface Submitted {
  name: string;
  kind: "CodeRun" | "DocsRun" | "Play";
  namespace: string;
  data: Record<string, unknown>;
}

export interface RunList {
  namespace: string;
  items: AnyRun[];
}

export interface Readiness {
  status: string;
  checks: Record<string, boolean | string>;
}

export interface LogOptions {
  follow?: boolean;
  tailLines?: number;
  /** Whose log: the agent container's (default) or the channel container's. */
  container?: LogContainer;
  signal?: AbortSignal;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: ApiClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
  }

  async health(): Promise<{ status: string; version: string; timestamp: string }> {
    return (await this.json("GET", "/health")) as never;
  }

  /** Readiness with the failing checks (authenticated); 503 while not ready is an answer here. */
  async ready(): Promise<Readiness> {
    const res = await this.send("GET", "/api/v1/readiness", undefined, { accept: [200, 503] });
    const body = (await res.json()) as Partial<Readiness>;
    return { status: body.status ?? "not ready", checks: body.checks ?? {} };
  }

  async submitCode(body: Body, idempotencyKey?: string): Promise<Submitted> {
    const r = await this.json("POST", "/api/v1/pm/tasks", body, idempotencyKey);
    return submitted(r, "CodeRun", "coderun_name");
  }

  async submitDocs(body: Body, idempotencyKey?: string): Promise<Submitted> {
    const r = await this.json("POST", "/api/v1/pm/docs/generate", body, idempotencyKey);
    return submitted(r, "DocsRun", "docsrun_name");
  }

  async listRuns(query: { kind?: string; service?: string; task?: string | number; phase?: string } = {}): Promise<RunList> {
    return (await this.data("GET", `/api/v1/runs${qs(query)}`)) as RunList;
  }

  async getRun(kind: string, name: string): Promise<AnyRun> {
    return (await this.data("GET", `/api/v1/runs/${seg(kind)}/${seg(name)}`)) as AnyRun;
  }

  async cancelRun(kind: string, name: string): Promise<Record<string, unknown>> {
    return (await this.data("POST", `/api/v1/runs/${seg(kind)}/${seg(name)}/cancel`)) as Record<string, unknown>;
  }

  async retryRun(kind: string, name: string, body: Body = {}): Promise<Submitted> {
    const r = await this.json("POST", `/api/v1/runs/${seg(kind)}/${seg(name)}/retry`, body);
    const k = /^d/i.test(kind) ? "DocsRun" : "CodeRun";
    return submitted(r, k, k === "CodeRun" ? "coderun_name" : "docsrun_name");
  }

  /** The log text of the run's current pod (or a stream of it with follow). */
  async logs(kind: string, name: string, o: LogOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const q = qs({ follow: o.follow ? "true" : undefined, tail_lines: o.tailLines, container: o.container });
    const res = await this.send("GET", `/api/v1/runs/${seg(kind)}/${seg(name)}/logs${q}`, undefined, { stream: true, signal: o.signal });
    if (!res.body) return new ReadableStream({ start: (c) => c.close() });
    return res.body;
  }

  async startPlay(body: Body, idempotencyKey?: string): Promise<Submitted> {
    const r = await this.json("POST", "/api/v1/plays", body, idempotencyKey);
    return submitted(r, "Play", "play_name");
  }

  async listPlays(query: { service?: string; phase?: string } = {}): Promise<{ namespace: string; items: Play[] }> {
    return (await this.data("GET", `/api/v1/plays${qs(query)}`)) as { namespace: string; items: Play[] };
  }

  async getPlay(name: string): Promise<Play> {
    return (await this.data("GET", `/api/v1/plays/${seg(name)}`)) as Play;
  }

  async cancelPlay(name: string): Promise<Record<string, unknown>> {
    return (await this.data("POST", `/api/v1/plays/${seg(name)}/cancel`)) as Record<string, unknown>;
  }

  private async data(method: string, path: string): Promise<unknown> {
    const r = (await this.json(method, path)) as { data?: unknown };
    return r.data;
  }

  private async json(method: string, path: string, body?: Body, idempotencyKey?: string): Promise<Record<string, unknown>> {
    const res = await this.send(method, path, body, { idempotencyKey });
    return (await res.json()) as Record<string, unknown>;
  }

  private async send(
    method: string,
    path: string,
    bodyIn: Body | undefined,
    o: { idempotencyKey?: string; accept?: number[]; stream?: boolean; signal?: AbortSignal } = {},
  ): Promise<Response> {
    // POST routes take JSON only; an empty POST sends {}.
    const body = bodyIn ?? (method === "POST" ? {} : undefined);
    const headers: Record<string, string> = { accept: "application/json, application/problem+json, text/plain" };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    if (o.idempotencyKey) headers["idempotency-key"] = o.idempotencyKey;
    const timeout = o.stream ? undefined : AbortSignal.timeout(this.opts.timeoutMs ?? 30_000);
    const signal = timeout && o.signal ? AbortSignal.any([timeout, o.signal]) : (timeout ?? o.signal);
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      throw this.unreachable(e);
    }
    if (res.ok || o.accept?.includes(res.status)) return res;
    throw await this.failure(res);
  }

  private unreachable(e: unknown): ApiError {
    const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const why = err.name === "TimeoutError" ? "timed out" : (err.cause?.code ?? err.cause?.message ?? err.message ?? String(e));
    const from = this.opts.source ? ` (from ${this.opts.source})` : "";
    return new ApiError(
      `Cannot reach the orchestrator API at ${this.baseUrl}${from}: ${why}. Check that the service runs and pass --api-url, set ORCHESTRATOR_API_URL, or choose a context.`,
      0,
    );
  }

  private async failure(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => "");
    let problem: ApiError["problem"];
    try {
      problem = JSON.parse(text) as ApiError["problem"];
    } catch {
      problem = undefined;
    }
    let detail = (problem?.detail ?? (problem as { message?: string } | undefined)?.message ?? text.trim().slice(0, 300)) || res.statusText;
    if (res.status === 401 && !this.opts.token)
      detail += " No token was sent: pass --token, set ORCHESTRATOR_TOKEN, or add a token to the context.";
    return new ApiError(`${detail.replace(/\s*\n\s*/g, " ")} (HTTP ${res.status})`, res.status, problem);
  }
}

function submitted(r: Record<string, unknown>, kind: Submitted["kind"], key: string): Submitted {
  const data = (r.data ?? {}) as Record<string, unknown>;
  return { kind, name: String(data[key] ?? ""), namespace: String(data.namespace ?? ""), data };
}

function seg(s: string): string {
  return encodeURIComponent(s);
}

function qs(q: Record<string, string | number | undefined>): string {
  const entries = Object.entries(q).filter(([, v]) => v !== undefined && v !== "") as [string, string | number][];
  return entries.length ? "?" + new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString() : "";
}
