/**
 * Watches for the informers: client-node's Watch.watch contract (a callback per event, `done`
 * once: on an error, when the server ends the watch, or after 30 s without data; resolves to the
 * AbortController that stops it), over undici's request() on the pooled connection. client-node's
 * own goes through fetch(), a web stream converted back to a Node stream, and readline, for every
 * chunk of every watch: the controller's watch events cost it about half as much this way.
 */
import { STATUS_CODES } from "node:http";
import { HttpMethod, RequestContext, type KubeConfig, type Watch } from "@kubernetes/client-node";
import { exchange } from "./clients.js";

/** client-node's inactivity timeout: a quiet watch is ended and started again from its resourceVersion. */
const IDLE_MS = 30_000;

type WatchFn = Watch["watch"];

export function watchFn(kc: KubeConfig): WatchFn {
  return async (path, query, callback, done) => {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error("No currently active cluster");
    const url = new URL(server + path);
    url.searchParams.set("watch", "true");
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const end = (err: unknown) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      controller.abort();
      done(err ?? null);
    };
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => end(new DOMException("The operation was aborted due to timeout", "TimeoutError")), IDLE_MS);
      timer.unref();
    };
    try {
      idle();
      const ctx = new RequestContext(url.toString(), HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      ctx.setSignal(controller.signal);
      const res = await exchange(ctx);
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw Object.assign(new Error(STATUS_CODES[res.statusCode] ?? "Internal Server Error"), { statusCode: res.statusCode });
      }
      idle();
      readEvents(res.body, callback, idle, end);
    } catch (err) {
      end(err);
    }
    return controller;
  };
}

/** Splits the body into lines, one JSON event each; a line that does not parse is skipped, as client-node does. */
function readEvents(body: NodeJS.ReadableStream, callback: Parameters<WatchFn>[2], onData: () => void, end: (err: unknown) => void): void {
  let rest = "";
  body.setEncoding("utf8");
  body.on("data", (chunk: string) => {
    onData();
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) {
      if (!line) continue;
      try {
        const event = JSON.parse(line) as { type: string; object: unknown };
        callback(event.type, event.object, event);
      } catch {
        // client-node skips what does not parse (and what its handler throws) the same way.
      }
    }
  });
  body.on("error", end);
  body.on("end", () => end(null));
  body.on("close", () => end(null));
}
