/**
 * Leader election: the pure decision by tables, the loop against an in-memory Lease with
 * optimistic concurrency (what the API server enforces with resourceVersion) and a virtual clock,
 * and the manager starting workers only while it leads.
 */
import { describe, expect, it } from "vitest";
import {
  LeaderElector,
  decideLease,
  type Clock,
  type LeaseClient,
  type LeaseRecord,
  type LeaseTimings,
  type ObservedLease,
} from "../../src/controller/leader.js";
import { Manager, type Election } from "../../src/controller/manager.js";
import type { InformerSource, SharedInformer } from "../../src/controller/ports.js";
import { Annotations } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import { RunReporter } from "../../src/controller/run-reporter.js";
import { PlayController } from "../../src/play/controller.js";
import type { PlayKube } from "../../src/play/ports.js";
import type { RunReporterGitHub } from "../../src/reporter/run-reporter.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";

const timings: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const T0 = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const lease = (over: Partial<ObservedLease>): ObservedLease => ({
  holder: "b",
  durationSeconds: 15,
  acquireTime: at(-60_000),
  renewTime: at(-1_000),
  transitions: 3,
  resourceVersion: "7",
  ...over,
});

describe("decideLease", () => {
  const cases: Array<{ name: string; observed: ObservedLease | null; now: number; since: number; want: Record<string, unknown> }> = [
    {
      name: "no Lease yet: create it, first holder",
      observed: null,
      now: 0,
      since: 0,
      want: { action: "create", record: { holder: "a", durationSeconds: 15, acquireTime: at(0), renewTime: at(0), transitions: 0 } },
    },
    {
      name: "held by us: renew, keeping acquireTime and transitions",
      observed: lease({ holder: "a" }),
      now: 5_000,
      since: 0,
      want: {
        action: "update",
        resourceVersion: "7",
        record: { holder: "a", renewTime: at(5_000), acquireTime: at(-60_000), transitions: 3 },
      },
    },
    {
      name: "held by another, seen unchanged for less than its duration: wait",
      observed: lease({}),
      now: 14_999,
      since: 0,
      want: { action: "wait", holder: "b" },
    },
    {
      name: "held by another, unchanged for its whole duration on our clock: take over",
      observed: lease({}),
      now: 15_000,
      since: 0,
      want: { action: "update", resourceVersion: "7", record: { holder: "a", acquireTime: at(15_000), transitions: 4 } },
    },
    {
      name: "the holder's renewTime is an hour old by our clock (skew), but we saw it change just now: wait",
      observed: lease({ renewTime: at(-3_600_000) }),
      now: 1_000,
      since: 0,
      want: { action: "wait", holder: "b" },
    },
    {
      name: "released (no holder): take over at once",
      observed: lease({ holder: "", durationSeconds: 1 }),
      now: 1,
      since: 0,
      want: { action: "update", record: { holder: "a", transitions: 4 } },
    },
    {
      name: "the duration is the Lease's, not ours: a 60 s Lease of another holder still holds at 30 s",
      observed: lease({ durationSeconds: 60 }),
      now: 30_000,
      since: 0,
      want: { action: "wait", holder: "b" },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = decideLease({ observed: c.observed, identity: "a", now: at(c.now), observedSince: at(c.since).getTime(), timings });
      expect(d).toMatchObject(c.want);
    });
});

/** Virtual time: sleepers wake when the test advances the clock. */
class VirtualClock implements Clock {
  private t = T0.getTime();
  private sleepers: Array<{ at: number; resolve: () => void }> = [];
  now = () => new Date(this.t);
  sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const s = { at: this.t + ms, resolve };
      this.sleepers.push(s);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  /** Advances in steps of 100 ms, letting every woken loop run to its next sleep. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    while (this.t < end) {
      this.t = Math.min(end, this.t + 100);
      const due = this.sleepers.filter((s) => s.at <= this.t);
      this.sleepers = this.sleepers.filter((s) => s.at > this.t);
      due.forEach((s) => s.resolve());
      await flush();
    }
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

/** One Lease with the API server's optimistic concurrency; `down` makes one identity's calls fail. */
class MemoryLease {
  record: LeaseRecord | null = null;
  rv = 0;
  writes: string[] = [];
  readonly down = new Set<string>();
  client(identity: string): LeaseClient {
    const check = () => {
      if (this.down.has(identity)) throw new Error("connection refused");
    };
    const observed = (): ObservedLease => ({ ...this.record!, resourceVersion: String(this.rv) });
    return {
      get: async () => (check(), this.record ? observed() : null),
      create: async (r) => {
        check();
        if (this.record) throw Object.assign(new Error('leases "l" already exists'), { code: 409 });
        this.record = { ...r };
        this.rv++;
        this.writes.push(`${identity}:create:${r.holder}`);
        return observed();
      },
      update: async (r, resourceVersion) => {
        check();
        if (resourceVersion !== String(this.rv)) throw Object.assign(new Error("conflict"), { code: 409 });
        this.record = { ...r };
        this.rv++;
        this.writes.push(`${identity}:update:${r.holder}`);
        return observed();
      },
    };
  }
}

function electors(n: number, t: LeaseTimings = timings) {
  const clock = new VirtualClock();
  const store = new MemoryLease();
  const es = Array.from(
    { length: n },
    (_, i) => new LeaderElector({ client: store.client(`r${i}`), identity: `r${i}`, timings: t, clock }),
  );
  return { clock, store, es };
}

describe("LeaderElector", () => {
  it("exactly one of three racing replicas acquires; the others wait and see it as holder", async () => {
    const { clock, store, es } = electors(3);
    const won: string[] = [];
    es.forEach((e) => void e.campaign().then(() => won.push(e.identity)));
    await clock.advance(30_000);
    expect(won).toHaveLength(1);
    expect(es.filter((e) => e.isLeader).map((e) => e.identity)).toEqual(won);
    expect(es.map((e) => e.holder)).toEqual([won[0], won[0], won[0]]);
    expect(store.record?.holder).toBe(won[0]);
    // The leader renewed every retry period meanwhile.
    expect(store.writes.filter((w) => w.startsWith(`${won[0]}:update`)).length).toBeGreaterThanOrEqual(13);
    await Promise.all(es.map((e) => e.release()));
  });

  it("a released Lease is taken over within one retry period, with the transition counted", async () => {
    const { clock, store, es } = electors(2);
    const [a, b] = es as [LeaderElector, LeaderElector];
    await Promise.all([a.campaign(), clock.advance(100)]);
    let bLeads = false;
    void b.campaign().then(() => (bLeads = true));
    await clock.advance(20_000);
    expect(bLeads).toBe(false);
    await a.release();
    expect(store.record).toMatchObject({ holder: "", durationSeconds: 1 });
    expect(a.isLeader).toBe(false);
    await clock.advance(timings.retryPeriodMs);
    expect(bLeads).toBe(true);
    expect(store.record).toMatchObject({ holder: "r1", transitions: 1 });
    await b.release();
  });

  it("a leader cut off from the API server gives up at the renew deadline, before anyone can take over", async () => {
    const { clock, store, es } = electors(2);
    const [a, b] = es as [LeaderElector, LeaderElector];
    await Promise.all([a.campaign(), clock.advance(100)]);
    let lostAt = -1;
    let takenAt = -1;
    void a.lost.then(() => (lostAt = clock.now().getTime() - T0.getTime()));
    void b.campaign().then(() => (takenAt = clock.now().getTime() - T0.getTime()));
    await clock.advance(5_000);
    const cutAt = clock.now().getTime() - T0.getTime();
    store.down.add("r0");
    await clock.advance(25_000);
    expect(a.isLeader).toBe(false);
    expect(b.isLeader).toBe(true);
    expect(lostAt).toBeGreaterThan(cutAt);
    // a stops within renewDeadline (+ one retry) of its last renewal; b only after the Lease duration.
    expect(lostAt - cutAt).toBeLessThanOrEqual(timings.renewDeadlineMs + timings.retryPeriodMs);
    expect(takenAt).toBeGreaterThan(lostAt);
    expect(takenAt - cutAt).toBeGreaterThanOrEqual(timings.leaseDurationMs - timings.retryPeriodMs);
    expect(takenAt - cutAt).toBeLessThanOrEqual(timings.leaseDurationMs + 2 * timings.retryPeriodMs);
    await b.release();
  });

  it("a leader whose Lease another replica now holds stops at its next renewal, without waiting for the deadline", async () => {
    const { clock, store, es } = electors(1);
    const a = es[0]!;
    await Promise.all([a.campaign(), clock.advance(100)]);
    let lost = false;
    void a.lost.then(() => (lost = true));
    store.record = { ...store.record!, holder: "intruder", renewTime: clock.now() };
    store.rv++;
    await clock.advance(timings.retryPeriodMs);
    expect(lost).toBe(true);
    expect(a.isLeader).toBe(false);
    await a.release();
    expect(store.record.holder).toBe("intruder");
  });

  it("renewal failures shorter than the renew deadline keep the leadership", async () => {
    const { clock, store, es } = electors(1);
    const a = es[0]!;
    await Promise.all([a.campaign(), clock.advance(100)]);
    let lost = false;
    void a.lost.then(() => (lost = true));
    store.down.add("r0");
    await clock.advance(timings.renewDeadlineMs - timings.retryPeriodMs - 100);
    store.down.delete("r0");
    await clock.advance(10_000);
    expect(lost).toBe(false);
    expect(a.isLeader).toBe(true);
    await a.release();
  });

  it("release() while an acquire is in flight releases the Lease that acquire wins", async () => {
    const { store, es } = electors(1);
    const a = es[0]!;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const client = store.client("r0");
    const slow = new LeaderElector({
      client: { ...client, create: async (r) => (await gate, client.create(r)) },
      identity: "r0",
      timings,
      clock: new VirtualClock(),
    });
    const campaign = slow.campaign();
    await flush();
    const released = slow.release();
    open();
    await released;
    expect(await campaign).toBe(false);
    expect(store.writes).toEqual(["r0:create:r0", "r0:update:"]);
    expect(store.record?.holder).toBe("");
    expect(slow.isLeader).toBe(false);
    await a.release();
  });

  it("release() by a replica that never led writes nothing and ends its campaign", async () => {
    const { clock, store, es } = electors(2);
    const [a, b] = es as [LeaderElector, LeaderElector];
    await Promise.all([a.campaign(), clock.advance(100)]);
    const campaign = b.campaign();
    await clock.advance(4_000);
    const before = store.writes.filter((w) => w.startsWith("r1")).length;
    await b.release();
    expect(await campaign).toBe(false);
    expect(store.writes.filter((w) => w.startsWith("r1")).length).toBe(before);
    expect(store.record?.holder).toBe("r0");
    await a.release();
  });
});

/** An election the test drives by hand. */
class ManualElection implements Election {
  readonly identity = "me";
  isLeader = false;
  holder = "other";
  released: string[] = [];
  private win!: (v: boolean) => void;
  private lose!: () => void;
  readonly lost = new Promise<void>((r) => (this.lose = r));
  campaign = () => new Promise<boolean>((r) => (this.win = r));
  grant() {
    this.isLeader = true;
    this.holder = "me";
    this.win(true);
  }
  revoke() {
    this.isLeader = false;
    this.lose();
  }
  release = async () => {
    this.released.push(`released after ${log.length} reconciles`);
    this.win?.(false);
  };
}
let log: string[] = [];

describe("Manager with leader election", () => {
  const source: InformerSource = {
    informer: () => {
      throw new Error("no informers in this test");
    },
    probe: async () => "ok",
  };
  const spec = (name: string, needsLeader?: boolean) => ({
    name,
    workers: 1,
    resyncSeconds: 3600,
    backoff: { baseDelayMs: 5, maxDelayMs: 20 },
    informers: [],
    resyncKeys: () => [`${name}-resync`],
    reconcile: async (key: string) => {
      log.push(key);
      await new Promise((r) => setTimeout(r, 20));
      return {};
    },
    ...(needsLeader === undefined ? {} : { needsLeader }),
  });

  it("runs leader controllers only after the Lease is held, others at once; stops on loss; releases after draining", async () => {
    log = [];
    const election = new ManualElection();
    const metrics = createMetrics();
    let lostCalls = 0;
    const manager = new Manager({
      source,
      namespace: "ns",
      logger: createLogger({ level: "silent" }),
      metrics,
      election,
      onLeadershipLost: () => lostCalls++,
    });
    const runs = manager.add(spec("runs"));
    const replies = manager.add(spec("replies", false));
    await manager.start();
    runs.enqueue("run-a");
    replies.enqueue("reply-a");
    await new Promise((r) => setTimeout(r, 100));
    expect(log).toEqual(["reply-a"]);
    expect(runs.active).toBe(false);
    expect(manager.readinessDetail()).toMatchObject({ identity: "me", leader: "other", leading: false });
    expect((await metrics.registry.getSingleMetricAsString("orchestrator_leader")).trim()).toContain(
      'orchestrator_leader{identity="me"} 0',
    );

    election.grant();
    await new Promise((r) => setTimeout(r, 150));
    // The key queued as a follower, plus the resync on takeover.
    expect([...log].sort()).toEqual(["reply-a", "run-a", "runs-resync"]);
    expect(runs.active).toBe(true);
    expect(manager.readinessDetail()).toMatchObject({ leader: "me", leading: true });
    expect(await metrics.registry.getSingleMetricAsString("orchestrator_leader")).toContain('orchestrator_leader{identity="me"} 1');

    election.revoke();
    await new Promise((r) => setTimeout(r, 10));
    expect(lostCalls).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString("orchestrator_leader")).toContain('orchestrator_leader{identity="me"} 0');

    runs.enqueue("run-b");
    const stopping = manager.stop();
    await stopping;
    // The Lease is released only once the worker finished the key it had.
    expect(election.released).toEqual([`released after ${log.length} reconciles`]);
  });

  it("a replica stopped while waiting for the Lease starts no leader controller", async () => {
    log = [];
    const election = new ManualElection();
    const manager = new Manager({ source, namespace: "ns", logger: createLogger({ level: "silent" }), metrics: createMetrics(), election });
    const runs = manager.add(spec("runs"));
    await manager.start();
    runs.enqueue("run-a");
    await manager.stop();
    await new Promise((r) => setTimeout(r, 50));
    expect(log).toEqual([]);
    expect(runs.active).toBe(false);
    expect(election.released).toHaveLength(1);
  });
});

describe("work a follower still does", () => {
  /** A namespace with one active Play of acme/api on task 1, served from a static cache. */
  const play = {
    apiVersion: "orchestrator.platform/v1",
    kind: "Play",
    metadata: { name: "p1", namespace: "ns", generation: 1 },
    spec: { repositoryUrl: "https://github.com/acme/api.git", docsRepositoryUrl: "https://github.com/acme/docs.git", tasks: [1] },
    status: { phase: "Running", currentTask: 1 },
  };
  const staticSource: InformerSource = {
    informer: <T>(resource: string) =>
      ({
        on: () => undefined,
        list: () => (resource === "plays" ? [play] : []) as unknown as T[],
        get: () => undefined,
        start: async () => undefined,
        stop: async () => undefined,
        healthy: true,
        lastError: undefined,
      }) as SharedInformer<T>,
    probe: async () => "ok",
  };

  it("a webhook delivery about a Play's PR reaches the leader through an annotation; the leader enqueues it directly", async () => {
    const election = new ManualElection();
    const logger = createLogger({ level: "silent" });
    const manager = new Manager({ source: staticSource, namespace: "ns", logger, metrics: createMetrics(), election });
    const annotated: Array<[string, Record<string, string>]> = [];
    const kube = { annotatePlay: async (_ns: string, name: string, a: Record<string, string>) => void annotated.push([name, a]) };
    const plays = new PlayController({
      manager,
      kube: kube as unknown as PlayKube,
      github: {} as never,
      reporter: {} as never,
      config: parseConfig("namespace: ns", {}),
      logger,
      metrics: createMetrics(),
    });
    await manager.start();
    const push = { repository: { full_name: "acme/api" }, ref: "refs/heads/task-1" };
    expect(await plays.enqueueForDelivery("push", push, "digest-1")).toEqual(["ns/p1"]);
    expect(annotated).toEqual([["p1", { [Annotations.wake]: "digest-1" }]]);
    election.grant();
    await new Promise((r) => setTimeout(r, 20));
    expect(await plays.enqueueForDelivery("push", push, "digest-2")).toEqual(["ns/p1"]);
    expect(annotated).toHaveLength(1);
    await manager.stop();
  });

  it("a refused delivery is answered on GitHub by the replica that received it, leader or not", async () => {
    const election = new ManualElection();
    const logger = createLogger({ level: "silent" });
    const manager = new Manager({ source: staticSource, namespace: "ns", logger, metrics: createMetrics(), election });
    const comments: string[] = [];
    const github = {
      listIssueComments: async () => [],
      createComment: async (_repo: unknown, _issue: number, body: string) => (comments.push(body), { id: 1, body }),
    } as unknown as RunReporterGitHub;
    const reporter = new RunReporter({
      manager,
      kube: { annotateRun: async () => undefined },
      github,
      config: parseConfig("namespace: ns", {}),
      logger,
    });
    await manager.start();
    reporter.enqueueRefusal({
      delivery: "d1",
      repo: { owner: "acme", repo: "api" },
      issue: 3,
      login: "mallory",
      reason: "not-allowed",
      detail: "author association NONE",
    });
    await waitUntil(() => comments.length === 1);
    expect(election.isLeader).toBe(false);
    expect(comments[0]).toContain("mallory");
    await manager.stop();
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
}
