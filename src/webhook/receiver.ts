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
 * signed body (never from X-GitHub-Delivery, which the signature does not cover), so neither a
 * redelivery after a failure nor a captured delivery replayed under new delivery ids can create a
 * second run. If the API
 * server is unreachable (connection refused), the answer is 503 so GitHub shows the delivery as
 * failed and it can be redelivered from the repository's webhook settings.
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Annotations, Labels } from "../api/constants.js";
import { listActiveRunsOf } from "../intake/quota.js";
import { isActive } from "../api/predicates.js";
import type { AnyRun, CodeRun } from "../api/types.js";
import type { Config } from "../config/schema.js";
import type { Refusal } from "../reporter/run-report.js";
import { RETRY_AFTER_SECONDS } from "../intake/errors.js";
import { isStoreError, type RunStore } from "../intake/store.js";
import { sendProblem } from "../intake/problem.js";
import type { Metrics } from "../observability/metrics.js";
import {
  Outcomes,
  answerAccepted,
  answerBusy,
  answerCreate,
  answerCreateFailure,
  answerDuplicate,
  answerPing,
  answerQuota,
  decideIntent,
  decideSender,
  eventLabel,
  permissionQuery,
  screenDelivery,
  type Answer,
  type CreateResult,
  type LogLine,
  type VerifiedDelivery,
} from "./decide.js";
import { BodyError, UNREAD, UnverifiedBudget, overloaded, readSignedBody, type Lease, type SignedBody } from "./body.js";
import { LruSet } from "./lru.js";
import { parseSignatureHeader } from "./signature.js";
import { authorizeSender, compileRules, type PermissionChecker, type SenderDecision } from "./rules.js";

export const WEBHOOK_PATHS = ["/webhooks/github", "/webhook"] as const;

export interface WebhookDeps {
  config: Pick<Config, "namespace" | "webhook" | "agents" | "models" | "webhookSecrets" | "authorization" | "github" | "secrets">;
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

/**
 * `delivery`: the delivery's stable identity, a digest of its signed body (the same for a
 * redelivery and for a replay under another X-GitHub-Delivery), so work keyed on it happens once.
 */
export type DeliveryListener = (event: string, payload: Record<string, unknown>, delivery: string) => unknown;

/** The run of the same task and service that is still active (another delivery's), if any. */
async function activeSibling(runs: RunStore, run: CodeRun): Promise<AnyRun | undefined> {
  const siblings = await runs.list("CodeRun", { [Labels.service]: run.spec.service, [Labels.taskId]: String(run.spec.taskId) });
  return siblings.find((r) => r.metadata.name !== run.metadata.name && isActive(r));
}

/** The rule's unfinished runs when they reach the quota, else undefined (also when they cannot be listed). */
async function overQuota(runs: RunStore, run: CodeRun, max: number): Promise<number | undefined> {
  const requester = run.metadata.annotations?.[Annotations.requester];
  if (requester === undefined) return undefined;
  const active = (await listActiveRunsOf(runs, requester).catch(() => [])).filter((r) => r.metadata.name !== run.metadata.name);
  return active.length >= max ? active.length : undefined;
}

/**
 * One active run per task and service (a second request while one runs gets a reply, not a run),
 * and at most authorization.quotas.maxActiveRuns per rule. The checks are part of the create, so
 * a slow API server is covered by the ack timeout.
 */
async function createUnlessBusy(runs: RunStore, run: CodeRun, max: number): Promise<CreateResult> {
  const name = run.metadata.name!;
  const [active, quota] = await Promise.all([activeSibling(runs, run).catch(() => undefined), overQuota(runs, run, max)]);
  if (active) return { outcome: "busy", name, active };
  if (quota !== undefined) return { outcome: "quota", name, active: quota, max };
  try {
    await runs.create(run);
    return { outcome: "created", name };
  } catch (err) {
    if (isStoreError(err, "AlreadyExists")) return { outcome: "duplicate", name };
    throw err;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === "string" ? v : undefined;
}

/** Resolves to "timeout" after ms (or to the promise's value first); the timer never outlives the race. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The receiver's acts: the decisions come from ./decide.ts. */
class Receiver {
  private readonly rules;
  private readonly ruleEvents: ReadonlySet<string>;
  private readonly seen: LruSet<string>;
  private readonly inflight = new Map<string, Promise<CreateResult>>();
  private readonly budget: UnverifiedBudget;
  private readonly leases = new WeakMap<FastifyRequest, { lease: Lease; keep: boolean; reserved: number }>();

  constructor(private readonly deps: WebhookDeps) {
    this.rules = compileRules(deps.config);
    this.ruleEvents = new Set(this.rules.map((r) => r.rule.event));
    this.seen = new LruSet<string>(deps.config.webhook.dedupeCacheSize);
    this.budget = new UnverifiedBudget(deps.config.webhook.maxUnverifiedBodies, deps.config.webhook.maxUnverifiedBytes);
  }

  private listens(event: string): boolean {
    return this.deps.onDelivery !== undefined && (this.deps.deliveryEvents?.includes(event) ?? true);
  }

  /** Whether the event's payload will be parsed: a rule or the listener wants it, or it is a ping. */
  private needsPayload(event: string | undefined): boolean {
    return event !== undefined && (event === "ping" || this.ruleEvents.has(event) || this.listens(event));
  }

  /**
   * onRequest: a slot of the unverified budget for a body worth reading (a secret is configured
   * and the signature header is well-formed), reserving its Content-Length when the bytes will be
   * kept; 503 before anything is read when the budget is spent.
   */
  async admit(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const w = this.deps.config.webhook;
    if (this.deps.config.webhookSecrets.length === 0 || !parseSignatureHeader(req.headers["x-hub-signature-256"])) return undefined;
    const keep = this.needsPayload(header(req, "x-github-event"));
    const length = Number(req.headers["content-length"]);
    const reserved = keep && Number.isFinite(length) ? Math.min(length, w.maxBodyBytes) : 0;
    const lease = this.budget.tryAcquire(reserved);
    if (!lease) {
      const busy = overloaded(`webhook.maxUnverifiedBodies ${w.maxUnverifiedBodies}, webhook.maxUnverifiedBytes ${w.maxUnverifiedBytes}`);
      this.count("unverified", Outcomes.overloaded);
      req.log.warn(
        { bodies: this.budget.usage.bodies, bytes: this.budget.usage.bytes },
        "Refused webhook delivery: too many bodies being read",
      );
      reply.header("retry-after", String(busy.retryAfterSeconds)).header("connection", "close");
      return sendProblem(reply, busy.problem, busy.statusCode, busy.message);
    }
    reply.raw.once("close", lease.release);
    this.leases.set(req, { lease, keep, reserved });
    return undefined;
  }

  /** The content parser: the body streamed through the signature check, kept only when its payload is needed. */
  async readBody(req: FastifyRequest, stream: Readable): Promise<SignedBody> {
    const admitted = this.leases.get(req);
    if (!admitted) return UNREAD;
    const w = this.deps.config.webhook;
    if (Number(req.headers["content-length"]) > w.maxBodyBytes)
      throw new BodyError(413, "tooLarge", "The request body is larger than the limit (webhook.maxBodyBytes).");
    try {
      return await readSignedBody(stream, {
        signature: req.headers["x-hub-signature-256"],
        secrets: this.deps.config.webhookSecrets,
        keep: admitted.keep,
        maxBytes: w.maxBodyBytes,
        timeoutMs: w.bodyTimeoutMs,
        reserved: admitted.reserved,
        lease: admitted.lease,
      });
    } finally {
      // Verified or not, the body is no longer unverified bytes in flight.
      admitted.lease.release();
    }
  }

  async handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const body = (req.body as SignedBody | undefined) ?? UNREAD;
    // An unread body stays in the socket: close the connection after answering.
    if (!body.read) reply.header("connection", "close");
    const screened = screenDelivery(
      {
        raw: body.raw,
        signatureValid: body.read ? body.signatureValid : undefined,
        bytes: body.bytes,
        signature: req.headers["x-hub-signature-256"],
        event: header(req, "x-github-event"),
        delivery: header(req, "x-github-delivery"),
        contentType: header(req, "content-type"),
      },
      { secrets: this.deps.config.webhookSecrets, ruleEvents: this.ruleEvents, listens: (e) => this.listens(e) },
    );
    if ("answer" in screened) return this.send(req, reply, screened.answer, {});
    const v = screened.verified;
    // Bindings of every line about this delivery: plain objects merged into each line, because a
    // pino child costs more than the whole no-match path.
    const bind = { delivery: v.delivery, event: v.event, action: v.action, sender: v.senderLogin };
    if (v.event === "ping") return this.send(req, reply, answerPing(v), bind);
    const duplicate = await this.knownRun(v.bodyDigest);
    if (duplicate !== undefined) {
      this.logLine(req, { level: "info", obj: { coderun: duplicate }, msg: "Ignored duplicate delivery" }, bind);
      return this.send(req, reply, answerDuplicate(v, duplicate, this.deps.runs.namespace), bind);
    }
    if (this.listens(v.event)) await this.notifyListener(req, v, bind);
    const intent = decideIntent(v, this.rules, await this.senderDecision(req, v, bind), this.deps.config);
    if ("answer" in intent) {
      if (intent.refusal) this.deps.onRefusal?.(intent.refusal);
      return this.send(req, reply, intent.answer, bind);
    }
    return this.create(
      req,
      reply,
      v,
      intent.run,
      { ...bind, coderun: intent.run.metadata.name, rule: intent.match.rule.rule.name },
      intent.sender.via,
    );
  }

  /**
   * The run a delivery already created (or is creating), by its signed body: the same body under
   * another X-GitHub-Delivery is the same delivery.
   */
  private async knownRun(bodyDigest: string): Promise<string | undefined> {
    const known = this.seen.get(bodyDigest);
    if (known !== undefined) return known;
    const r = await this.inflight.get(bodyDigest)?.catch(() => undefined);
    return r && (r.outcome === "created" || r.outcome === "duplicate") ? r.name : undefined;
  }

  /** The listener (e.g. Play wakeups) must not eat GitHub's 10 s: after ackTimeoutMs it goes on in the background. */
  private async notifyListener(req: FastifyRequest, v: VerifiedDelivery, bind: Record<string, unknown>): Promise<void> {
    const listened = Promise.resolve()
      .then(() => this.deps.onDelivery!(v.event, v.payload, v.key))
      .catch((err: unknown) => this.logLine(req, { level: "warn", obj: { err }, msg: "Delivery listener failed" }, bind));
    await within(listened, this.deps.config.webhook.ackTimeoutMs);
  }

  private async senderDecision(req: FastifyRequest, v: VerifiedDelivery, bind: Record<string, unknown>): Promise<SenderDecision> {
    const byAssociation = authorizeSender(v.event, v.payload, this.deps.config);
    const query = this.deps.permissions ? permissionQuery(v, this.deps.config) : undefined;
    if (!query) return byAssociation;
    try {
      return decideSender(byAssociation, { ...query, level: await this.deps.permissions!.permission(query.repo, query.login) });
    } catch (err) {
      const msg = "Failed to check the sender's permission; falling back to author_association";
      this.logLine(req, { level: "warn", obj: { err }, msg }, bind);
      return byAssociation;
    }
  }

  /** Creates the run, answering within webhook.ackTimeoutMs; a slower create finishes in the background. */
  private async create(
    req: FastifyRequest,
    reply: FastifyReply,
    v: VerifiedDelivery,
    run: CodeRun,
    bind: Record<string, unknown>,
    via: string,
  ): Promise<FastifyReply> {
    const { runs } = this.deps;
    const creation = createUnlessBusy(runs, run, this.deps.config.authorization.quotas.maxActiveRuns);
    this.inflight.set(v.bodyDigest, creation);
    const settle = creation
      .then((r) => {
        if (r.outcome === "created" || r.outcome === "duplicate") this.seen.set(v.bodyDigest, r.name);
        return r;
      })
      .finally(() => this.inflight.delete(v.bodyDigest));
    const rule = String(bind.rule);
    try {
      const r = await within(settle, this.deps.config.webhook.ackTimeoutMs);
      if (r === "timeout") {
        settle.then(
          (late) => this.reportLate(req, v, run, via, late, bind),
          (err: unknown) => {
            const msg = "Failed to create CodeRun after acknowledging delivery; redeliver it from the GitHub webhook settings";
            this.count(eventLabel(v.event), Outcomes.error);
            this.logLine(req, { level: "error", obj: { err }, msg }, bind);
          },
        );
        return this.send(req, reply, answerAccepted(v, run.metadata.name!, runs.namespace), bind);
      }
      const decided = answerCreate(v, run, via, r, runs.namespace);
      if (decided.refusal) this.deps.onRefusal?.(decided.refusal);
      return this.send(req, reply, decided.answer, bind);
    } catch (err) {
      return this.send(req, reply, answerCreateFailure(v, rule, err, RETRY_AFTER_SECONDS), bind);
    }
  }

  /** The outcome of a create that finished after the delivery was acknowledged: logs and metrics only. */
  private reportLate(
    req: FastifyRequest,
    v: VerifiedDelivery,
    run: CodeRun,
    via: string,
    late: CreateResult,
    bind: Record<string, unknown>,
  ) {
    this.count(eventLabel(v.event), late.outcome);
    if (late.outcome === "quota") {
      const q = answerQuota(v, late);
      this.logLine(req, q.log, bind);
      if (q.refusal) this.deps.onRefusal?.(q.refusal);
      return;
    }
    if (late.outcome === "busy") {
      const busy = answerBusy(v, run, late.active);
      this.logLine(req, busy.log, bind);
      if (busy.refusal) this.deps.onRefusal?.(busy.refusal);
      return;
    }
    const msg = late.outcome === "created" ? "Created CodeRun after acknowledging delivery" : "Ignored duplicate delivery";
    this.logLine(req, { level: "info", obj: { taskId: run.spec.taskId, by: via }, msg }, bind);
  }

  private count(event: string, outcome: string): void {
    this.deps.metrics.webhookDeliveries.inc({ event, outcome });
  }

  private logLine(req: FastifyRequest, line: LogLine, bind: Record<string, unknown>): void {
    req.log[line.level]({ ...bind, ...line.obj }, line.msg);
  }

  /** Performs an answer: metrics, its log line, then the response. */
  private send(req: FastifyRequest, reply: FastifyReply, a: Answer, bind: Record<string, unknown>): FastifyReply {
    if (a.outcome !== undefined) this.count(a.event, a.outcome);
    if (a.log) this.logLine(req, a.log, bind);
    if ("body" in a) return reply.code(a.status).send(a.body);
    if (a.retryAfterSeconds !== undefined) reply.header("retry-after", String(a.retryAfterSeconds));
    return sendProblem(reply, a.problem.type, a.status, a.problem.detail);
  }
}

/**
 * Registers the receiver in its own scope, where every body, whatever its content type, is read
 * as raw bytes through the signature check (the signature covers the exact body received).
 */
export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookDeps): void {
  const receiver = new Receiver(deps);
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (req: FastifyRequest, stream: IncomingMessage) => receiver.readBody(req, stream));
    scope.addHook("onRequest", (req, reply) => receiver.admit(req, reply));
    for (const path of WEBHOOK_PATHS) scope.post(path, (req, reply) => receiver.handle(req, reply));
  });
}

/** For the app's logger/metrics hooks: is this a webhook route? */
export function isWebhookRoute(url: string | undefined): boolean {
  return url !== undefined && (WEBHOOK_PATHS as readonly string[]).includes(url);
}
