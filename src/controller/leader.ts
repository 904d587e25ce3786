/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
 * every replica tries to acquire the Lease every retry period; the holder renews it and gives
 * up when it could not renew within the renew deadline; a Lease is taken over when its record
 * has not changed for its whole duration *as measured on this replica's clock* (never by
 * comparing renewTime with the local clock, so clock skew between nodes cannot hand the Lease to
 * two replicas). Releasing clears the holder, so the next replica takes over on its next try.
 *
 * decideLease() is pure (tested by tables); LeaderElector applies it through the LeaseClient port
 * (src/kube/lease.ts), with time injected.
 */

/** The Lease fields election reads and writes (spec of a coordination.k8s.io/v1 Lease). */
export interface LeaseRecord {
  /** Empty when released or never held. */
  holder: string;
  durationSeconds: number;
  acquireTime: Date | undefined;
  renewTime: Date | undefined;
  transitions: number;
}

/** A record as read: with the resourceVersion an update must carry (optimistic concurrency). */
export interface ObservedLease extends LeaseRecord {
  resourceVersion: string;
}

/** The Kubernetes calls of election, declared by their consumer. Any failure throws. */
export interface LeaseClient {
  /** The Lease, or null when it does not exist. */
  get(): Promise<ObservedLease | null>;
  /** Creates the Lease; throws when it exists already (another replica was first). */
  create(record: LeaseRecord): Promise<ObservedLease>;
  /** Replaces the Lease's spec; throws on a conflict (resourceVersion changed under us). */
  update(record: LeaseRecord, resourceVersion: string): Promise<ObservedLease>;
}

export interface LeaseTimings {
  /** How long a Lease holds without renewal before another replica may take it. */
  leaseDurationMs: number;
  /** The holder gives up when it could not renew for this long (< leaseDurationMs). */
  renewDeadlineMs: number;
  /** Time between attempts, of the holder and of the others. */
  retryPeriodMs: number;
}

/** What one try does, computed from the observed Lease. */
export type LeaseDecision =
  | { action: "create"; record: LeaseRecord }
  | { action: "update"; record: LeaseRecord; resourceVersion: string }
  | { action: "wait"; holder: string };

export interface DecideInput {
  observed: ObservedLease | null;
  identity: string;
  now: Date;
  /** Local time at which this replica first saw the observed record unchanged (its key). */
  observedSince: number;
  timings: LeaseTimings;
}

/** A key that changes whenever anybody writes the record (holder, renew time, version). */
export function leaseKey(l: ObservedLease | null): string {
  return l ? `${l.resourceVersion}|${l.holder}|${l.renewTime?.getTime() ?? ""}` : "";
}

/** Decides one try of acquire-or-renew (client-go's tryAcquireOrRenew, without the I/O). */
export function decideLease({ observed, identity, now, observedSince, timings }: DecideInput): LeaseDecision {
  const durationSeconds = Math.max(1, Math.ceil(timings.leaseDurationMs / 1000));
  if (!observed)
    return { action: "create", record: { holder: identity, durationSeconds, acquireTime: now, renewTime: now, transitions: 0 } };
  if (observed.holder === identity)
    return {
      action: "update",
      resourceVersion: observed.resourceVersion,
      record: { ...observed, holder: identity, durationSeconds, renewTime: now },
    };
  const expiresAt = observedSince + observed.durationSeconds * 1000;
  if (observed.holder !== "" && now.getTime() < expiresAt) return { action: "wait", holder: observed.holder };
  return {
    action: "update",
    resourceVersion: observed.resourceVersion,
    record: { holder: identity, durationSeconds, acquireTime: now, renewTime: now, transitions: observed.transitions + 1 },
  };
}

/** The record that hands the Lease over at once: no holder, and expired for anybody reading it. */
export function buildReleased(observed: LeaseRecord, now: Date): LeaseRecord {
  return { ...observed, holder: "", durationSeconds: 1, renewTime: now };
}

export interface Clock {
  now(): Date;
  /** Resolves after ms, or earlier when the signal aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    }),
};

export interface LeaderElectorOptions {
  client: LeaseClient;
  identity: string;
  timings: LeaseTimings;
  clock?: Clock;
  /** Told when an attempt fails (logging); the elector retries on its own. */
  onError?(err: unknown, leading: boolean): void;
  /** Told whenever the observed holder changes (metrics, logs). */
  onHolder?(holder: string): void;
}

/**
 * Runs the election loop: campaign() resolves once this replica holds the Lease, and keeps
 * renewing it; lost resolves when renewal failed past the renew deadline (the replica must stop
 * reconciling at once); release() stops renewing and clears the holder.
 */
export class LeaderElector {
  private observed: ObservedLease | null = null;
  private observedKey = "\0";
  private observedSince = 0;
  private lastRenew = 0;
  private holderSeen = "\0";
  private leading = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private campaigning: Promise<boolean> | undefined;
  private resolveLost!: () => void;
  /** Resolves when leadership was lost (renewal failed for the renew deadline). */
  readonly lost: Promise<void> = new Promise((r) => (this.resolveLost = r));
  private readonly clock: Clock;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  get identity(): string {
    return this.opts.identity;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder as last observed ("" when none). */
  get holder(): string {
    return this.observed?.holder ?? "";
  }

  /** Tries every retry period until this replica holds the Lease, then renews it in the background. */
  campaign(): Promise<boolean> {
    return (this.campaigning ??= this.runCampaign());
  }

  /** Stops campaigning or renewing; when leading, clears the holder so another replica takes over now. */
  async release(): Promise<void> {
    this.abort.abort();
    // An acquire may be in flight: wait for it, so a Lease won just now is released too.
    await this.campaigning;
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    const current = this.observed;
    if (!current || current.holder !== this.opts.identity) return;
    try {
      await this.opts.client.update(buildReleased(current, this.clock.now()), current.resourceVersion);
      this.see(null);
    } catch (err) {
      this.opts.onError?.(err, false);
    }
  }

  private async runCampaign(): Promise<boolean> {
    const { retryPeriodMs } = this.opts.timings;
    while (!this.abort.signal.aborted) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.lastRenew = this.clock.now().getTime();
        if (this.abort.signal.aborted) return false;
        this.loop = this.renewLoop();
        return true;
      }
      await this.clock.sleep(retryPeriodMs, this.abort.signal);
    }
    return false;
  }

  private async renewLoop(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.opts.timings;
    while (!this.abort.signal.aborted) {
      await this.clock.sleep(retryPeriodMs, this.abort.signal);
      if (this.abort.signal.aborted) return;
      if (await this.tryAcquireOrRenew()) this.lastRenew = this.clock.now().getTime();
      else if (this.clock.now().getTime() - this.lastRenew >= renewDeadlineMs || this.holder !== this.opts.identity) {
        this.leading = false;
        this.resolveLost();
        return;
      }
    }
  }

  /** One try: read, decide, write. True when this replica holds the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, identity, timings } = this.opts;
    try {
      const observed = await client.get();
      this.see(observed);
      const decision = decideLease({ observed, identity, now: this.clock.now(), observedSince: this.observedSince, timings });
      if (decision.action === "wait") return false;
      const written =
        decision.action === "create"
          ? await client.create(decision.record)
          : await client.update(decision.record, decision.resourceVersion);
      this.see(written);
      return true;
    } catch (err) {
      this.opts.onError?.(err, this.leading);
      return false;
    }
  }

  private see(observed: ObservedLease | null): void {
    const key = leaseKey(observed);
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observedSince = this.clock.now().getTime();
    }
    this.observed = observed;
    const holder = observed?.holder ?? "";
    if (holder !== this.holderSeen) {
      this.holderSeen = holder;
      this.opts.onHolder?.(holder);
    }
  }
}
