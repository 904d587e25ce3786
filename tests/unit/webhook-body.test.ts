/**
 * What an unauthenticated sender can make the webhook intake hold: bodies are read through the
 * signature check, kept only when the event's payload is needed, and capped in number and bytes
 * while their signature is unknown (src/webhook/body.ts).
 */
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { UnverifiedBudget } from "../../src/webhook/body.js";
import {
  DEFAULT_CONFIG_YAML,
  buildTestApp,
  commentPayload,
  counterValue,
  deliver,
  signedDelivery,
  testConfig,
  type TestApp,
} from "../support/webhook-fixtures.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const FORGED = "sha256=" + "0".repeat(64);
const MiB = 1024 * 1024;

function headers(event: string, length: number, signature = FORGED): Record<string, string> {
  return {
    "content-type": "application/json",
    "content-length": String(length),
    "x-github-event": event,
    "x-github-delivery": crypto.randomUUID(),
    "x-hub-signature-256": signature,
  };
}

/** `bytes` of body produced lazily from one reused chunk, so the sender itself holds nothing. */
function lazyBody(bytes: number): Readable {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  return Readable.from(
    (function* () {
      for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    })(),
  );
}

/**
 * The largest rise of `arrayBuffers` (where Buffers live) while `work` runs: above the lowest value
 * seen before it, so garbage of earlier tests collected meanwhile does not hide a rise.
 */
async function peakBufferGrowth<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let low = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sample = () => {
    const now = process.memoryUsage().arrayBuffers;
    low = Math.min(low, now);
    peak = Math.max(peak, now - low);
  };
  const timer = setInterval(sample, 5);
  try {
    const result = await work();
    sample();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

describe("UnverifiedBudget", () => {
  it("caps bodies and bytes, grows a lease while room is left and releases it once", () => {
    const b = new UnverifiedBudget(2, 100);
    const a = b.tryAcquire(60)!;
    expect(b.tryAcquire(50)).toBeUndefined(); // bytes
    const c = b.tryAcquire(0)!;
    expect(b.tryAcquire(0)).toBeUndefined(); // bodies
    expect(c.grow(40)).toBe(true);
    expect(c.grow(1)).toBe(false);
    a.release();
    a.release();
    expect(b.usage).toEqual({ bodies: 1, bytes: 40 });
    c.release();
    expect(b.usage).toEqual({ bodies: 0, bytes: 0 });
  });
});

describe("POST /webhooks/github: bodies before their signature is known", () => {
  it("keeps memory bounded: 32 parallel 20 MiB forged deliveries hold at most webhook.maxUnverifiedBytes, the rest get 503 + Retry-After", async () => {
    t = buildTestApp({ config: testConfig(DEFAULT_CONFIG_YAML), logLevel: "silent" });
    const size = 20 * MiB;
    const { result, peak } = await peakBufferGrowth(() =>
      Promise.all(
        Array.from({ length: 32 }, () =>
          t!.app.inject({ method: "POST", url: "/webhooks/github", headers: headers("issue_comment", size), payload: lazyBody(size) }),
        ),
      ),
    );
    console.log(`[webhook-body] peak buffer growth for 32 × 20 MiB forged deliveries: ${(peak / MiB).toFixed(0)} MiB`);
    const codes = result.map((r) => r.statusCode);
    // 64 MiB of unverified bytes = three 20 MiB bodies at once; each of them is then refused (forged).
    expect(codes.filter((c) => c === 401).length).toBeGreaterThanOrEqual(3);
    expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
    expect(codes.every((c) => c === 401 || c === 503)).toBe(true);
    const refused = result.find((r) => r.statusCode === 503)!;
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.json().detail).toMatch(/Redeliver it from the GitHub webhook settings.*webhook\.maxUnverifiedBodies/);
    expect(await counterValue(t.metrics, "orchestrator_webhook_deliveries_total", { event: "unverified", outcome: "overloaded" })).toBe(
      codes.filter((c) => c === 503).length,
    );
    // Buffered in full, the 32 bodies would take 640 MiB.
    expect(peak).toBeLessThan(120 * MiB);
  }, 60_000);

  it("does not keep the body of an event no rule wants: it is hashed while streaming, then dropped", async () => {
    // Room for one kept body of the largest size, not two.
    t = buildTestApp({
      config: testConfig(DEFAULT_CONFIG_YAML.replace("\nwebhook:\n", "\nwebhook:\n  maxUnverifiedBytes: 26214400\n")),
      logLevel: "silent",
    });
    const size = 20 * MiB;
    const send = (event: string) =>
      t!.app.inject({ method: "POST", url: "/webhooks/github", headers: headers(event, size), payload: lazyBody(size) });
    const result = await Promise.all([...Array.from({ length: 8 }, () => send("push")), send("issue_comment")]);
    // Push bodies reserve no bytes, so all nine are read (and refused: forged).
    expect(result.map((r) => r.statusCode)).toEqual(Array(9).fill(401));
    // Two bodies whose payload is needed do not fit at once.
    const both = await Promise.all([send("issue_comment"), send("issue_comment")]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([401, 503]);
  }, 60_000);

  it("answers a request without a signature header without reading its body", async () => {
    t = buildTestApp({ logLevel: "silent" });
    const body = new PassThrough(); // never ends: reading it would hang
    const { "x-hub-signature-256": _, ...unsigned } = headers("issue_comment", 10 * MiB);
    const res = await t.app.inject({ method: "POST", url: "/webhooks/github", headers: unsigned, payload: body });
    expect(res.statusCode).toBe(401);
    expect(res.headers.connection).toBe("close");
  });

  it("refuses deliveries past webhook.maxUnverifiedBodies while bodies trickle in, answers a stalled one 408, and admits again after", async () => {
    t = buildTestApp({
      config: testConfig(DEFAULT_CONFIG_YAML.replace("\nwebhook:\n", "\nwebhook:\n  maxUnverifiedBodies: 2\n  bodyTimeoutMs: 300\n")),
      logLevel: "silent",
    });
    const slow = [new PassThrough(), new PassThrough()];
    const held = slow.map((s) =>
      t!.app.inject({ method: "POST", url: "/webhooks/github", headers: headers("issue_comment", 100), payload: s }),
    );
    slow.forEach((s) => s.write("{"));
    await new Promise((r) => setTimeout(r, 50));
    const third = await t.app.inject({ method: "POST", url: "/webhooks/github", headers: headers("issue_comment", 100), payload: "{}" });
    expect(third.statusCode).toBe(503);
    const stalled = await Promise.all(held);
    expect(stalled.map((r) => r.statusCode)).toEqual([408, 408]);
    expect(stalled[0]!.json().detail).toContain("webhook.bodyTimeoutMs");
    const d = await signedDelivery("issue_comment", commentPayload("/agent run after the storm"));
    expect((await deliver(t.app, d)).statusCode).toBe(201);
  });
});
