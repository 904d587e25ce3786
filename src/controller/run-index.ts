/**
 * Indexes over the run caches, like client-go's Indexers: the runs of a requester and the
 * CodeRuns of a service. The quota and slot checks of every pass read these instead of
 * scanning all runs of the namespace (and hashing each run's spec to find its requester),
 * which made a burst of N runs cost O(N²). Kept current by the informers' events, which run
 * synchronously after the cache changed; an object is indexed under its uid, so an update
 * replaces the previous version of the same run.
 */
import { Kinds, type AnyRun } from "../api/index.js";
import { requesterOf } from "../authz/authorize.js";

const NONE: ReadonlyMap<string, AnyRun> = new Map();

export class RunIndex {
  private readonly byRequester = new Map<string, Map<string, AnyRun>>();
  private readonly byService = new Map<string, Map<string, AnyRun>>();
  /** uid → the index keys it is filed under, to unfile it on update or delete. */
  private readonly filed = new Map<string, { requester: string; service: string | undefined }>();

  /** Files a run added or updated in the cache. */
  upsert(run: AnyRun): void {
    const uid = run.metadata.uid;
    if (!uid) return;
    this.remove(run);
    const ns = run.metadata.namespace ?? "";
    const requester = `${ns}/${requesterOf(run)}`;
    const service = run.kind === Kinds.CodeRun ? `${ns}/${run.spec.service}` : undefined;
    file(this.byRequester, requester, uid, run);
    if (service !== undefined) file(this.byService, service, uid, run);
    this.filed.set(uid, { requester, service });
  }

  /** Unfiles a run deleted from the cache. */
  remove(run: AnyRun): void {
    const uid = run.metadata.uid ?? "";
    const keys = this.filed.get(uid);
    if (!keys) return;
    this.filed.delete(uid);
    unfile(this.byRequester, keys.requester, uid);
    if (keys.service !== undefined) unfile(this.byService, keys.service, uid);
  }

  /** The runs (both kinds) that `requester` asked for (requesterOf), by uid; a live view, not a copy. */
  ofRequester(namespace: string, requester: string): ReadonlyMap<string, AnyRun> {
    return this.byRequester.get(`${namespace}/${requester}`) ?? NONE;
  }

  /** The CodeRuns of `service`, by uid; a live view, not a copy. */
  codeRunsOfService(namespace: string, service: string): ReadonlyMap<string, AnyRun> {
    return this.byService.get(`${namespace}/${service}`) ?? NONE;
  }

  /** Runs indexed (for tests and gauges). */
  get size(): number {
    return this.filed.size;
  }
}

function file(index: Map<string, Map<string, AnyRun>>, key: string, uid: string, run: AnyRun): void {
  let m = index.get(key);
  if (!m) index.set(key, (m = new Map()));
  m.set(uid, run);
}

function unfile(index: Map<string, Map<string, AnyRun>>, key: string, uid: string): void {
  const m = index.get(key);
  if (!m) return;
  m.delete(uid);
  if (m.size === 0) index.delete(key);
}
