/**
 * Records every request a KubeConfig's clients send to the API server (client-node calls
 * applySecurityAuthentication once per request, watches included), so a test can count what
 * the controller really asks of the real API server.
 */
import type { KubeConfig } from "@kubernetes/client-node";

export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. /api/v1/namespaces/ns/configmaps?fieldManager=... */
  url: string;
  /** A watch or a list: the informers' traffic, not a per-run call. */
  informer: boolean;
}

export function recordRequests(kc: KubeConfig): RecordedRequest[] {
  const seen: RecordedRequest[] = [];
  const original = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (ctx) => {
    const u = new URL(ctx.getUrl());
    const method = String(ctx.getHttpMethod());
    // A collection GET (its last segment a plural, not an object name under one) is a list.
    const collection = /\/namespaces\/[^/]+\/[a-z]+$/.test(u.pathname);
    seen.push({ method, url: u.pathname + u.search, informer: u.searchParams.get("watch") === "true" || (method === "GET" && collection) });
    return original(ctx);
  };
  return seen;
}

/** "POST configmaps", "PATCH coderuns/status", "GET secrets": what a request did to which collection. */
export function describeRequest(r: RecordedRequest): string {
  const m = /\/namespaces\/[^/]+\/([a-z]+)(?:\/[^/?]+(\/[a-z]+)?)?/.exec(r.url);
  return `${r.method} ${m?.[1] ?? r.url}${m?.[2] ?? ""}`;
}
