import { describe, expect, it } from "vitest";
import type { AnyRun, CodeRun } from "../../src/api/types.js";
import { RunStoreError } from "../../src/intake/store.js";
import {
  answerCreate,
  answerCreateFailure,
  decideIntent,
  decideSender,
  permissionQuery,
  screenDelivery,
  type Answer,
  type RawDelivery,
  type VerifiedDelivery,
} from "../../src/webhook/decide.js";
import { authorizeSender, compileRules } from "../../src/webhook/rules.js";
import { signPayload } from "../../src/webhook/signature.js";
import { WEBHOOK_SECRET, commentPayload, examplePayload, testConfig } from "../support/webhook-fixtures.js";

const config = testConfig();
const rules = compileRules(config);
const secrets = [WEBHOOK_SECRET];

function raw(
  event: string | undefined,
  body: string,
  opts: { secret?: string; contentType?: string; delivery?: string } = {},
): RawDelivery {
  return {
    raw: Buffer.from(body),
    signature: signPayload(opts.secret ?? WEBHOOK_SECRET, body),
    event,
    delivery: opts.delivery ?? "d-1",
    contentType: opts.contentType ?? "application/json",
  };
}

const screenSettings = { secrets, ruleEvents: new Set(["issue_comment", "issues"]), listens: (e: string) => e === "pull_request" };
const comment = JSON.stringify(commentPayload("/agent run fix it"));

/** The parts of an answer a table compares. */
function summary(a: Answer) {
  return { status: a.status, outcome: a.outcome, event: a.event, kind: "problem" in a ? a.problem.type : a.body.message };
}

describe("screenDelivery", () => {
  const cases: { name: string; input: RawDelivery; secrets?: string[]; want: ReturnType<typeof summary> | "verified" }[] = [
    {
      name: "no secret configured",
      input: raw("issue_comment", comment),
      secrets: [],
      want: { status: 503, outcome: "error", event: "other", kind: "disabled" },
    },
    {
      name: "signed with another secret",
      input: raw("issue_comment", comment, { secret: "nope" }),
      want: { status: 401, outcome: "unauthorized", event: "unverified", kind: "unauthorized" },
    },
    {
      name: "no signature",
      input: { ...raw("issue_comment", comment), signature: undefined },
      want: { status: 401, outcome: "unauthorized", event: "unverified", kind: "unauthorized" },
    },
    {
      name: "no event header",
      input: raw(undefined, comment),
      want: { status: 400, outcome: "rejected", event: "other", kind: "badRequest" },
    },
    {
      name: "malformed delivery id",
      input: raw("issue_comment", comment, { delivery: "../x" }),
      want: { status: 400, outcome: "rejected", event: "issue_comment", kind: "badRequest" },
    },
    {
      name: "an event no rule names, answered without parsing",
      input: raw("push", "not json at all"),
      want: { status: 202, outcome: "ignored", event: "push", kind: "ignored: no rule matches this event" },
    },
    {
      name: "an event only the listener wants is parsed",
      input: raw("pull_request", "{}"),
      want: "verified",
    },
    {
      name: "an event with digits no rule names",
      input: raw("projects_v2_item", "{}"),
      want: { status: 202, outcome: "ignored", event: "projects_v2_item", kind: "ignored: no rule matches this event" },
    },
    {
      name: "invalid JSON",
      input: raw("issue_comment", "{"),
      want: { status: 400, outcome: "rejected", event: "issue_comment", kind: "badRequest" },
    },
    {
      name: "a JSON array",
      input: raw("issue_comment", "[]"),
      want: { status: 400, outcome: "rejected", event: "issue_comment", kind: "badRequest" },
    },
    {
      name: "another content type",
      input: raw("issue_comment", comment, { contentType: "text/plain" }),
      want: { status: 415, outcome: "rejected", event: "issue_comment", kind: "unsupportedMediaType" },
    },
    { name: "a ping is verified (answered by the receiver)", input: raw("ping", '{"zen":"x"}'), want: "verified" },
    { name: "a signed comment", input: raw("issue_comment", comment), want: "verified" },
  ];
  it.each(cases)("$name", ({ input, want, ...c }) => {
    const r = screenDelivery(input, { ...screenSettings, secrets: c.secrets ?? secrets });
    if (want === "verified") expect(r).toHaveProperty("verified");
    else expect("answer" in r && summary(r.answer)).toEqual(want);
  });

  it("reads form-encoded deliveries and the sender from the verified payload", () => {
    const body = new URLSearchParams({ payload: comment }).toString();
    const r = screenDelivery(raw("issue_comment", body, { contentType: "application/x-www-form-urlencoded" }), screenSettings);
    expect("verified" in r && { action: r.verified.action, sender: r.verified.senderLogin }).toEqual({
      action: "created",
      sender: (JSON.parse(comment) as { sender: { login: string } }).sender.login,
    });
  });
});

function verified(event: string, payload: Record<string, unknown>): VerifiedDelivery {
  const r = screenDelivery(raw(event, JSON.stringify(payload)), screenSettings);
  if (!("verified" in r)) throw new Error("not verified");
  return r.verified;
}

describe("permissionQuery and decideSender", () => {
  const v = verified("issue_comment", commentPayload("/agent run", { login: "octo", association: "NONE" }));
  const repo = (v.payload.repository as { full_name: string }).full_name;
  const denied = authorizeSender(v.event, v.payload, config);

  it.each([
    { name: "a user: ask GitHub", v, settings: config, want: { repo, login: "octo" } },
    {
      name: "a bot: association decides",
      v: verified("issue_comment", commentPayload("/agent run", { login: "ci[bot]", type: "Bot" })),
      settings: config,
      want: undefined,
    },
    {
      name: "an allowlisted user: no lookup",
      v,
      settings: { ...config, webhook: { ...config.webhook, allowUsers: ["OCTO"] } },
      want: undefined,
    },
  ])("$name", ({ v: d, settings, want }) => {
    expect(permissionQuery(d, settings)).toEqual(want);
  });

  it.each([
    { level: "admin", allowed: true },
    { level: "maintain", allowed: true },
    { level: "write", allowed: true },
    { level: "triage", allowed: false },
    { level: "read", allowed: false },
    { level: "none", allowed: false },
  ])("permission $level → allowed $allowed", ({ level, allowed }) => {
    expect(denied.allowed).toBe(false);
    expect(decideSender(denied, { repo, login: "octo", level }).allowed).toBe(allowed);
  });

  it("keeps the association's decision when no permission is known", () => {
    expect(decideSender(denied, undefined)).toBe(denied);
  });
});

describe("decideIntent", () => {
  const allowed = { allowed: true as const, via: "test" };
  it.each([
    { name: "no rule matches a plain comment", payload: commentPayload("thanks!"), sender: allowed, want: 202, refusal: false },
    {
      name: "a matching comment from a sender who may not",
      payload: commentPayload("/agent run"),
      sender: { allowed: false as const, reason: "octo has author_association NONE" },
      want: 202,
      refusal: true,
    },
  ])("$name", ({ payload, sender, want, refusal }) => {
    const r = decideIntent(verified("issue_comment", payload), rules, sender, config);
    expect("answer" in r && r.answer.status).toBe(want);
    expect("answer" in r && r.refusal !== undefined).toBe(refusal);
  });

  it("ignores a matching event no CodeRun can be built from (no task id)", () => {
    const p = examplePayload("issues", "labeled") as { issue: Record<string, unknown>; label: Record<string, unknown> };
    p.label = { ...p.label, name: "agent" };
    delete p.issue.number;
    const r = decideIntent(verified("issues", p), rules, allowed, config);
    expect("answer" in r && r.answer).toMatchObject({ status: 202, outcome: "ignored", log: { level: "warn" } });
  });

  it("builds the CodeRun for a matching, allowed comment", () => {
    const r = decideIntent(verified("issue_comment", commentPayload("/agent run please")), rules, allowed, config);
    expect("run" in r && { rule: r.match.rule.rule.name, kind: r.run.kind, via: r.sender.via }).toEqual({
      rule: "agent-run",
      kind: "CodeRun",
      via: "test",
    });
  });
});

describe("answerCreate and answerCreateFailure", () => {
  const v = verified("issue_comment", commentPayload("/agent run"));
  const run = { metadata: { name: "gh-1" }, spec: { taskId: 7, service: "svc" } } as CodeRun;
  const active = { metadata: { name: "gh-0" }, status: { phase: "Running" } } as AnyRun;

  it.each([
    { name: "created", r: { outcome: "created" as const, name: "gh-1" }, want: { status: 201, outcome: "created" }, refusal: false },
    { name: "duplicate", r: { outcome: "duplicate" as const, name: "gh-1" }, want: { status: 200, outcome: "duplicate" }, refusal: false },
    { name: "busy", r: { outcome: "busy" as const, name: "gh-1", active }, want: { status: 202, outcome: "busy" }, refusal: true },
  ])("$name", ({ r, want, refusal }) => {
    const a = answerCreate(v, run, "test", r, "ns");
    expect(a.answer).toMatchObject(want);
    expect(a.refusal !== undefined).toBe(refusal);
  });

  it.each([
    { name: "API server unreachable", err: new RunStoreError("Unavailable", "refused"), status: 503, retry: 5 },
    { name: "refused by the API server", err: new RunStoreError("Invalid", "spec.x: bad"), status: 500, retry: undefined },
    { name: "anything else", err: new Error("boom"), status: 500, retry: undefined },
  ])("$name → $status", ({ err, status, retry }) => {
    const a = answerCreateFailure(v, "agent-run", err, 5);
    expect(a).toMatchObject({ status, outcome: "error" });
    expect("retryAfterSeconds" in a ? a.retryAfterSeconds : undefined).toBe(retry);
    if (err instanceof RunStoreError && status === 500) expect("problem" in a && a.problem.detail).toContain("webhook rule agent-run");
  });
});
