/**
 * The dashboard's live feed: the informers' caches as a snapshot, then every add, update and
 * delete as a change. It registers one handler per informer and fans changes out to any
 * number of subscribers (server-sent event streams), so browsers add no load on the API server.
 */
import type { Play } from "../api/play.js";
import type { AnyRun } from "../api/types.js";
import type { WatchedCollection } from "./ports.js";

export type FeedObject = AnyRun | Play;

export interface FeedChange {
  op: "upsert" | "delete";
  object: FeedObject;
}

export interface FeedSnapshot {
  runs: AnyRun[];
  plays: Play[];
}

export interface FeedSources {
  runs: readonly WatchedCollection<AnyRun>[];
  /** Absent when Plays are disabled. */
  plays?: WatchedCollection<Play>;
}

type Listener = (change: FeedChange) => void;

/** The object as the browser gets it: managedFields are large and nothing shows them. */
export function presentObject<T extends { metadata: object }>(obj: T): T {
  if (!("managedFields" in obj.metadata)) return obj;
  const metadata = { ...obj.metadata } as T["metadata"] & { managedFields?: unknown };
  delete metadata.managedFields;
  return { ...obj, metadata };
}

export class LiveFeed {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly sources: FeedSources) {
    const all: WatchedCollection<FeedObject>[] = [...sources.runs, ...(sources.plays ? [sources.plays] : [])];
    for (const source of all) {
      source.on("add", (o) => this.emit({ op: "upsert", object: o }));
      source.on("update", (o) => this.emit({ op: "upsert", object: o }));
      source.on("delete", (o) => this.emit({ op: "delete", object: o }));
    }
  }

  get playsEnabled(): boolean {
    return this.sources.plays !== undefined;
  }

  snapshot(): FeedSnapshot {
    return {
      runs: this.sources.runs.flatMap((s) => s.list()).map(presentObject),
      plays: (this.sources.plays?.list() ?? []).map(presentObject),
    };
  }

  /** Every change after this call; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  private emit(change: FeedChange): void {
    if (this.listeners.size === 0) return;
    const presented = { op: change.op, object: presentObject(change.object) };
    for (const l of this.listeners) l(presented);
  }
}
