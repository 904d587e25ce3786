/** Construction of @kubernetes/client-node API clients from a KubeConfig. */
import { BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
}

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

export function makeClients(kc: KubeConfig): KubeClients {
  withConnectionPool(kc);
  return { kc, core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

/** Loads ~/.kube/config, KUBECONFIG or the in-cluster ServiceAccount, like kubectl. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return withConnectionPool(kc);
}
