// The live state: one EventSource on the dashboard stream, fed by the controller's informers.
// The server sends a snapshot, then every change; a reconnect brings a fresh snapshot.
import { useEffect, useState } from "preact/hooks";
import type { Play } from "../../src/api/play.js";
import type { AnyRun } from "../../src/api/types.js";
import { ApiError, api } from "./api.js";

export type Connection = "connecting" | "live" | "reconnecting" | "signed-out";

export interface LiveState {
  connection: Connection;
  runs: ReadonlyMap<string, AnyRun>;
  plays: ReadonlyMap<string, Play>;
  playsEnabled: boolean;
  namespace: string;
  /** Bumped on every change, so views can memoize on it. */
  version: number;
}

interface Change {
  op: "upsert" | "delete";
  object: AnyRun | Play;
}

export const runKey = (kind: string, name: string) => `${kind}/${name}`;

let state: LiveState = { connection: "connecting", runs: new Map(), plays: new Map(), playsEnabled: false, namespace: "", version: 0 };
const listeners = new Set<() => void>();
let source: EventSource | undefined;

function set(next: Partial<LiveState>): void {
  state = { ...state, ...next, version: state.version + 1 };
  for (const l of listeners) l();
}

function apply(change: Change): void {
  const o = change.object;
  const name = o.metadata.name ?? "";
  if (o.kind === "Play") {
    const plays = new Map(state.plays);
    if (change.op === "delete") plays.delete(name);
    else plays.set(name, o);
    set({ plays });
  } else {
    const runs = new Map(state.runs);
    if (change.op === "delete") runs.delete(runKey(o.kind, name));
    else runs.set(runKey(o.kind, name), o);
    set({ runs });
  }
}

/** Opens the stream (once); a refused stream (signed out) ends in "signed-out". */
export function connect(): void {
  if (source) return;
  const es = new EventSource("api/v1/dashboard/stream");
  source = es;
  es.addEventListener("snapshot", (e) => {
    const snap = JSON.parse((e as MessageEvent<string>).data) as {
      runs: AnyRun[];
      plays: Play[];
      playsEnabled: boolean;
      namespace: string;
    };
    set({
      connection: "live",
      runs: new Map(snap.runs.map((r) => [runKey(r.kind, r.metadata.name ?? ""), r])),
      plays: new Map(snap.plays.map((p) => [p.metadata.name ?? "", p])),
      playsEnabled: snap.playsEnabled,
      namespace: snap.namespace,
    });
  });
  es.addEventListener("change", (e) => apply(JSON.parse((e as MessageEvent<string>).data) as Change));
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CONNECTING) return set({ connection: "reconnecting" });
    // CLOSED: the server answered with an error (401 after the session ended, 503 ...).
    disconnect();
    set({ connection: "reconnecting" });
    api.session().then(
      () => setTimeout(connect, 1000),
      (err: unknown) => (err instanceof ApiError && err.status === 401 ? set({ connection: "signed-out" }) : setTimeout(connect, 2000)),
    );
  });
}

export function disconnect(): void {
  source?.close();
  source = undefined;
}

export function signedOut(): void {
  disconnect();
  set({ connection: "signed-out", runs: new Map(), plays: new Map() });
}

export function reconnect(): void {
  disconnect();
  set({ connection: "connecting" });
  connect();
}

/** The live state; the component re-renders on every change. */
export function useLive(): LiveState {
  const [, render] = useState(0);
  useEffect(() => {
    const l = () => render((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return state;
}
