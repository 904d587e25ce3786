/**
 * The dashboard's server-sent event stream: the feed's snapshot, then each change as it
 * happens. A browser that cannot keep up (its buffer past MAX_BUFFERED) is disconnected and
 * reconnects to a fresh snapshot, rather than the service buffering without bound.
 */
import type { ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FeedChange, LiveFeed } from "./feed.js";

const MAX_BUFFERED = 8 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;
/** Reconnect delay the browser's EventSource uses after a dropped connection. */
const RETRY_MS = 1000;

/** One SSE frame; data is JSON on one line, so no line of it can end the frame early. */
export function formatEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Open streams, ended when the app closes (they would otherwise hold app.close() open). */
export class EventStreams {
  private readonly open = new Set<ServerResponse>();

  constructor(private readonly feed: LiveFeed) {}

  get size(): number {
    return this.open.size;
  }

  serve(req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown>): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // nginx (the chart's Ingress) would otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    const send = (frame: string) => {
      if (res.writableLength > MAX_BUFFERED) {
        req.log.warn({ buffered: res.writableLength }, "Dropped slow dashboard stream");
        res.destroy();
        return;
      }
      res.write(frame);
    };
    // Subscribing and taking the snapshot happen in one synchronous step: no informer event can
    // fall between them, and every change the browser gets is newer than its snapshot.
    const unsubscribe = this.feed.subscribe((change: FeedChange) => send(formatEvent("change", change)));
    send(`retry: ${RETRY_MS}\n\n`);
    send(formatEvent("snapshot", { ...this.feed.snapshot(), ...extra }));
    const heartbeat = setInterval(() => send(": keep-alive\n\n"), HEARTBEAT_MS);
    this.open.add(res);
    res.on("close", () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.open.delete(res);
    });
  }

  closeAll(): void {
    for (const res of this.open) res.end();
    this.open.clear();
  }
}
