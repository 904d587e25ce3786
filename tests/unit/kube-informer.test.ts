import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ResilientInformer, type InformerCore } from "../../src/kube/informer.js";

/**
 * client-node's informer as the wrapper sees it, scripted: each start() runs the next step.
 * "ok" lists and connects; an Error rejects start(), as client-node does when authentication
 * (an exec credential plugin, a token file) or an event handler throws.
 */
function scriptedInformer(steps: Array<"ok" | Error>) {
  const handlers: Record<string, Array<(arg?: unknown) => void>> = {};
  const emit = (verb: string, arg?: unknown) => (handlers[verb] ?? []).forEach((h) => h(arg));
  let starts = 0;
  const inner = {
    on: (verb: string, cb: (arg?: unknown) => void) => void (handlers[verb] ??= []).push(cb),
    off: () => undefined,
    start: async () => {
      const step = steps[Math.min(starts++, steps.length - 1)];
      if (step instanceof Error) throw step;
      emit("connect");
    },
    stop: async () => undefined,
    list: () => [],
    get: () => undefined,
  } as unknown as InformerCore<KubernetesObject>;
  return { inner, emit, starts: () => starts };
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on("unhandledRejection", onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});

describe("ResilientInformer", () => {
  it("counts a restart whose start() rejects as one more failure and keeps restarting (no unhandled rejection)", async () => {
    const s = scriptedInformer(["ok", new Error("exec plugin: token expired"), "ok"]);
    const informer = new ResilientInformer(s.inner, "/api/v1/namespaces/ns/pods", pino({ level: "silent" }));
    await informer.start();
    expect(informer.healthy).toBe(true);

    s.emit("error", new Error("watch closed"));
    expect(informer.healthy).toBe(false);
    // 500 ms: restart, rejected; then 1 s: restart, connected.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(s.starts()).toBe(3);
    expect(unhandled).toEqual([]);
    expect(informer.healthy).toBe(true);
    await informer.stop();
  });

  it("retryNow ends a long backoff at once (an execution cluster answers again)", async () => {
    const down = new Error("connect ECONNREFUSED");
    const s = scriptedInformer(["ok", down, down, down, down, down, "ok"]);
    const informer = new ResilientInformer(s.inner, "/api/v1/namespaces/ns/jobs", pino({ level: "silent" }));
    await informer.start();
    s.emit("error", down);
    // Five failed restarts: 0.5 + 1 + 2 + 4 + 8 s of backoff, the next one 16 s away.
    const tick = () => new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 5; i++) {
      informer.retryNow();
      await tick();
    }
    expect(s.starts()).toBe(1 + 5);
    expect(informer.healthy).toBe(false);
    informer.retryNow();
    await tick();
    expect([s.starts(), informer.healthy]).toEqual([7, true]);
    await informer.stop();
  });

  it("retries the first start when it rejects, until it succeeds", async () => {
    const s = scriptedInformer([new Error("exec plugin failed"), "ok"]);
    const informer = new ResilientInformer(s.inner, "/api/v1/namespaces/ns/pods", pino({ level: "silent" }));
    await informer.start();
    expect([s.starts(), informer.healthy]).toEqual([2, true]);
    await informer.stop();
  });
});
