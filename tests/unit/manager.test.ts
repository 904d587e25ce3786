import { describe, expect, it } from "vitest";
import { Manager, type ControllerSpec } from "../../src/controller/manager.js";
import type { InformerEvent, InformerSource, SharedInformer } from "../../src/controller/ports.js";
import { stripForCache } from "../../src/kube/informer.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";

/** A cache the test fills by hand; `startError` makes start() report it as lastError. */
class ListedInformer<T> implements SharedInformer<T> {
  healthy = false;
  lastError: string | undefined;
  starts = 0;
  readonly handlers: Partial<Record<InformerEvent, ((o: T) => void)[]>> = {};
  constructor(readonly items: T[] = []) {}
  on(event: InformerEvent, h: (o: T) => void) {
    (this.handlers[event] ??= []).push(h);
  }
  list() {
    return this.items;
  }
  get() {
    return undefined;
  }
  async start() {
    this.starts++;
    this.healthy = true;
  }
  async stop() {
    this.healthy = false;
  }
}

function setup(probe: Awaited<ReturnType<InformerSource["probe"]>> = "ok") {
  const informers: ListedInformer<unknown>[] = [];
  const source: InformerSource = {
    informer: <T>() => {
      const i = new ListedInformer<unknown>();
      informers.push(i);
      return i as unknown as SharedInformer<T>;
    },
    probe: async () => probe,
  };
  const manager = new Manager({ source, namespace: "ns", logger: createLogger({ level: "silent" }), metrics: createMetrics() });
  return { manager, informers };
}

const spec = (over: Partial<ControllerSpec>): ControllerSpec => ({
  name: "test",
  workers: 2,
  resyncSeconds: 3600,
  backoff: { baseDelayMs: 5, maxDelayMs: 20 },
  informers: [],
  reconcile: async () => ({}),
  resyncKeys: () => [],
  ...over,
});

describe("Manager", () => {
  it("shares one informer per resource and selector", () => {
    const { manager, informers } = setup();
    expect(manager.informer("coderuns")).toBe(manager.informer("coderuns"));
    expect(manager.informer("jobs", "a=b")).not.toBe(manager.informer("jobs"));
    expect(informers).toHaveLength(3);
  });

  it("starts informers before workers, reconciles enqueued and resynced keys, retries failures with backoff", async () => {
    const { manager } = setup();
    const inf = manager.informer<string>("plays");
    const seen: string[] = [];
    let failures = 1;
    const reg = manager.add(
      spec({
        informers: [inf as SharedInformer<unknown>],
        resyncKeys: () => ["r1"],
        reconcile: async (key) => {
          expect(inf.healthy).toBe(true);
          seen.push(key);
          if (key === "flaky" && failures-- > 0) throw new Error("transient");
          return {};
        },
      }),
    );
    await manager.start();
    reg.enqueue("a");
    reg.enqueue("flaky");
    manager.resync();
    await expect.poll(() => [...seen].sort(), { timeout: 2000 }).toEqual(["a", "flaky", "flaky", "r1"]);
    expect([manager.isReady(), manager.isAlive()]).toEqual([true, true]);
    await manager.stop();
    expect(manager.isReady()).toBe(false);
  });

  it("keeps a controller whose preflight fails off: its informers never start, the process stays ready", async () => {
    const { manager } = setup("missing");
    const plays = manager.informer("plays");
    const runs = manager.informer("coderuns");
    const reconciled: string[] = [];
    manager.add(spec({ name: "runs", informers: [runs], reconcile: async (k) => (reconciled.push(k), {}) }));
    const off = manager.add(spec({ name: "plays", informers: [plays, runs], preflight: async () => "the Play CRD is not installed" }));
    await manager.start();
    off.enqueue("p1");
    expect([(plays as ListedInformer<unknown>).starts, (runs as ListedInformer<unknown>).starts]).toEqual([0, 1]);
    expect(manager.isReady()).toBe(true);
    expect(manager.readinessDetail()).toMatchObject({ "controller:plays": "disabled: the Play CRD is not installed" });
    expect(off.disabled).toMatch(/CRD/);
    await manager.stop();
  });
});

describe("stripForCache", () => {
  it.each([
    [
      "managedFields and last-applied on any object",
      {
        kind: "CodeRun",
        metadata: { name: "a", managedFields: [{}], annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", keep: "1" } },
      },
      { kind: "CodeRun", metadata: { name: "a", annotations: { keep: "1" } } },
    ],
    [
      "a Pod's spec",
      { kind: "Pod", metadata: { name: "p" }, spec: { containers: [] }, status: { phase: "Running" } },
      { kind: "Pod", metadata: { name: "p" }, status: { phase: "Running" } },
    ],
    [
      "a Job's spec",
      { kind: "Job", metadata: { name: "j" }, spec: { backoffLimit: 0, template: { spec: {} } }, status: { active: 1 } },
      { kind: "Job", metadata: { name: "j" }, status: { active: 1 } },
    ],
    [
      "a claim's spec and status (its annotations stay)",
      {
        kind: "PersistentVolumeClaim",
        metadata: { name: "c", annotations: { repo: "acme/api" } },
        spec: { accessModes: ["ReadWriteOnce"] },
        status: { phase: "Bound" },
      },
      { kind: "PersistentVolumeClaim", metadata: { name: "c", annotations: { repo: "acme/api" } } },
    ],
    [
      "a Secret's values (keys stay)",
      { kind: "Secret", metadata: { name: "s" }, data: { token: "Z2hw" }, stringData: { extra: "x" } },
      { kind: "Secret", metadata: { name: "s" }, data: { token: "", extra: "" } },
    ],
  ])("drops %s", (_what, input, expected) => {
    expect(stripForCache(structuredClone(input) as never)).toEqual(expected);
  });
});
