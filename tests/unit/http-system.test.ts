import { Validator } from "@seriousme/openapi-schema-validator";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createAuthenticator, errorProblem, type TokenReviewer } from "../../src/http/app.js";
import { BodyError } from "../../src/webhook/body.js";
import { codeRequestSchema, docsRequestSchema } from "../../src/http/schemas.js";
import { API_TOKEN, authHeader, buildTestApp, testConfig, type TestApp } from "../support/webhook-fixtures.js";

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

describe("/health", () => {
  it("answers the upstream body without credentials", async () => {
    t = buildTestApp();
    const res = await t.app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "healthy", version: "1.2.3-test", timestamp: "2025-06-01T12:00:00.000Z" });
  });

  it("stays healthy while the Kubernetes API is down (liveness must not restart replicas for it)", async () => {
    t = buildTestApp({ readiness: async () => ({ ready: false, checks: { apiServer: "connect ECONNREFUSED" } }) });
    t.runs.failWith("Unavailable");
    expect((await t.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
  });
});

describe("/ready", () => {
  it("answers 200 when ready, 503 when not, without credentials and without details", async () => {
    t = buildTestApp();
    const ok = await t.app.inject({ method: "GET", url: "/ready" });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: "ready" });
    await t.close();
    t = buildTestApp({
      readiness: async () => ({
        ready: false,
        checks: { informers: false, apiServer: "connect ECONNREFUSED 10.96.0.1:443\n    at TCPConnectWrap.afterConnect" },
      }),
    });
    const not = await t.app.inject({ method: "GET", url: "/ready" });
    expect(not.statusCode).toBe(503);
    expect(not.body).toBe(JSON.stringify({ status: "not ready" }));
    // The details are for authenticated callers only.
    expect((await t.app.inject({ method: "GET", url: "/api/v1/readiness" })).statusCode).toBe(401);
    const detail = await t.app.inject({ method: "GET", url: "/api/v1/readiness", headers: authHeader });
    expect(detail.statusCode).toBe(503);
    expect(detail.json()).toEqual({
      status: "not ready",
      checks: { informers: false, apiServer: "connect ECONNREFUSED 10.96.0.1:443\n    at TCPConnectWrap.afterConnect" },
    });
  });

  it("answers 503 when the readiness callback throws", async () => {
    t = buildTestApp({
      readiness: async () => {
        throw new Error("boom");
      },
    });
    const res = await t.app.inject({ method: "GET", url: "/ready" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: "not ready" });
    expect((await t.app.inject({ method: "GET", url: "/api/v1/readiness", headers: authHeader })).json()).toEqual({
      status: "not ready",
      checks: { readiness: "boom" },
    });
  });
});

describe("/metrics", () => {
  it("serves Prometheus text without credentials, with HTTP and webhook metrics", async () => {
    t = buildTestApp();
    await t.app.inject({ method: "GET", url: "/health" });
    await t.app.inject({ method: "GET", url: "/api/v1/runs" });
    await t.app.inject({ method: "POST", url: "/webhooks/github", payload: "{}", headers: { "content-type": "application/json" } });
    const res = await t.app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('orchestrator_http_requests_total{method="GET",route="/health",status="200"} 1');
    expect(res.body).toContain('orchestrator_http_requests_total{method="GET",route="/api/v1/runs",status="401"} 1');
    expect(res.body).toContain("orchestrator_http_request_duration_seconds_bucket");
    expect(res.body).toContain('orchestrator_webhook_deliveries_total{event="unverified",outcome="unauthorized"} 1');
    // The controller's metrics share the registry.
    expect(res.body).toContain("# HELP orchestrator_workqueue_depth");
  });

  it("labels unmatched routes as one series (bounded cardinality)", async () => {
    t = buildTestApp();
    for (const p of ["/a", "/b", "/c"]) await t.app.inject({ method: "GET", url: p });
    const res = await t.app.inject({ method: "GET", url: "/metrics" });
    expect(res.body).toContain('orchestrator_http_requests_total{method="GET",route="unmatched",status="404"} 3');
  });
});

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document containing the request schemas used for validation", async () => {
    t = buildTestApp();
    const res = await t.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe("3.1.0");
    const strip = (s: Record<string, unknown>) => {
      const { $schema: _, ...rest } = s;
      return rest;
    };
    expect(doc.components.schemas.CodeRequest).toEqual(
      strip(z.toJSONSchema(codeRequestSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>),
    );
    expect(doc.components.schemas.DocsRequest).toEqual(
      strip(z.toJSONSchema(docsRequestSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>),
    );
    expect(doc.components.schemas.CodeRequest.required).toEqual(
      expect.arrayContaining(["task_id", "service", "repository_url", "docs_repository_url"]),
    );
    const logParams = doc.paths["/api/v1/runs/{kind}/{name}/logs"].get.parameters as { name: string; schema: Record<string, unknown> }[];
    expect(logParams.find((p) => p.name === "container")?.schema).toMatchObject({ enum: ["agent", "channel"] });
    expect(doc.paths["/api/v1/pm/tasks"].post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/CodeRequest",
    });
    for (const p of [
      "/api/v1/pm/docs/generate",
      "/api/v1/runs",
      "/api/v1/runs/{kind}/{name}",
      "/api/v1/runs/{kind}/{name}/cancel",
      "/api/v1/runs/{kind}/{name}/retry",
      "/api/v1/runs/{kind}/{name}/logs",
      "/webhooks/github",
      "/health",
      "/ready",
      "/metrics",
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });

  it("is served without credentials", async () => {
    t = buildTestApp({ config: testConfig(undefined, { ORCHESTRATOR_API_TOKENS: "" }) });
    expect((await t.app.inject({ method: "GET", url: "/openapi.json" })).statusCode).toBe(200);
  });
});

describe("authentication", () => {
  it("accepts any configured token (several for rotation)", async () => {
    t = buildTestApp({ config: testConfig(undefined, { ORCHESTRATOR_API_TOKENS: `first-token,${API_TOKEN}` }) });
    expect((await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer first-token" } })).statusCode).toBe(
      200,
    );
    expect((await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: authHeader })).statusCode).toBe(200);
    expect((await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "bearer first-token" } })).statusCode).toBe(
      200,
    );
  });

  it("disables the API with 503 and an actionable message when no token and no TokenReview are configured", async () => {
    t = buildTestApp({ config: testConfig(undefined, { ORCHESTRATOR_API_TOKENS: "" }) });
    const res = await t.app.inject({ method: "POST", url: "/api/v1/pm/tasks", payload: {}, headers: { authorization: "Bearer anything" } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ success: false, type: "urn:orchestrator:problem:not-configured" });
    expect(res.json().detail).toMatch(/ORCHESTRATOR_API_TOKENS/);
    expect(t.logs()).toMatch(/REST API is disabled/);
    // Health and the webhook are unaffected.
    expect((await t.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
  });

  describe("TokenReview", () => {
    const reviewer = (answers: Record<string, { username: string; groups: string[] } | "down">): TokenReviewer & { calls: number } => {
      const r = {
        calls: 0,
        async review(token: string) {
          r.calls++;
          const a = answers[token];
          if (a === "down") throw new Error("ECONNREFUSED");
          return a ? { authenticated: true, ...a } : { authenticated: false };
        },
      };
      return r;
    };

    it("accepts ServiceAccounts of the controller's namespace by default and records the principal", async () => {
      const rv = reviewer({
        "sa-own": {
          username: "system:serviceaccount:orchestrator:ci",
          groups: ["system:serviceaccounts", "system:serviceaccounts:orchestrator"],
        },
        "sa-other": { username: "system:serviceaccount:other:ci", groups: ["system:serviceaccounts", "system:serviceaccounts:other"] },
      });
      const config = testConfig(undefined, { ORCHESTRATOR_API_TOKENS: "" });
      t = buildTestApp({
        config,
        auth: createAuthenticator({ tokens: [], tokenReview: { reviewer: rv, allow: [], audiences: [], namespace: "orchestrator" } }),
      });
      const ok = await t.app.inject({
        method: "POST",
        url: "/api/v1/pm/tasks",
        payload: { task_id: 1, service: "s", repository_url: "a/b", docs_repository_url: "a/c", github_user: "u" },
        headers: { authorization: "Bearer sa-own" },
      });
      expect(ok.statusCode).toBe(201);
      expect(t.runs.all()[0]!.metadata.annotations?.["orchestrator.platform/requested-by"]).toBe("system:serviceaccount:orchestrator:ci");
      const other = await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer sa-other" } });
      expect(other.statusCode).toBe(403);
      expect(other.json().detail).toMatch(/api.tokenReviewAllow/);
      const bad = await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer forged" } });
      expect(bad.statusCode).toBe(401);
      expect(bad.json().detail).toMatch(/ServiceAccount token/);
      // Positive results are cached.
      const before = rv.calls;
      await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer sa-own" } });
      expect(rv.calls).toBe(before);
    });

    it("remembers rejected tokens and rate-limits TokenReviews of unknown tokens", async () => {
      const rv = reviewer({
        "sa-own": { username: "system:serviceaccount:orchestrator:ci", groups: ["system:serviceaccounts:orchestrator"] },
      });
      let clock = 1_000_000;
      const auth = createAuthenticator({
        tokens: [API_TOKEN],
        tokenReview: {
          reviewer: rv,
          allow: [],
          audiences: ["orchestrator"],
          namespace: "orchestrator",
          reviewsPerSecond: 2,
          reviewBurst: 3,
          now: () => clock,
        },
      });
      // The same random token again and again: one TokenReview, then the cached 401.
      for (let i = 0; i < 10; i++)
        expect(await auth.authenticate("Bearer random-1")).toMatchObject({
          ok: false,
          status: 401,
          message: expect.stringMatching(/--audience orchestrator/),
        });
      expect(rv.calls).toBe(1);
      // New random tokens: the burst is spent, then 429 without a TokenReview.
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => auth.authenticate(`Bearer random-${i + 2}`)));
      expect(results.filter((r) => !r.ok && r.status === 429)).toHaveLength(8);
      expect(rv.calls).toBe(3);
      // Static tokens never wait for the limiter; a second later a real ServiceAccount gets through.
      expect(await auth.authenticate(authHeader.authorization)).toMatchObject({ ok: true });
      clock += 1000;
      expect(await auth.authenticate("Bearer sa-own")).toMatchObject({
        ok: true,
        principal: { name: "system:serviceaccount:orchestrator:ci" },
      });
      // A rejection is forgotten after the negative cache's minute.
      clock += 61_000;
      await auth.authenticate("Bearer random-1");
      expect(rv.calls).toBe(5);
    });

    it("honours an explicit allow list and answers 503 when TokenReview is unreachable", async () => {
      const rv = reviewer({
        "sa-other": { username: "system:serviceaccount:other:ci", groups: ["system:serviceaccounts:other"] },
        down: "down",
      });
      const auth = createAuthenticator({
        tokens: [API_TOKEN],
        tokenReview: { reviewer: rv, allow: ["system:serviceaccounts:other"], audiences: [], namespace: "orchestrator" },
      });
      t = buildTestApp({ auth });
      expect((await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer sa-other" } })).statusCode).toBe(
        200,
      );
      expect((await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: authHeader })).statusCode).toBe(200);
      const down = await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer down" } });
      expect(down.statusCode).toBe(503);
      expect(down.headers["retry-after"]).toBe("5");
    });
  });

  it("never logs the bearer token", async () => {
    t = buildTestApp();
    await t.app.inject({
      method: "POST",
      url: "/api/v1/pm/tasks",
      payload: {
        task_id: 1,
        service: "s",
        repository_url: "a/b",
        docs_repository_url: "a/c",
        github_user: "u",
        env: { SECRET_VALUE: "hunter2-env" },
      },
      headers: authHeader,
    });
    await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer wrong-token-value" } });
    const logs = t.logs();
    expect(logs).toContain("Created CodeRun");
    expect(logs).not.toContain(API_TOKEN);
    expect(logs).not.toContain("wrong-token-value");
    expect(logs).not.toContain("hunter2-env");
  });
});

describe("errorProblem", () => {
  const err = (statusCode: number | undefined, message = "Bad thing") => Object.assign(new Error(message), { statusCode }) as never;
  it.each([
    {
      name: "a body error keeps its problem and Retry-After",
      e: new BodyError(503, "unavailable", "Busy", 5) as never,
      webhook: true,
      want: { problem: "unavailable", status: 503, message: "Busy", retryAfterSeconds: 5 },
    },
    {
      name: "413 on the API names api.maxBodyBytes",
      e: err(413),
      webhook: false,
      want: { problem: "tooLarge", status: 413, message: expect.stringContaining("(api.maxBodyBytes)") },
    },
    {
      name: "413 on the webhook names webhook.maxBodyBytes",
      e: err(413),
      webhook: true,
      want: { problem: "tooLarge", status: 413, message: expect.stringContaining("(webhook.maxBodyBytes)") },
    },
    {
      name: "415 says what to send",
      e: err(415, "Unsupported"),
      webhook: false,
      want: { problem: "unsupportedMediaType", status: 415, message: "Unsupported. Send JSON with Content-Type: application/json." },
    },
    {
      name: "another 4xx is a bad request",
      e: err(400, "Bad JSON"),
      webhook: false,
      want: { problem: "badRequest", status: 400, message: expect.stringMatching(/^Bad JSON\. Send a JSON object/) },
    },
    {
      name: "no status is internal, logged",
      e: err(undefined),
      webhook: false,
      want: { problem: "internal", status: 500, message: "Internal error (request r-1); see the orchestrator logs.", internal: true },
    },
    { name: "a 5xx is internal", e: err(502), webhook: true, want: { problem: "internal", status: 500, internal: true } },
  ])("$name", ({ e, webhook, want }) => {
    expect(errorProblem(e, webhook, "r-1")).toMatchObject(want);
  });
});
