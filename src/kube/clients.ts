/** Construction of @kubernetes/client-node API clients from a KubeConfig. */
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  HttpMethod,
  RequestContext,
  ResponseContext,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
  wrapHttpLibrary,
} from "@kubernetes/client-node";
import { request, type Dispatcher } from "undici";

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  /** The controller's hot writes, without the generated clients' (de)serialization. */
  write: JsonWrite;
}

/**
 * A JSON write whose answer is not read: it resolves on success and throws client-node's
 * ApiException (status code, body) otherwise, as the generated clients do. `path` includes the
 * query; `body` is plain JSON (src/manifests builds its objects as such).
 */
export type JsonWrite = (method: "POST" | "PATCH", path: string, body: unknown, contentType?: string) => Promise<void>;

const POOLED = Symbol("orchestrator.pooled");

/**
 * client-node 2.0 builds a new undici Agent for every request (KubeConfig#createDispatcher is
 * called per request), so no connection is ever reused: each call pays a TLS handshake and the
 * agents pile up until GC. Measured on the controller benchmark this cost more than half the
 * throughput and doubled peak RSS. This memoizes the dispatcher per cluster + credentials, so
 * every client made from this KubeConfig shares one keep-alive pool, as client-go does. The
 * pool is renewed every few minutes so rotated client-certificate files are picked up; requests
 * in flight on the old one finish first.
 */
export function withConnectionPool(kc: KubeConfig, maxAgeMs = 5 * 60_000): KubeConfig {
  type Dispatcher = { close?: () => Promise<void> };
  const k = kc as unknown as {
    [POOLED]?: boolean;
    createDispatcher: (cluster: { server?: string } | null, opts: { cert?: unknown; key?: unknown }) => Dispatcher | undefined;
  };
  if (k[POOLED]) return kc;
  const original = k.createDispatcher.bind(kc);
  const pool = new Map<string, { dispatcher: Dispatcher | undefined; since: number }>();
  k.createDispatcher = (cluster, opts) => {
    const key = `${cluster?.server ?? ""}|${String(opts?.cert ?? "")}|${String(opts?.key ?? "").length}`;
    const now = Date.now();
    const hit = pool.get(key);
    if (hit && now - hit.since <= maxAgeMs) return hit.dispatcher;
    void hit?.dispatcher?.close?.().catch(() => undefined);
    const fresh = { dispatcher: original(cluster, opts), since: now };
    pool.set(key, fresh);
    return fresh.dispatcher;
  };
  k[POOLED] = true;
  return kc;
}

const USER_AGENT = "orchestrator";

/** One request, as client-node prepared it (URL, headers, body, its dispatcher), through undici's request(). */
export function exchange(ctx: RequestContext): Promise<Dispatcher.ResponseData> {
  return request(ctx.getUrl(), {
    method: ctx.getHttpMethod() as Dispatcher.HttpMethod,
    headers: ctx.getHeaders(),
    body: ctx.getBody() as string | Buffer | undefined,
    signal: ctx.getSignal() ?? undefined,
    dispatcher: ctx.getDispatcher() as Dispatcher | undefined,
  });
}

function headersOf(res: Dispatcher.ResponseData): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return headers;
}

async function send(ctx: RequestContext): Promise<ResponseContext> {
  const res = await exchange(ctx);
  return new ResponseContext(res.statusCode, headersOf(res), {
    text: () => res.body.text(),
    binary: async () => Buffer.from(await res.body.arrayBuffer()),
    stream: () => null,
  });
}

/**
 * client-node's own transport is undici's fetch(): a WHATWG Request, Response and web stream per
 * call. undici's request() makes the same HTTP exchange on the same connection pool without them,
 * at about half the client CPU per call (measured on a run's four writes: 4.8 → 2.6 ms). The
 * generated clients take it as their `httpApi`; everything else about them is unchanged.
 */
const transport = wrapHttpLibrary({ send });

function apiClient<T>(kc: KubeConfig, server: string, api: new (config: ReturnType<typeof createConfiguration>) => T): T {
  return new api(
    createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: kc },
      httpApi: transport,
      middleware: [setHeaderMiddleware("User-Agent", USER_AGENT)],
    }),
  );
}

/**
 * The generated clients serialize a request body by walking its model (V1Job: every container,
 * env var and volume) and parse and deserialize the whole answer, Dates included, for writes
 * whose answer the controller never reads: a fifth of its CPU per run. These send the body as
 * JSON and discard the answer; the request (server, authentication, connection pool) is prepared
 * by client-node as for any other call.
 */
function jsonWrite(kc: KubeConfig, server: string): JsonWrite {
  return async (method, path, body, contentType = "application/json") => {
    const ctx = new RequestContext(server + path, method === "POST" ? HttpMethod.POST : HttpMethod.PATCH);
    await kc.applySecurityAuthentication(ctx);
    ctx.setHeaderParam("Content-Type", contentType);
    ctx.setHeaderParam("Accept", "application/json");
    ctx.setHeaderParam("User-Agent", USER_AGENT);
    ctx.setBody(JSON.stringify(body));
    const res = await exchange(ctx);
    if (res.statusCode >= 200 && res.statusCode < 300) return res.body.dump();
    throw new ApiException(res.statusCode, "Unknown API Status Code!", await res.body.text(), headersOf(res));
  };
}

export function makeClients(kc: KubeConfig): KubeClients {
  withConnectionPool(kc);
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("No active cluster in the kubeconfig");
  return {
    kc,
    core: apiClient(kc, server, CoreV1Api),
    batch: apiClient(kc, server, BatchV1Api),
    custom: apiClient(kc, server, CustomObjectsApi),
    write: jsonWrite(kc, server),
  };
}

/** Loads ~/.kube/config, KUBECONFIG or the in-cluster ServiceAccount, like kubectl. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return withConnectionPool(kc);
}
