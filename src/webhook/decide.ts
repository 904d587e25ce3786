/**
 * The webhook receiver's decisions, as pure functions of a delivery (src/webhook/receiver.ts
 * performs them). Each step either answers the delivery or hands the next step what it needs:
 * screen (secret, signature, headers, payload) → sender → intent (rule, CodeRun) → answer.
 */
import type { AnyRun, CodeRun } from "../api/types.js";
import {
  authorizeRun,
  buildAuthzAnnotations,
  requesterLabel,
  runRequestOf,
  webhookRequester,
  type AuthzConfig,
} from "../authz/authorize.js";
import type { ProblemType } from "../intake/problem.js";
import { RunStoreError } from "../intake/store.js";
import type { Refusal } from "../reporter/run-report.js";
import {
  buildCodeRunFromEvent,
  isBot,
  matchEvent,
  signedBodyDigest,
  type CompiledRule,
  type EventMatch,
  type SenderDecision,
  type WebhookSettings,
} from "./rules.js";
import { verifySignature } from "./signature.js";

/** Outcomes counted in orchestrator_webhook_deliveries_total{outcome}. */
export const Outcomes = {
  created: "created",
  duplicate: "duplicate",
  ignored: "ignored",
  forbidden: "forbidden",
  /** The task already has an active run. */
  busy: "busy",
  rejected: "rejected",
  unauthorized: "unauthorized",
  /** The rule (as requester) is over authorization.quotas.maxActiveRuns. */
  quota: "quota",
  /** Refused before reading: too many unverified bodies in flight (webhook.maxUnverifiedBodies/Bytes). */
  overloaded: "overloaded",
  error: "error",
} as const;
export type Outcome = (typeof Outcomes)[keyof typeof Outcomes];

/** One log line of a decision; the receiver adds the delivery's bindings. */
export interface LogLine {
  level: "info" | "warn" | "error";
  obj: Record<string, unknown>;
  msg: string;
}

/** How a delivery is answered: counted under `event` and `outcome`, optionally logged. */
export type Answer = {
  /** The metrics label of the event ("unverified", "other" or a valid event name). */
  event: string;
  /** Counted, unless undefined (an acknowledgement whose outcome is counted later). */
  outcome: Outcome | undefined;
  status: number;
  log?: LogLine;
} & (
  | { body: { success: true; message: string; data: Record<string, unknown> } }
  | { problem: { type: ProblemType; detail: string }; retryAfterSeconds?: number }
);

/** GitHub's event names: lowercase letters, digits and underscores (`projects_v2_item`). */
const EVENT_NAME = /^[a-z0-9_]{1,64}$/;
const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;

/** Event names come from GitHub after the signature check; anything odd becomes "other" (label cardinality). */
export function eventLabel(event: string | undefined): string {
  return event !== undefined && EVENT_NAME.test(event) ? event : "other";
}

type Parsed = { ok: true; payload: Record<string, unknown> } | { ok: false; status: 400 | 415; message: string };

/** The delivery's JSON object, from an application/json or form-encoded (`payload=`) body. */
export function parsePayload(raw: Buffer, contentType: string | undefined): Parsed {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  let text: string | null;
  if (type === "application/json" || type === "") {
    text = raw.toString("utf8");
  } else if (type === "application/x-www-form-urlencoded") {
    text = new URLSearchParams(raw.toString("utf8")).get("payload");
    if (text === null) return { ok: false, status: 400, message: "The form-encoded delivery has no payload field." };
  } else {
    return {
      ok: false,
      status: 415,
      message: `Unsupported Content-Type ${type}; configure the GitHub webhook with content type application/json.`,
    };
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v))
      return { ok: false, status: 400, message: "The payload is not a JSON object." };
    return { ok: true, payload: v as Record<string, unknown> };
  } catch {
    return { ok: false, status: 400, message: "The payload is not valid JSON." };
  }
}

/** What the receiver knows about a request before deciding anything. */
export interface RawDelivery {
  /** The body's bytes (empty when they were not kept: the event needs no payload). */
  raw: Buffer;
  /** Checked while the body streamed in (src/webhook/body.ts); else checked here over `raw`. */
  signatureValid?: boolean;
  /** Bytes received, when `raw` was not kept. */
  bytes?: number;
  signature: unknown;
  event: string | undefined;
  delivery: string | undefined;
  contentType: string | undefined;
}

/** A delivery whose signature, headers and payload are good. */
export interface VerifiedDelivery {
  event: string;
  /** X-GitHub-Delivery: for logs and answers only, since the signature does not cover it. */
  delivery: string;
  /** signedBodyDigest() of the raw body: what deduplicates and names the run. */
  bodyDigest: string;
  /** The delivery's stable identity for listeners and replies (a prefix of bodyDigest). */
  key: string;
  payload: Record<string, unknown>;
  action: string | undefined;
  sender: Record<string, unknown>;
  senderLogin: string | undefined;
}

export interface ScreenSettings {
  secrets: readonly string[];
  /** Events some rule names. */
  ruleEvents: ReadonlySet<string>;
  /** Whether the delivery listener wants this event. */
  listens: (event: string) => boolean;
}

/** A success body of the webhook API (`{success, message, data}`). */
export function reply(
  event: string,
  outcome: Outcome,
  status: number,
  message: string,
  data: Record<string, unknown>,
  log?: LogLine,
): Answer {
  return { event: eventLabel(event), outcome, status, log, body: { success: true, message, data } };
}

function problem(event: string, outcome: Outcome, status: number, type: ProblemType, detail: string, log?: LogLine): Answer {
  return { event, outcome, status, log, problem: { type, detail } };
}

const DISABLED =
  "Webhook intake is disabled: no webhook secret is configured. Set GITHUB_WEBHOOK_SECRET (Helm: the chart's webhook Secret) to the secret of the GitHub webhook and restart.";
const UNSIGNED =
  "Missing or invalid X-Hub-Signature-256. Set the GitHub webhook's secret to the value of GITHUB_WEBHOOK_SECRET and use content type application/json.";
const NO_RULE: LogLine = { level: "info", obj: {}, msg: "Ignored delivery: no rule matches" };

/** Refuses a delivery that is not provably GitHub's: no secret configured, or a bad signature over the raw bytes. */
function authenticate(d: RawDelivery, secrets: readonly string[]): Answer | undefined {
  if (secrets.length === 0) return problem("other", Outcomes.error, 503, "disabled", DISABLED);
  if (d.signatureValid ?? verifySignature(d.raw, d.signature, secrets)) return undefined;
  const log: LogLine = {
    level: "warn",
    obj: { hasSignature: typeof d.signature === "string", bytes: d.bytes ?? d.raw.length },
    msg: "Rejected webhook delivery with a missing or invalid signature",
  };
  return problem("unverified", Outcomes.unauthorized, 401, "unauthorized", UNSIGNED, log);
}

/**
 * Secret configured → signature over the raw bytes → GitHub headers → (no rule wants the event:
 * answered from the headers alone) → payload. Nothing is parsed before the signature.
 */
export function screenDelivery(d: RawDelivery, s: ScreenSettings): { answer: Answer } | { verified: VerifiedDelivery } {
  const refused = authenticate(d, s.secrets);
  if (refused) return { answer: refused };
  const { event, delivery } = d;
  if (!event || !EVENT_NAME.test(event) || !delivery || !DELIVERY_ID.test(delivery)) {
    const detail = "Missing or malformed X-GitHub-Event / X-GitHub-Delivery headers.";
    return { answer: problem(eventLabel(event), Outcomes.rejected, 400, "badRequest", detail) };
  }
  // Most event types have no rule at all (push, status, check_run, ...): answer those from the
  // header alone, without parsing a payload that can be megabytes.
  if (event !== "ping" && !s.ruleEvents.has(event) && !s.listens(event)) {
    const log = { ...NO_RULE, obj: { delivery, event } };
    return {
      answer: reply(event, Outcomes.ignored, 202, "ignored: no rule matches this event", { delivery, event, outcome: "ignored" }, log),
    };
  }
  const parsed = parsePayload(d.raw, d.contentType);
  if (!parsed.ok) {
    const type = parsed.status === 415 ? "unsupportedMediaType" : "badRequest";
    return { answer: problem(event, Outcomes.rejected, parsed.status, type, parsed.message) };
  }
  return { verified: verifiedDelivery(event, delivery, parsed.payload, signedBodyDigest(d.raw)) };
}

function verifiedDelivery(event: string, delivery: string, payload: Record<string, unknown>, bodyDigest: string): VerifiedDelivery {
  const sender = payload.sender !== null && typeof payload.sender === "object" ? (payload.sender as Record<string, unknown>) : {};
  return {
    event,
    delivery,
    bodyDigest,
    key: bodyDigest.slice(0, 32),
    payload,
    action: typeof payload.action === "string" ? payload.action.slice(0, 64) : undefined,
    sender,
    senderLogin: typeof sender.login === "string" ? sender.login.slice(0, 100) : undefined,
  };
}

/** The answer to a ping (GitHub sends one when the webhook is created). */
export function answerPing(v: VerifiedDelivery): Answer {
  const zen = typeof v.payload.zen === "string" ? v.payload.zen : undefined;
  return reply(
    v.event,
    Outcomes.ignored,
    200,
    "pong",
    { delivery: v.delivery, event: v.event, outcome: Outcomes.ignored, zen },
    {
      level: "info",
      obj: { hookId: v.payload.hook_id },
      msg: "Answered webhook ping",
    },
  );
}

/** A delivery already seen (or being created) that made the run `name`. */
export function answerDuplicate(v: VerifiedDelivery, name: string, namespace: string): Answer {
  return reply(v.event, Outcomes.duplicate, 200, "duplicate delivery", {
    delivery: v.delivery,
    event: v.event,
    outcome: Outcomes.duplicate,
    coderun_name: name,
    namespace,
  });
}

/**
 * Whose repository permission to ask GitHub for, or undefined when author_association decides:
 * no checker wired, no sender or repository, a bot, or an allowlisted user.
 */
export function permissionQuery(v: VerifiedDelivery, settings: WebhookSettings): { repo: string; login: string } | undefined {
  const repo = (v.payload.repository as { full_name?: unknown } | undefined)?.full_name;
  const login = v.senderLogin;
  if (!login || typeof repo !== "string" || isBot(v.sender)) return undefined;
  if (settings.webhook.allowUsers.some((u) => u.toLowerCase() === login.toLowerCase())) return undefined;
  return { repo, login };
}

/** The sender's real repository permission, when known, decides instead of author_association. */
export function decideSender(
  byAssociation: SenderDecision,
  permission: { repo: string; login: string; level: string } | undefined,
): SenderDecision {
  if (!permission) return byAssociation;
  const { repo, login, level } = permission;
  return ["admin", "maintain", "write"].includes(level)
    ? { allowed: true, via: `repository permission ${level}` }
    : { allowed: false, reason: `${login} has ${level} permission on ${repo} (write needed)` };
}

/** Where a refusal reply goes: the delivery's repository and issue (or PR), or null. */
export function refusalTarget(payload: Record<string, unknown>): { repo: { owner: string; repo: string }; issue: number } | null {
  const full = (payload.repository as { full_name?: unknown } | undefined)?.full_name;
  const issue = ((payload.issue ?? payload.pull_request) as { number?: unknown } | undefined)?.number;
  const [owner, repo] = typeof full === "string" ? full.split("/") : [];
  return owner && repo && typeof issue === "number" ? { repo: { owner, repo }, issue } : null;
}

/** The refusal to hand to the run reporter, if the delivery names an issue to answer on. */
export function buildRefusal(v: VerifiedDelivery, reason: Refusal["reason"], detail: string, run?: string): Refusal | undefined {
  const target = refusalTarget(v.payload);
  if (!target) return undefined;
  return { delivery: v.key, ...target, login: v.senderLogin ?? "unknown", reason, detail, ...(run ? { run } : {}) };
}

export type Intent =
  { answer: Answer; refusal?: Refusal } | { run: CodeRun; match: EventMatch; sender: SenderDecision & { allowed: true } };

/** A 202 for a delivery that creates nothing. */
function ignore(v: VerifiedDelivery, outcome: Outcome, message: string, log: LogLine): Answer {
  return reply(v.event, outcome, 202, message, { delivery: v.delivery, event: v.event, outcome }, log);
}

/**
 * The rule the delivery matches, whether its sender may trigger it, and the CodeRun it asks for,
 * authorized for the rule as requester (`webhook:<rule>`, docs/security.md) and stamped with it.
 */
export function decideIntent(
  v: VerifiedDelivery,
  rules: readonly CompiledRule[],
  sender: SenderDecision,
  settings: WebhookSettings & AuthzConfig,
): Intent {
  const match = matchEvent(v.event, v.payload, rules);
  if (!match) return { answer: ignore(v, Outcomes.ignored, "ignored: no rule matches this event", NO_RULE) };
  const rule = match.rule.rule.name;
  if (!sender.allowed) {
    const log: LogLine = { level: "info", obj: { rule, reason: sender.reason }, msg: "Ignored delivery: sender may not trigger agents" };
    return {
      answer: ignore(v, Outcomes.forbidden, `ignored: ${sender.reason}`, log),
      refusal: buildRefusal(v, "not-allowed", sender.reason),
    };
  }
  const built = buildCodeRunFromEvent({
    deliveryId: v.delivery,
    bodyDigest: v.bodyDigest,
    event: v.event,
    payload: v.payload,
    match,
    settings,
  });
  if (!built.ok) {
    const msg = "Ignored delivery: rule matched but no CodeRun can be built";
    return { answer: ignore(v, Outcomes.ignored, `ignored: ${built.reason}`, { level: "warn", obj: { rule, reason: built.reason }, msg }) };
  }
  const run = built.run;
  const requester = webhookRequester(rule);
  const authz = authorizeRun(runRequestOf(run), requester, settings);
  if (!authz.allowed) {
    const log: LogLine = {
      level: "warn",
      obj: { rule, requester, reason: authz.reason, detail: authz.message },
      msg: "Ignored delivery: the rule may not start this run",
    };
    return {
      answer: ignore(v, Outcomes.forbidden, `ignored: ${authz.message}`, log),
      refusal: buildRefusal(v, "not-authorized", authz.message),
    };
  }
  run.metadata.annotations = { ...run.metadata.annotations, ...buildAuthzAnnotations(requester, run.spec) };
  run.metadata.labels = { ...run.metadata.labels, ...requesterLabel(requester) };
  return { run, match, sender };
}

export type CreateResult =
  | { outcome: "created" | "duplicate"; name: string }
  | { outcome: "busy"; name: string; active: AnyRun }
  /** The rule (the requester) already has `max` unfinished runs: authorization.quotas.maxActiveRuns. */
  | { outcome: "quota"; name: string; active: number; max: number };

/** The answer to a create that finished within the acknowledgement timeout. */
export function answerCreate(
  v: VerifiedDelivery,
  run: CodeRun,
  via: string,
  r: CreateResult,
  namespace: string,
): { answer: Answer; refusal?: Refusal } {
  const base = { delivery: v.delivery, event: v.event };
  if (r.outcome === "quota") {
    const q = answerQuota(v, r);
    return { answer: reply(v.event, Outcomes.quota, 202, q.message, { ...base, outcome: Outcomes.quota }, q.log), refusal: q.refusal };
  }
  if (r.outcome === "busy") {
    const busy = answerBusy(v, run, r.active);
    return {
      answer: reply(
        v.event,
        Outcomes.busy,
        202,
        busy.message,
        { ...base, outcome: Outcomes.busy, coderun_name: r.active.metadata.name },
        busy.log,
      ),
      refusal: busy.refusal,
    };
  }
  if (r.outcome === "duplicate")
    return { answer: { ...answerDuplicate(v, r.name, namespace), log: { level: "info", obj: {}, msg: "Ignored duplicate delivery" } } };
  return {
    answer: reply(
      v.event,
      Outcomes.created,
      201,
      "CodeRun created",
      { ...base, outcome: Outcomes.created, coderun_name: r.name, namespace },
      {
        level: "info",
        obj: { taskId: run.spec.taskId, service: run.spec.service, by: via },
        msg: "Created CodeRun from webhook delivery",
      },
    ),
  };
}

/** The rule is over its active-run quota: the message, its log line and the refusal for GitHub. */
export function answerQuota(v: VerifiedDelivery, r: { active: number; max: number }): { message: string; log: LogLine; refusal?: Refusal } {
  const detail = `this trigger already has ${r.active} runs that have not finished (authorization.quotas.maxActiveRuns allows ${r.max})`;
  return {
    message: `ignored: ${detail}`,
    log: { level: "info", obj: { active: r.active, max: r.max }, msg: "Ignored delivery: the rule is over its active-run quota" },
    refusal: buildRefusal(v, "over-quota", detail),
  };
}

/** The task already has an active run: the message, its log line and the refusal for GitHub. */
export function answerBusy(v: VerifiedDelivery, run: CodeRun, active: AnyRun): { message: string; log: LogLine; refusal?: Refusal } {
  const phase = active.status?.phase ?? "Pending";
  const name = active.metadata.name;
  return {
    message: `ignored: CodeRun ${name} for task ${run.spec.taskId} of ${run.spec.service} is still ${phase}`,
    log: { level: "info", obj: { active: name, phase }, msg: "Ignored delivery: the task already has an active run" },
    refusal: buildRefusal(v, "already-running", `CodeRun ${name} is still ${phase}`, name),
  };
}

/** The answer when the API server is slower than webhook.ackTimeoutMs: the create goes on in the background. */
export function answerAccepted(v: VerifiedDelivery, name: string, namespace: string): Answer {
  return {
    event: eventLabel(v.event),
    outcome: undefined,
    status: 202,
    body: {
      success: true,
      message: "accepted: the CodeRun is being created",
      data: { delivery: v.delivery, event: v.event, outcome: "accepted", coderun_name: name, namespace },
    },
  };
}

/** A failed create: 503 (redeliver later) when the API server is unreachable, else 500. */
export function answerCreateFailure(v: VerifiedDelivery, rule: string, err: unknown, retryAfterSeconds: number): Answer {
  if (err instanceof RunStoreError && err.reason === "Unavailable")
    return {
      ...problem(
        eventLabel(v.event),
        Outcomes.error,
        503,
        "unavailable",
        "The Kubernetes API server is unreachable; nothing was created. Redeliver this delivery from the GitHub webhook settings.",
        { level: "error", obj: { err }, msg: "Failed to create CodeRun: Kubernetes API unreachable" },
      ),
      retryAfterSeconds,
    };
  const detail =
    err instanceof RunStoreError
      ? `The CodeRun for this delivery was refused (${err.reason}: ${err.message}). An operator must fix webhook rule ${rule} or the defaults.`
      : "Internal error; see the controller logs.";
  return problem(eventLabel(v.event), Outcomes.error, 500, "internal", detail, {
    level: "error",
    obj: { err },
    msg: "Failed to create CodeRun from webhook delivery",
  });
}
