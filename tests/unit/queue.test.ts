import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../src/controller/queue.js";

describe("WorkQueue", () => {
  it("deduplicates keys waiting in the queue", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
  });
  it("never hands out a key being processed; re-queues it when done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const first = await q.get();
    q.add("a");
    expect(q.length).toBe(0);
    q.done(first?.key ?? "");
    expect(q.length).toBe(1);
    expect((await q.get())?.key).toBe("a");
  });
  it("backs off exponentially per key and forgets on success", () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect([q.addRateLimited("a"), q.addRateLimited("a"), q.addRateLimited("a"), q.addRateLimited("a"), q.addRateLimited("a")]).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    q.forget("a");
    expect(q.addRateLimited("a")).toBe(100);
    q.shutDown();
  });
  it("honours addAfter with a fake clock, the earliest pending add winning", () => {
    let t = 0;
    const timers: Array<{ at: number; fn: () => void }> = [];
    const q = new WorkQueue({
      clock: {
        now: () => t,
        setTimeout: (fn, ms) => {
          timers.push({ at: t + ms, fn });
          return timers.length;
        },
        clearTimeout: () => undefined,
      },
    });
    q.addAfter("a", 500);
    q.addAfter("a", 900);
    expect(timers.length).toBe(1);
    t = 500;
    timers[0]?.fn();
    expect(q.length).toBe(1);
  });
  it("wakes waiting workers and ends them on shutdown", async () => {
    const q = new WorkQueue();
    const w = q.get();
    q.add("x");
    expect((await w)?.key).toBe("x");
    const w2 = q.get();
    q.shutDown();
    expect(await w2).toBeUndefined();
  });
});
