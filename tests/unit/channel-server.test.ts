/** The channel server's presence route: how the channel learns that the agent container is gone. */
import http from "node:http";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startChannelServer, type ChannelServer } from "../../src/runner/channel-server.js";

let server: ChannelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** GET /attach; resolves with the status and the request, whose socket stays open on 200. */
function attach(url: string): Promise<{ status: number; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/attach`, { agent: false }, (res) => {
      if (res.statusCode !== 200) res.resume();
      resolve({ status: res.statusCode ?? 0, req });
    });
    req.on("error", reject);
  });
}

const settledWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe("channel server: the agent's presence", () => {
  it("holds the first attach open, refuses a second one, and tells the channel when the first closes", async () => {
    server = await startChannelServer({ port: 0, handlers: {}, log: pino({ level: "silent" }) });
    expect(server.agentAttached()).toBe(false);
    const first = await attach(server.url);
    expect(first.status).toBe(200);
    expect(server.agentAttached()).toBe(true);
    // Anything else in the agent container (Claude Code is the runner's child) cannot hold the channel up.
    const second = await attach(server.url);
    expect(second.status).toBe(409);
    second.req.destroy();
    expect(await settledWithin(server.agentGone, 200)).toBe(false);
    first.req.destroy();
    expect(await settledWithin(server.agentGone, 2000)).toBe(true);
  });

  it("is not gone before an agent ever attached", async () => {
    server = await startChannelServer({ port: 0, handlers: {}, log: pino({ level: "silent" }) });
    expect(await settledWithin(server.agentGone, 200)).toBe(false);
  });
});
