import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { makeClients } from "../../src/kube/clients.js";
import { createControllerKube } from "../../src/kube/controller-kube.js";
import { createPlayKube } from "../../src/kube/play-kube.js";
import { TokenBucket } from "../../src/kube/rate-limit.js";

/** A kubeconfig whose server refuses connections at once: each call fails fast after its token. */
function unreachableClients() {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "http://127.0.0.1:9", skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return makeClients(kc);
}

describe("the controller process's client-side rate limit", () => {
  it("is one limit shared by the run controller's and the Play controller's adapters", async () => {
    const clients = unreachableClients();
    const limiter = new TokenBucket(0.5, 1); // one request per 2 s, burst 1
    const runs = createControllerKube(clients, limiter);
    const plays = createPlayKube(clients, limiter);
    const started = performance.now();
    await runs.getJob("ns", "job").catch(() => undefined); // takes the only token
    await plays.getPlay("ns", "play").catch(() => undefined);
    // The Play adapter waited for the next token, 2 s after the first was taken, however slow the
    // first call was: together they stay at 0.5/s.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
  });

  it("spaces requests at qps once the burst is spent", async () => {
    const limiter = new TokenBucket(20, 2);
    const started = performance.now();
    for (let i = 0; i < 6; i++) await limiter.acquire();
    // 2 from the burst, then 4 at 20/s: at least 200 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(180);
  });
});
