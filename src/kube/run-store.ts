/**
 * The RunStore (src/intake/store.ts) over @kubernetes/client-node: CodeRuns/DocsRuns through
 * CustomObjectsApi, Job pod logs through CoreV1Api + Log. Also the TokenReview adapter for API
 * authentication. Every API outcome becomes a RunStoreError:
 *   409 → AlreadyExists or Conflict (by the Status reason), 404 → NotFound, 400/422 → Invalid (with the API server's causes),
 *   401/403 → Forbidden, 408/429/5xx and connection errors or timeouts → Unavailable. A 429 is
 *   asked again first, up to three times after its Retry-After (callApi).
 */
import { PassThrough, type Readable } from "node:stream";
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Log,
  Observable,
  type KubeConfig,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1Pod,
  type V1TokenReview,
} from "@kubernetes/client-node";
import { CLUSTER_KUBECONFIG_KEY, GROUP, HOME_CLUSTER, Labels, Plurals, VERSION } from "../api/constants.js";
import type { Play } from "../api/play.js";
import { agentContainerName } from "../api/runner-contract.js";
import type { AnyRun } from "../api/types.js";
import { withConnectionPool } from "./clients.js";
import { loadClusterKubeConfig } from "./clusters.js";
import type { TokenReviewer } from "../http/auth.js";
import { RunStoreError, type JobLogOptions, type PlayStore, type RunKind, type RunStore } from "../intake/store.js";

export interface KubeRunStoreOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Per-request timeout; a hung API server becomes Unavailable instead of a hung request. */
  requestTimeoutMs?: number;
}

/**
 * Options for one call: a fresh timeout signal, optionally extra headers.
 * The object-parameter API takes Observable middleware (the client's rxjs stub), not Promise
 * middleware.
 */
type CallOptions = Parameters<CustomObjectsApi["getNamespacedCustomObject"]>[1];
function callOptions(timeoutMs: number, headers: Record<string, string> = {}): CallOptions {
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(AbortSignal.timeout(timeoutMs));
      for (const [k, v] of Object.entries(headers)) ctx.setHeaderParam(k, v);
      return new Observable(Promise.resolve(ctx));
    },
    post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" };
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

function parseStatus(body: unknown): StatusBody {
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 500) };
    }
  }
  return body !== null && typeof body === "object" ? (body as StatusBody) : {};
}

/** Maps anything a client-node call threw to a RunStoreError. */
export function toStoreError(err: unknown): RunStoreError {
  if (err instanceof RunStoreError) return err;
  if (err instanceof ApiException) {
    const code = err.code as number;
    const status = parseStatus(err.body);
    const message = status.message ?? `HTTP ${code}`;
    if (code === 409) return new RunStoreError(status.reason === "AlreadyExists" ? "AlreadyExists" : "Conflict", message);
    if (code === 404) return new RunStoreError("NotFound", message);
    if (code === 401 || code === 403) return new RunStoreError("Forbidden", message);
    if (code === 408 || code === 429 || code >= 500) return new RunStoreError("Unavailable", `HTTP ${code}: ${message}`);
    const causes = (status.details?.causes ?? []).map((c) => ({ field: c.field, message: c.message ?? c.reason ?? "invalid" }));
    return new RunStoreError("Invalid", message, causes);
  }
  // Not an HTTP answer: connection refused/reset, DNS, TLS, timeout (AbortSignal), no cluster.
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  const detail =
    e?.cause?.code ?? e?.code ?? (e?.name === "TimeoutError" ? "timeout" : undefined) ?? e?.cause?.message ?? e?.message ?? String(err);
  return new RunStoreError("Unavailable", String(detail));
}

/** How often a 429 is asked again, and the longest Retry-After honoured: a few seconds in all. */
const RETRIES_AFTER_429 = 3;
const MAX_RETRY_AFTER_MS = 2_000;

/**
 * The wait a 429 from the API server asks for (its Retry-After, 1 s without one, at most 2 s), or
 * undefined for any other outcome. A 429 means the API server did nothing with the request
 * (priority and fairness, or a watch cache still (re)initializing), so it is safe to send again.
 */
export function retryAfter429Ms(err: unknown): number | undefined {
  if (!(err instanceof ApiException) || err.code !== 429) return undefined;
  const headers = (err.headers ?? {}) as Record<string, string | undefined>;
  const seconds = Number(headers["retry-after"] ?? headers["Retry-After"] ?? 1);
  return Math.min(MAX_RETRY_AFTER_MS, Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000);
}

/** Runs an API call, asking again after a 429 as client-go does; any other failure becomes a RunStoreError. */
export async function callApi<T>(fn: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await fn();
    } catch (err) {
      const wait = retryAfter429Ms(err);
      if (wait === undefined || retry >= RETRIES_AFTER_429) throw toStoreError(err);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

function newestPod(pods: V1Pod[]): V1Pod | undefined {
  const ts = (p: V1Pod) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
  return [...pods].sort((a, b) => ts(b) - ts(a) || (b.metadata?.name ?? "").localeCompare(a.metadata?.name ?? ""))[0];
}

/** Creates the Kubernetes-backed RunStore for one namespace. */
export function createKubeRunStore(opts: KubeRunStoreOptions): RunStore {
  withConnectionPool(opts.kubeConfig);
  const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const log = new Log(opts.kubeConfig);
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const namespace = opts.namespace;
  const base = (kind: RunKind) => ({ group: GROUP, version: VERSION, namespace, plural: Plurals[kind] });

  return {
    namespace,
    create: (run) =>
      callApi(async () => {
        const body = { ...run, metadata: { ...run.metadata, namespace } };
        return (await custom.createNamespacedCustomObject({ ...base(run.kind), body }, callOptions(timeout))) as typeof run;
      }),
    get: (kind, name) =>
      callApi(async () => (await custom.getNamespacedCustomObject({ ...base(kind), name }, callOptions(timeout))) as AnyRun),
    list: (kind, labels = {}) =>
      callApi(async () => {
        const labelSelector =
          Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(",") || undefined;
        const res = (await custom.listNamespacedCustomObject({ ...base(kind), labelSelector }, callOptions(timeout))) as {
          items?: AnyRun[];
        };
        return (res.items ?? []).map((r) => ({ ...r, apiVersion: r.apiVersion ?? `${GROUP}/${VERSION}`, kind: r.kind ?? kind }) as AnyRun);
      }),
    patchSpec: (kind, name, patch) =>
      callApi(
        async () =>
          (await custom.patchNamespacedCustomObject(
            { ...base(kind), name, body: { spec: patch } },
            callOptions(timeout, { "Content-Type": "application/merge-patch+json" }),
          )) as AnyRun,
      ),
    openJobLogs: (jobName, o) =>
      callApi(async () => {
        // A run in an execution cluster: its pod's log is read there, as its cluster Secret says.
        if (!o.cluster || o.cluster === HOME_CLUSTER) return openJobLogs(core, log, namespace, jobName, o, timeout);
        const kc = await clusterKubeConfig(core, namespace, o.cluster, timeout);
        return openJobLogs(kc.makeApiClient(CoreV1Api), new Log(kc), namespace, jobName, o, timeout);
      }),
    listMountableSecrets: () =>
      callApi(async () => {
        const res = await core.listNamespacedSecret({ namespace, labelSelector: `${Labels.mountable}=true` }, callOptions(timeout));
        return res.items.map((s) => s.metadata?.name ?? "").filter(Boolean);
      }),
  };
}

/** The kubeconfig of a registered execution cluster, read from its cluster Secret now. */
async function clusterKubeConfig(core: CoreV1Api, namespace: string, cluster: string, timeout: number): Promise<KubeConfig> {
  const labelSelector = `${Labels.cluster}=${cluster}`;
  const secrets = await core.listNamespacedSecret({ namespace, labelSelector }, callOptions(timeout));
  const data = secrets.items[0]?.data?.[CLUSTER_KUBECONFIG_KEY];
  if (!data) throw new RunStoreError("NotFound", `no cluster Secret labelled ${labelSelector} with a ${CLUSTER_KUBECONFIG_KEY} key`);
  try {
    return withConnectionPool(loadClusterKubeConfig(Buffer.from(data, "base64").toString("utf8")));
  } catch (e) {
    throw new RunStoreError("Unavailable", `the cluster Secret of ${cluster} cannot be used: ${(e as Error).message}`);
  }
}

async function openJobLogs(
  core: CoreV1Api,
  log: Log,
  namespace: string,
  jobName: string,
  o: JobLogOptions,
  timeout: number,
): Promise<Readable> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` }, callOptions(timeout));
  const pod = newestPod(pods.items);
  if (!pod?.metadata?.name) throw new RunStoreError("NotFound", `no pod with label job-name=${jobName}`);
  const container = o.container ?? agentContainerName(pod);
  if (!container) throw new RunStoreError("NotFound", `pod ${pod.metadata.name} has no containers`);
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const state = statuses.find((c) => c.name === container)?.state;
  if (state?.waiting || (!state && pod.status?.phase === "Pending")) {
    throw new RunStoreError("NotReady", `pod ${pod.metadata.name} container ${container} is ${state?.waiting?.reason ?? "pending"}`);
  }
  const out = new PassThrough();
  let controller: AbortController;
  try {
    controller = await log.log(namespace, pod.metadata.name, container, out, { follow: o.follow, tailLines: o.tailLines });
  } catch (err) {
    // The log endpoint answers 400 while a container is still waiting to start.
    if (err instanceof ApiException && (err.code as number) === 400)
      throw new RunStoreError("NotReady", `pod ${pod.metadata.name} container ${container} has not started`);
    throw err;
  }
  const stop = () => {
    controller.abort();
    out.end();
  };
  if (o.signal?.aborted) stop();
  else o.signal?.addEventListener("abort", stop, { once: true });
  return out;
}

/** The PlayStore (src/http/ports.ts) for one namespace, with the same error mapping as the RunStore. */
export function createKubePlayStore(opts: KubeRunStoreOptions): PlayStore {
  withConnectionPool(opts.kubeConfig);
  const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const namespace = opts.namespace;
  const base = { group: GROUP, version: VERSION, namespace, plural: Plurals.Play };
  return {
    namespace,
    create: (play) =>
      callApi(
        async () =>
          (await custom.createNamespacedCustomObject(
            { ...base, body: { ...play, metadata: { ...play.metadata, namespace } } },
            callOptions(timeout),
          )) as Play,
      ),
    get: (name) => callApi(async () => (await custom.getNamespacedCustomObject({ ...base, name }, callOptions(timeout))) as Play),
    list: (labels = {}) =>
      callApi(async () => {
        const labelSelector =
          Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(",") || undefined;
        const res = (await custom.listNamespacedCustomObject({ ...base, labelSelector }, callOptions(timeout))) as { items?: Play[] };
        return (res.items ?? []).map((p) => ({ ...p, apiVersion: p.apiVersion ?? `${GROUP}/${VERSION}`, kind: "Play" }) as Play);
      }),
    patchSpec: (name, patch) =>
      callApi(
        async () =>
          (await custom.patchNamespacedCustomObject(
            { ...base, name, body: { spec: patch } },
            callOptions(timeout, { "Content-Type": "application/merge-patch+json" }),
          )) as Play,
      ),
  };
}

/** TokenReview adapter for createAuthenticator({ tokenReview }). */
export function createKubeTokenReviewer(kubeConfig: KubeConfig, requestTimeoutMs = 5000): TokenReviewer {
  withConnectionPool(kubeConfig);
  const auth = kubeConfig.makeApiClient(AuthenticationV1Api);
  return {
    async review(token, audiences) {
      const body: V1TokenReview = {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, ...(audiences.length ? { audiences } : {}) },
      };
      const res = await callApi(() => auth.createTokenReview({ body }, callOptions(requestTimeoutMs)));
      return {
        authenticated: res.status?.authenticated === true,
        username: res.status?.user?.username,
        groups: res.status?.user?.groups,
        error: res.status?.error,
      };
    },
  };
}
