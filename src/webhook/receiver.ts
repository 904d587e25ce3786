/**
 * GitHub webhook receiver: POST /webhooks/github (and POST /webhook, the original path).
 *
 * Order of checks: secret configured → signature over the raw bytes → GitHub headers → payload
 * parse → ping → duplicate delivery → rule → sender allowed → CodeRun create. Nothing is parsed
 * or logged from a delivery before its signature is verified.
 *
 * Acknowledgement: the CodeRun create runs inline, raced against webhook.ackTimeoutMs (default
 * 3 s; GitHub aborts at 10 s and does not retry). If the API server is slower than that, the
 * delivery is answered 202 and the create finishes in the background; its name derives from the
 * delivery id, so a manual redelivery after a failure can never create a second run. If the API
 * server is unreachable (connection refused), the answer is 503 so GitHub shows the delivery as
 * failed and it can be redelivered from the repository's webhook settings.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Labels } from "../api/constants.js";
import { isActive } from "../api/predicates.js";
import type { AnyRun, CodeRun } from "../api/types.js";
import type { Config } from "../config/schema.js";
import type { Refusal } from "../reporter/run-report.js";
import { RETRY_AFTER_SECONDS } from "../intake/errors.js";
import { RunStoreError, isStoreError, type RunStore } from "../intake/store.js";
import { sendProblem } from "../intake/problem.js";
import type { Metrics } from "../observability/metrics.js";
import { LruSet } from "./lru.js";
import { authorizeSender, buildCodeRunFromEvent, compileRules, isBot, matchEvent, type PermissionChecker } from "./rules.js";
import { verifySignature } from "./signature.js";

export const WEBHOOK_PATHS = ["/webhooks/github", "/webhook"] as const;

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
  error: "error",
} as const;
export type Outcome = (typeof Outcomes)[keyof typeof Outcomes];

export interface WebhookDeps {
  config: Pick<Config, "namespace" | "webhook" | "agents" | "models" | "webhookSecrets">;
  runs: RunStore;
  metrics: Metrics;
  /** Optional: the sender's real repository permission; when set, it decides instead of author_association. */
  permissions?: PermissionChecker;
  /**
   * Optional: told about every verified, non-duplicate delivery (before rules), e.g. the Play
   * controller's enqueueForDelivery. Errors are logged, never fail the delivery.
   */
  onDelivery?: DeliveryListener;
  /** Events onDelivery wants (default: all); others keep the no-rule fast path. */
  deliveryEvents?: readonly string[];
  /**
   * Optional: told about a matched delivery that was refused (sender not allowed, task already
   * running), so the run reporter can answer on GitHub. The intake itself never writes to GitHub.
   */
  onRefusal?: (refusal: Refusal) => void;
}

/** Where a refusal reply goes: the delivery's repository and issue (or PR), or null. */
function refusalTarget(payload: Record<string, unknown>): { repo: { owner: string; repo: string }; issue: number } | null {
  const full = (payload.repository as { full_name?: unknown } | undefined)?.full_name;
  const issue = ((payload.issue ?? payload.pull_request) as { number?: unknown } | undefined)?.number;
  const [owner, repo] = typeof full === "string" ? full.split("/") : [];
  return owner && repo && typeof issue === "number" ? { repo: { owner, repo }, issue } : null;
}

/** The run of the same task and service that is still active (another delivery's), if any. */
async function activeSibling(runs: RunStore, run: CodeRun): Promise<AnyRun | undefined> {
  const siblings = await runs.list("CodeRun", { [Labels.service]: run.spec.service, [Labels.taskId]: String(run.spec.taskId) });
  return siblings.find((r) => r.metadata.name !== run.metadata.name && isActive(r));
}

export type DeliveryListener = (event: string, payload: Record<string, unknown>, delivery: string) => unknown;

/** GitHub's event names: lowercase letters, digits and underscores (`projects_v2_item`). */
const EVENT_NAME = /^[a-z0-9_]{1,64}$/;

/** Event names come from GitHub after the signature check; anything odd becomes "other" (label cardinality). */
function eventLabel(event: string | undefined): string {
  return event !== undefined && EVENT_NAME.test(event) ? event : "other";
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
}

function parsePayload(
  raw: Buffer,
  contentType: string | undefined,
): { ok: true; payload: Record<string, unknown> } | { ok: false; status: 400 | 415; message: string } {
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

type CreateResult = { outcome: "created" | "duplicate"; name: string } | { outcome: "busy"; name: string; active: AnyRun };

/** Registers the receiver in its own scope, where every body is kept as raw bytes. */
export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookDeps): void {
  const rules = compileRules(deps.config);
  const settings = deps.config;
  const secrets = deps.config.webhookSecrets;
  const seen = new LruSet<string>(deps.config.webhook.dedupeCacheSize);
  const inflight = new Map<string, Promise<CreateResult>>();
  const count = (event: string, outcome: Outcome) => deps.metrics.webhookDeliveries.inc({ event, outcome });
  const ruleEvents = new Set(rules.map((r) => r.rule.event));

  async function handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (secrets.length === 0) {
      count("other", Outcomes.error);
      return sendProblem(
        reply,
        "disabled",
        503,
        "Webhook intake is disabled: no webhook secret is configured. Set GITHUB_WEBHOOK_SECRET (Helm: the chart's webhook Secret) to the secret of the GitHub webhook and restart.",
      );
    }
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!verifySignature(raw, req.headers["x-hub-signature-256"], secrets)) {
      count("unverified", Outcomes.unauthorized);
      req.log.warn(
        { hasSignature: typeof req.headers["x-hub-signature-256"] === "string", bytes: raw.length },
        "Rejected webhook delivery with a missing or invalid signature",
      );
      return sendProblem(
        reply,
        "unauthorized",
        401,
        "Missing or invalid X-Hub-Signature-256. Set the GitHub webhook's secret to the value of GITHUB_WEBHOOK_SECRET and use content type application/json.",
      );
    }
    const event = header(req, "x-github-event");
    const delivery = header(req, "x-github-delivery");
    if (!event || !EVENT_NAME.test(event) || !delivery || !/^[A-Za-z0-9-]{1,100}$/.test(delivery)) {
      count(eventLabel(event), Outcomes.rejected);
      return sendProblem(reply, "badRequest", 400, "Missing or malformed X-GitHub-Event / X-GitHub-Delivery headers.");
    }
    // Most event types have no rule at all (push, status, check_run, ...): answer those from the
    // header alone, without parsing a payload that can be megabytes.
    const listens = deps.onDelivery !== undefined && (deps.deliveryEvents?.includes(event) ?? true);
    if (event !== "ping" && !ruleEvents.has(event) && !listens) {
      req.log.info({ delivery, event }, "Ignored delivery: no rule matches");
      count(eventLabel(event), Outcomes.ignored);
      return reply
        .code(202)
        .send({ success: true, message: "ignored: no rule matches this event", data: { delivery, event, outcome: Outcomes.ignored } });
    }
    const parsed = parsePayload(raw, header(req, "content-type"));
    if (!parsed.ok) {
      count(eventLabel(event), Outcomes.rejected);
      return sendProblem(reply, parsed.status === 415 ? "unsupportedMediaType" : "badRequest", parsed.status, parsed.message);
    }
    const payload = parsed.payload;
    const action = typeof payload.action === "string" ? payload.action.slice(0, 64) : undefined;
    const sender = payload.sender !== null && typeof payload.sender === "object" ? (payload.sender as Record<string, unknown>) : {};
    const senderLogin = typeof sender.login === "string" ? sender.login.slice(0, 100) : undefined;
    // Bindings of every line about this delivery (a per-delivery child logger): plain objects
    // merged into each line, because a pino child costs more than the whole no-match path.
    const bind = { delivery, event, action, sender: senderLogin };
    const log = {
      info: (obj: Record<string, unknown>, msg: string) => req.log.info({ ...bind, ...obj }, msg),
      warn: (obj: Record<string, unknown>, msg: string) => req.log.warn({ ...bind, ...obj }, msg),
    };
    const ok = (status: number, outcome: Outcome, message: string, data: Record<string, unknown> = {}) => {
      count(eventLabel(event), outcome);
      return reply.code(status).send({ success: true, message, data: { delivery, event, outcome, ...data } });
    };

    if (event === "ping") {
      log.info({ hookId: payload.hook_id }, "Answered webhook ping");
      return ok(200, Outcomes.ignored, "pong", { zen: typeof payload.zen === "string" ? payload.zen : undefined });
    }
    const known = seen.get(delivery);
    if (known !== undefined) {
      log.info({ coderun: known }, "Ignored duplicate delivery");
      return ok(200, Outcomes.duplicate, "duplicate delivery", { coderun_name: known, namespace: deps.runs.namespace });
    }
    const pending = inflight.get(delivery);
    if (pending) {
      const r = await pending.catch(() => undefined);
      if (r && r.outcome !== "busy")
        return ok(200, Outcomes.duplicate, "duplicate delivery", { coderun_name: r.name, namespace: deps.runs.namespace });
    }

    if (listens) {
      // The listener (e.g. Play wakeups) must not eat GitHub's 10 s: after ackTimeoutMs it goes on
      // in the background and the delivery proceeds.
      let listenerTimer: NodeJS.Timeout | undefined;
      const listened = Promise.resolve()
        .then(() => deps.onDelivery!(event, payload, delivery))
        .catch((err: unknown) => log.warn({ err }, "Delivery listener failed"));
      await Promise.race([
        listened,
        new Promise<void>((resolve) => (listenerTimer = setTimeout(resolve, deps.config.webhook.ackTimeoutMs))),
      ]);
      clearTimeout(listenerTimer);
    }
    const match = matchEvent(event, payload, rules);
    if (!match) {
      log.info({}, "Ignored delivery: no rule matches");
      return ok(202, Outcomes.ignored, "ignored: no rule matches this event");
    }
    let decision = authorizeSender(event, payload, settings);
    const repoFullName = (payload.repository as { full_name?: unknown } | undefined)?.full_name;
    if (
      deps.permissions &&
      senderLogin &&
      typeof repoFullName === "string" &&
      !isBot(sender) &&
      !settings.webhook.allowUsers.some((u) => u.toLowerCase() === senderLogin.toLowerCase())
    ) {
      try {
        const perm = await deps.permissions.permission(repoFullName, senderLogin);
        decision = ["admin", "maintain", "write"].includes(perm)
          ? { allowed: true, via: `repository permission ${perm}` }
          : { allowed: false, reason: `${senderLogin} has ${perm} permission on ${repoFullName} (write needed)` };
      } catch (err) {
        log.warn({ err }, "Failed to check the sender's permission; falling back to author_association");
      }
    }
    const target = refusalTarget(payload);
    const refuse = (reason: Refusal["reason"], detail: string, run?: string) => {
      if (target && deps.onRefusal)
        deps.onRefusal({ delivery, ...target, login: senderLogin ?? "unknown", reason, detail, ...(run ? { run } : {}) });
    };
    if (!decision.allowed) {
      log.info({ rule: match.rule.rule.name, reason: decision.reason }, "Ignored delivery: sender may not trigger agents");
      refuse("not-allowed", decision.reason);
      return ok(202, Outcomes.forbidden, `ignored: ${decision.reason}`);
    }
    const built = buildCodeRunFromEvent({ deliveryId: delivery, event, payload, match, settings });
    if (!built.ok) {
      log.warn({ rule: match.rule.rule.name, reason: built.reason }, "Ignored delivery: rule matched but no CodeRun can be built");
      return ok(202, Outcomes.ignored, `ignored: ${built.reason}`);
    }
    const run = built.run;
    const name = run.metadata.name!;
    const runBind = { ...bind, coderun: name, rule: match.rule.rule.name };
    const runLog = {
      info: (obj: Record<string, unknown>, msg: string) => req.log.info({ ...runBind, ...obj }, msg),
      error: (obj: Record<string, unknown>, msg: string) => req.log.error({ ...runBind, ...obj }, msg),
    };

    // One active run per task and service: a second request while one runs gets a reply, not a
    // run. The check is part of the create, so a slow API server is covered by the ack timeout.
    const creation: Promise<CreateResult> = activeSibling(deps.runs, run)
      .catch(() => undefined)
      .then((active): CreateResult | Promise<CreateResult> =>
        active
          ? { outcome: "busy" as const, name, active }
          : deps.runs.create(run).then(
              () => ({ outcome: "created" as const, name }),
              (err: unknown) => {
                if (isStoreError(err, "AlreadyExists")) return { outcome: "duplicate" as const, name };
                throw err;
              },
            ),
      );
    const busy = (active: AnyRun) => {
      const phase = active.status?.phase ?? "Pending";
      runLog.info({ active: active.metadata.name, phase }, "Ignored delivery: the task already has an active run");
      refuse("already-running", `CodeRun ${active.metadata.name} is still ${phase}`, active.metadata.name);
      return `ignored: CodeRun ${active.metadata.name} for task ${run.spec.taskId} of ${run.spec.service} is still ${phase}`;
    };
    inflight.set(delivery, creation);
    const settle = creation
      .then((r) => {
        if (r.outcome !== "busy") seen.set(delivery, name);
        return r;
      })
      .finally(() => inflight.delete(delivery));

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), deps.config.webhook.ackTimeoutMs);
      timer.unref();
    });
    try {
      const r = await Promise.race([settle, timeout]);
      if (r === "timeout") {
        // Slow API server: acknowledge now, finish in the background, report the outcome in logs/metrics.
        settle.then(
          (late) => {
            count(eventLabel(event), late.outcome);
            if (late.outcome === "busy") busy(late.active);
            else
              runLog.info(
                { taskId: run.spec.taskId, by: decision.via },
                late.outcome === "created" ? "Created CodeRun after acknowledging delivery" : "Ignored duplicate delivery",
              );
          },
          (err: unknown) => {
            count(eventLabel(event), Outcomes.error);
            runLog.error({ err }, "Failed to create CodeRun after acknowledging delivery; redeliver it from the GitHub webhook settings");
          },
        );
        return reply.code(202).send({
          success: true,
          message: "accepted: the CodeRun is being created",
          data: { delivery, event, outcome: "accepted", coderun_name: name, namespace: deps.runs.namespace },
        });
      }
      if (r.outcome === "busy") return ok(202, Outcomes.busy, busy(r.active), { coderun_name: r.active.metadata.name });
      if (r.outcome === "duplicate") {
        runLog.info({}, "Ignored duplicate delivery");
        return ok(200, Outcomes.duplicate, "duplicate delivery", { coderun_name: name, namespace: deps.runs.namespace });
      }
      runLog.info({ taskId: run.spec.taskId, service: run.spec.service, by: decision.via }, "Created CodeRun from webhook delivery");
      return ok(201, Outcomes.created, "CodeRun created", { coderun_name: name, namespace: deps.runs.namespace });
    } catch (err) {
      count(eventLabel(event), Outcomes.error);
      if (err instanceof RunStoreError && err.reason === "Unavailable") {
        runLog.error({ err }, "Failed to create CodeRun: Kubernetes API unreachable");
        reply.header("retry-after", String(RETRY_AFTER_SECONDS));
        return sendProblem(
          reply,
          "unavailable",
          503,
          "The Kubernetes API server is unreachable; nothing was created. Redeliver this delivery from the GitHub webhook settings.",
        );
      }
      runLog.error({ err }, "Failed to create CodeRun from webhook delivery");
      const detail =
        err instanceof RunStoreError
          ? `The CodeRun for this delivery was refused (${err.reason}: ${err.message}). An operator must fix webhook rule ${match.rule.rule.name} or the defaults.`
          : "Internal error; see the controller logs.";
      return sendProblem(reply, "internal", 500, detail);
    } finally {
      clearTimeout(timer);
    }
  }

  app.register(async (scope) => {
    // Raw bytes for every content type: the signature covers the exact body received.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: deps.config.webhook.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    for (const path of WEBHOOK_PATHS) {
      scope.post(path, { bodyLimit: deps.config.webhook.maxBodyBytes }, handle);
    }
  });
}

/** For the app's logger/metrics hooks: is this a webhook route? */
export function isWebhookRoute(url: string | undefined): boolean {
  return url !== undefined && (WEBHOOK_PATHS as readonly string[]).includes(url);
}
