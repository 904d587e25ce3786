import { afterEach, describe, expect, it } from "vitest";
import type { Play } from "../../src/api/play.js";
import { RunStoreError, type PlayStore } from "../../src/intake/store.js";
import { authHeader, buildTestApp, type TestApp } from "../support/webhook-fixtures.js";

/** An in-memory PlayStore: the routes' only dependency besides the app. */
function memoryPlays(): PlayStore & { items: Map<string, Play> } {
  const items = new Map<string, Play>();
  const get = async (name: string) => {
    const p = items.get(name);
    if (!p) throw new RunStoreError("NotFound", `Play ${name} not found`);
    return structuredClone(p);
  };
  return {
    namespace: "orchestrator",
    items,
    async create(play) {
      const name = play.metadata.name!;
      if (items.has(name)) throw new RunStoreError("AlreadyExists", `Play ${name} exists`);
      items.set(name, structuredClone({ ...play, metadata: { ...play.metadata, creationTimestamp: `2025-06-01T12:00:0${items.size}Z` } }));
      return get(name);
    },
    get,
    list: async () => [...items.values()].map((p) => structuredClone(p)),
    async patchSpec(name, patch) {
      const p = await get(name);
      items.set(name, { ...p, spec: { ...p.spec, ...patch } });
      return get(name);
    },
  };
}

const request = {
  name: "play-one",
  service: "api",
  repository_url: "https://github.com/acme/api",
  docs_repository_url: "https://github.com/acme/docs",
  tasks: [1, 2],
};

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

describe("Play routes", () => {
  it.each([
    ["POST", "/api/v1/plays"],
    ["GET", "/api/v1/plays"],
    ["GET", "/api/v1/plays/x"],
    ["POST", "/api/v1/plays/x/cancel"],
  ] as const)("%s %s answers 503 naming the setting when Plays are disabled", async (method, url) => {
    t = buildTestApp();
    const res = await t.app.inject({ method, url, headers: authHeader, ...(method === "POST" ? { payload: request } : {}) });
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toContain("play.enabled");
  });

  it("starts, lists, gets and cancels a Play; a finished one cannot be cancelled", async () => {
    const plays = memoryPlays();
    t = buildTestApp({ plays });
    const created = await t.app.inject({ method: "POST", url: "/api/v1/plays", headers: authHeader, payload: request });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers.location).toBe("/api/v1/plays/play-one");
    const invalid = await t.app.inject({ method: "POST", url: "/api/v1/plays", headers: authHeader, payload: { ...request, tasks: [] } });
    expect(invalid.statusCode).toBe(422);
    const list = await t.app.inject({ method: "GET", url: "/api/v1/plays?service=api", headers: authHeader });
    expect(list.json().data.items.map((p: Play) => p.metadata.name)).toEqual(["play-one"]);
    const other = await t.app.inject({ method: "GET", url: "/api/v1/plays?service=web", headers: authHeader });
    expect(other.json().data.items).toEqual([]);
    const got = await t.app.inject({ method: "GET", url: "/api/v1/plays/play-one", headers: authHeader });
    expect(got.json().data.spec.tasks).toEqual([1, 2]);
    expect((await t.app.inject({ method: "GET", url: "/api/v1/plays/nope", headers: authHeader })).statusCode).toBe(404);
    const cancel = await t.app.inject({ method: "POST", url: "/api/v1/plays/play-one/cancel", headers: authHeader });
    expect(cancel.statusCode).toBe(202);
    expect(plays.items.get("play-one")?.spec.cancel).toBe(true);
    plays.items.get("play-one")!.status = { phase: "Succeeded" };
    const again = await t.app.inject({ method: "POST", url: "/api/v1/plays/play-one/cancel", headers: authHeader });
    expect(again.statusCode).toBe(409);
  });
});
