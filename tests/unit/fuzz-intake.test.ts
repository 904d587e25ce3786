/**
 * Property/fuzz tests of the intake: thousands of malformed bodies, headers and signatures
 * against the REST API and the webhook receiver. Invariants: never a 5xx, never a crash, every
 * error is problem+json, and nothing is created (the in-memory store stays empty).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPayload } from "../../src/webhook/signature.js";
import { API_TOKEN, WEBHOOK_SECRET, buildTestApp, commentPayload, type TestApp } from "../support/webhook-fixtures.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

const printable = (maxLength = 40) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const hex = (length: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length });

/** JSON-ish values, including deep nesting, huge numbers and prototype keys. */
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.constantFrom("__proto__", "constructor", "task_id", "service", "action", "comment", "sender"),
      ),
      tie("value"),
      { maxKeys: 5 },
    ),
  ),
})).value;

const validCode = { task_id: 1, service: "svc", repository_url: "a/b", docs_repository_url: "a/c", github_user: "u" };

const notString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.constant({}),
);
/** Values that are invalid for each CodeRequest field. */
const invalidFor: Record<string, fc.Arbitrary<unknown>> = {
  task_id: fc.oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), fc.string(), fc.constant(null), fc.constant(2 ** 40)),
  service: fc.oneof(notString, fc.constantFrom("", "UPPER", "under_score", "-lead", "trail-", "a".repeat(54), "sp ace")),
  repository_url: fc.oneof(notString, fc.constantFrom("", "has space", "tab\there")),
  docs_repository_url: fc.oneof(notString, fc.constantFrom("", "x y")),
  github_user: fc.oneof(notString, fc.constantFrom("", "two words")),
  github_app: fc.string({ minLength: 1, maxLength: 10 }).filter((v) => !/\s/.test(v)), // both identities set
  env: fc.oneof(fc.constant({ "bad key": "v" }), fc.constant({ "1X": "v" }), fc.constant({ OK: 1 }), fc.constant([]), fc.string()),
  env_from_secrets: fc.oneof(
    fc.constant([{}]),
    fc.constant([{ name: "A" }]),
    fc.constant([{ name: "1", secretName: "s", secretKey: "k" }]),
    fc.string(),
  ),
  context_version: fc.oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), fc.string()),
  working_directory: fc.oneof(notString, fc.constantFrom("../x", "/abs", "a/../../b", "")),
  unknown_field: fc.anything().filter((v) => v !== undefined), // JSON.stringify drops undefined
};

/** A CodeRequest with one or more fields broken, so it can never be valid. */
const brokenCodeRequest = fc
  .uniqueArray(fc.constantFrom(...Object.keys(invalidFor)), { minLength: 1, maxLength: 3 })
  .chain((fields) => fc.tuple(...fields.map((f) => invalidFor[f]!.map((v) => [f, v] as const))))
  .map((pairs) => ({ ...validCode, ...Object.fromEntries(pairs) }) as Record<string, unknown>);

const body = fc.oneof(
  fc.constant(undefined),
  printable(200),
  fc.string({ maxLength: 200 }),
  jsonValue.map((v) => JSON.stringify(v) ?? "null"),
  brokenCodeRequest.map((b) => JSON.stringify(b)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constantFrom(
    "{",
    "[",
    '{"task_id":',
    "\u0000",
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"x":1}}}',
    "1e999999",
    '"' + "\\u".repeat(5) + '"',
  ),
);

const contentType = fc.option(
  fc.constantFrom(
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/json; charset=utf-16",
    "*/*",
    ";;;",
    "application/problem+json",
  ),
  { nil: undefined },
);

const authorization = fc.option(
  fc.oneof(
    fc.constant(`Bearer ${API_TOKEN}`),
    printable(),
    printable().map((s) => `Bearer ${s}`),
    fc.constantFrom("Bearer", "Bearer ", "Basic dTpw", `bearer  ${API_TOKEN}x`),
  ),
  { nil: undefined },
);

const apiRequest = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
  path: fc.oneof(
    fc.constantFrom(
      "/api/v1/pm/tasks",
      "/api/v1/pm/docs/generate",
      "/api/v1/runs",
      "/api/v1/runs/coderun/x/cancel",
      "/api/v1/runs/docsrun/y/retry",
      "/api/v1/runs/coderun/z/logs",
      "/api/v1/runs/cr/a",
      "/api/v1/runs/x/y/z/w",
    ),
    fc.tuple(fc.constantFrom("/api/v1/runs/", "/api/v1/pm/", "/"), fc.webSegment()).map(([a, b]) => a + b),
  ),
  query: fc.option(
    fc.dictionary(
      fc.constantFrom("kind", "service", "task", "phase", "follow", "tail_lines", "container", "x"),
      fc.oneof(printable(20), fc.webSegment()),
    ),
    { nil: undefined },
  ),
  authorization,
  contentType,
  idempotencyKey: fc.option(printable(300), { nil: undefined }),
  body,
});

let t: TestApp;
/** One app per describe, so a failure in one property cannot cascade into the others. */
function useFuzzApp() {
  beforeAll(() => {
    t = buildTestApp({ logLevel: "silent" });
  });
  afterAll(async () => {
    await t.close();
  });
}

function expectNoServerError(res: { statusCode: number; headers: Record<string, unknown>; body: string }, what: string) {
  if (res.statusCode >= 500) throw new Error(`${what} answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
  if (
    res.statusCode >= 400 &&
    res.headers["content-type"] !== undefined &&
    !String(res.headers["content-type"]).startsWith("application/problem+json")
  ) {
    throw new Error(`${what} answered ${res.statusCode} with ${String(res.headers["content-type"])}`);
  }
}

describe("fuzz: REST API", () => {
  useFuzzApp();
  it("never answers 5xx and never creates a run for malformed requests", async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(apiRequest, async (r) => {
        const headers: Record<string, string> = {};
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        if (r.contentType !== undefined) headers["content-type"] = r.contentType;
        if (r.idempotencyKey !== undefined) headers["idempotency-key"] = r.idempotencyKey;
        const res = await t.app.inject({
          method: r.method as "GET",
          url: r.path,
          query: r.query,
          headers,
          ...(r.body !== undefined && r.method !== "GET" && r.method !== "HEAD" ? { payload: r.body } : {}),
        });
        expectNoServerError(res, `${r.method} ${r.path}`);
        seen.add(res.statusCode);
      }),
      { numRuns: RUNS },
    );
    expect(t.runs.all()).toHaveLength(0);
    expect(t.runs.createCalls).toBe(0);
    for (const status of [400, 401, 404, 415]) expect(seen).toContain(status);
  });

  it("authenticated submissions with broken bodies get 4xx with field errors and create nothing", async () => {
    const seen = new Set<number>();
    const submission = fc.record({
      path: fc.constantFrom("/api/v1/pm/tasks", "/api/v1/pm/docs/generate", "/api/v1/runs/coderun/a/retry"),
      contentType: fc.constantFrom("application/json", "application/json; charset=utf-8"),
      idempotencyKey: fc.option(printable(300), { nil: undefined }),
      body: fc.oneof(
        brokenCodeRequest.map((b) => JSON.stringify(b)),
        jsonValue.map((v) => JSON.stringify(v) ?? "null"),
        fc.string({ maxLength: 100 }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(submission, async (r) => {
        const headers: Record<string, string> = { authorization: `Bearer ${API_TOKEN}`, "content-type": r.contentType };
        if (r.idempotencyKey !== undefined) headers["idempotency-key"] = r.idempotencyKey;
        const res = await t.app.inject({ method: "POST", url: r.path, headers, payload: r.body });
        expectNoServerError(res, `POST ${r.path}`);
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        if (res.statusCode === 422) expect(res.json().errors.length).toBeGreaterThan(0);
        seen.add(res.statusCode);
      }),
      { numRuns: RUNS },
    );
    expect(t.runs.all()).toHaveLength(0);
    expect(t.runs.createCalls).toBe(0);
    for (const status of [400, 404, 422]) expect(seen).toContain(status);
  });
});

const signature = (payload: string | Buffer) =>
  fc.oneof(
    fc.constant(undefined),
    printable(80),
    hex(64).map((h) => `sha256=${h}`),
    hex(40).map((h) => `sha1=${h}`),
    fc.constant(signPayload("wrong-secret", payload)),
    fc.constant(signPayload(WEBHOOK_SECRET, Buffer.concat([Buffer.from(payload), Buffer.from(" ")]))),
    fc.constant(signPayload(WEBHOOK_SECRET, payload).toUpperCase()),
  );

describe("fuzz: webhook receiver", () => {
  useFuzzApp();
  it("rejects unsigned, forged and garbage deliveries without 5xx and creates nothing", async () => {
    const delivery = fc.record({
      body,
      contentType,
      event: fc.option(fc.oneof(fc.constantFrom("issue_comment", "issues", "ping", "push"), printable(30)), { nil: undefined }),
      id: fc.option(printable(60), { nil: undefined }),
      url: fc.constantFrom("/webhooks/github", "/webhook"),
    });
    await fc.assert(
      fc.asyncProperty(
        delivery.chain((d) => fc.record({ d: fc.constant(d), sig: signature(d.body ?? "") })),
        async ({ d, sig }) => {
          const headers: Record<string, string> = {};
          if (d.contentType !== undefined) headers["content-type"] = d.contentType;
          if (d.event !== undefined) headers["x-github-event"] = d.event;
          if (d.id !== undefined) headers["x-github-delivery"] = d.id;
          if (sig !== undefined) headers["x-hub-signature-256"] = sig;
          const res = await t.app.inject({ method: "POST", url: d.url, headers, ...(d.body !== undefined ? { payload: d.body } : {}) });
          expectNoServerError(res, `webhook ${d.event}`);
          // Nothing is unsigned-accepted: only 401/400/413/415 for these.
          expect([400, 401, 413, 415]).toContain(res.statusCode);
        },
      ),
      { numRuns: RUNS },
    );
    expect(t.runs.all()).toHaveLength(0);
  });

  it("handles correctly signed deliveries with arbitrary payloads and headers without 5xx or creates", async () => {
    const malicious = fc.oneof(
      jsonValue.map((v) => JSON.stringify(v) ?? "null"),
      fc.string({ maxLength: 200 }),
      // Structurally plausible events from senders who may not trigger, or with odd fields.
      fc
        .record({
          body: fc.oneof(fc.string({ maxLength: 100 }), fc.constant("/agent run x"), fc.constant("@rex y")),
          association: fc.constantFrom("NONE", "CONTRIBUTOR", "FIRST_TIMER", "", "owner!"),
          bot: fc.boolean(),
        })
        .map(({ body: b, association, bot }) =>
          JSON.stringify(commentPayload(b, { association, login: bot ? "x[bot]" : "drive-by", type: bot ? "Bot" : "User" })),
        ),
    );
    await fc.assert(
      fc.asyncProperty(
        malicious,
        fc.constantFrom("issue_comment", "issues", "pull_request", "ping", "push", "unknown_event"),
        fc.uuid(),
        async (payload, event, id) => {
          const res = await t.app.inject({
            method: "POST",
            url: "/webhooks/github",
            payload,
            headers: {
              "content-type": "application/json",
              "x-github-event": event,
              "x-github-delivery": id,
              "x-hub-signature-256": signPayload(WEBHOOK_SECRET, payload),
            },
          });
          expectNoServerError(res, `signed ${event}`);
        },
      ),
      { numRuns: Math.round(RUNS * 0.7) },
    );
    expect(t.runs.all()).toHaveLength(0);
    expect(t.runs.createCalls).toBe(0);
  });

  it("is still alive and healthy afterwards", async () => {
    const res = await t.app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(200);
  });
});
