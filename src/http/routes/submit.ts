/**
 * Upstream-compatible submission: POST /api/v1/pm/tasks (CodeRequest → CodeRun) and
 * POST /api/v1/pm/docs/generate (DocsRequest → DocsRun). These routes only write intent; the
 * controller creates the Jobs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Annotations, Labels } from "../../api/constants.js";
import { isActive } from "../../api/predicates.js";
import type { AnyRun, CodeRun, DocsRun } from "../../api/types.js";
import { sendStoreError } from "../../intake/errors.js";
import { authorizeIntent, labelledSecretsFor, refuseOverQuota } from "../authorize-intent.js";
import { buildCodeRunFromRequest, buildDocsRunFromRequest, idempotencyLabelValue, requestDigest, type IntentContext } from "../intent.js";
import { KeyedLock } from "../../util/keyed-lock.js";
import { isStoreError, type RunKind } from "../../intake/store.js";
import { sendProblem } from "../../intake/problem.js";
import { codeRequestSchema, docsRequestSchema, type CodeRequest } from "../schemas.js";
import { readSubmission, type RouteContext } from "./context.js";

/** `body`: the validated request, fingerprinted with the route and principal for Idempotency-Key replays. */
export function intentContext(ctx: RouteContext, req: FastifyRequest, idempotencyKey: string | undefined, body: unknown): IntentContext {
  const requestedBy = req.principal?.name ?? "unknown";
  return {
    namespace: ctx.runs.namespace,
    defaultCodeModel: ctx.config.models.defaultCodeModel,
    defaultDocsModel: ctx.config.models.defaultDocsModel,
    requestedBy,
    idempotencyKey,
    requestDigest: requestDigest(`${req.method} ${req.url.split("?")[0]}`, requestedBy, body),
    now: ctx.clock.now(),
    randomHex: ctx.randomHex(),
  };
}

/** The run an Idempotency-Key created before, if any (the object carries the key's hash as a label). */
export async function findByIdempotencyKey(ctx: RouteContext, kind: RunKind, key: string | undefined): Promise<AnyRun | undefined> {
  if (key === undefined) return undefined;
  const found = await ctx.runs.list(kind, { [Labels.idempotencyKeyHash]: idempotencyLabelValue(key) });
  return found[0];
}

/**
 * The answer to a repeated Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the
 * original 201, same body and Location, rebuilt from the object the first request created, so a
 * client that lost the response may simply retry. A key reused for a different request is 422.
 */
export function replayCreated(
  reply: FastifyReply,
  existing: AnyRun,
  ctx: IntentContext,
  sendCreated: (run: AnyRun) => FastifyReply,
): FastifyReply {
  const recorded = existing.metadata.annotations?.[Annotations.requestDigest];
  if (recorded !== undefined && recorded !== ctx.requestDigest) {
    return sendProblem(
      reply,
      "keyReused",
      422,
      `This Idempotency-Key was already used for a different request, which created ${existing.kind} ${existing.metadata.name}. Use a new key for a new request.`,
      {
        existing: { kind: existing.kind, name: existing.metadata.name, namespace: existing.metadata.namespace },
      },
    );
  }
  return sendCreated(existing);
}

/**
 * Creates `run` when its requester is within its active-run quota; with an Idempotency-Key, a name already taken (another replica's create of the
 * same key raced the label lookup) is answered like a repeated key.
 */
export async function createOnce(
  ctx: RouteContext,
  reply: FastifyReply,
  run: AnyRun,
  intent: IntentContext,
  sendCreated: (run: AnyRun) => FastifyReply,
): Promise<FastifyReply> {
  if (await refuseOverQuota(reply, ctx.runs, run, ctx.config)) return reply;
  try {
    return sendCreated(await ctx.runs.create(run));
  } catch (err) {
    if (intent.idempotencyKey === undefined || !isStoreError(err, "AlreadyExists")) throw err;
    return replayCreated(reply, await ctx.runs.get(run.kind, run.metadata.name ?? ""), intent, sendCreated);
  }
}

function codeRunCreated(reply: FastifyReply, run: CodeRun, namespace: string): FastifyReply {
  reply.header("location", `/api/v1/runs/coderun/${run.metadata.name}`);
  return reply.code(201).send({
    success: true,
    message: "Code task submitted successfully",
    data: {
      coderun_name: run.metadata.name,
      namespace: run.metadata.namespace ?? namespace,
      task_id: run.spec.taskId,
      service: run.spec.service,
      context_version: run.spec.contextVersion ?? 1,
      model: run.spec.model,
    },
  });
}

function docsRunCreated(reply: FastifyReply, run: DocsRun, namespace: string): FastifyReply {
  reply.header("location", `/api/v1/runs/docsrun/${run.metadata.name}`);
  return reply.code(201).send({
    success: true,
    message: "Documentation generation job submitted successfully",
    data: {
      docsrun_name: run.metadata.name,
      namespace: run.metadata.namespace ?? namespace,
      repository_url: run.spec.repositoryUrl,
      model: run.spec.model,
    },
  });
}

/** The unfinished CodeRun of the same (task, service, context version) among a task's runs: a submission of it is a duplicate. */
export function activeDuplicate(siblings: readonly CodeRun[], contextVersion: number): CodeRun | undefined {
  return siblings.find((r) => (r.spec.contextVersion ?? 1) === contextVersion && isActive(r));
}

function sendDuplicate(reply: FastifyReply, active: CodeRun, request: CodeRequest): FastifyReply {
  const phase = active.status?.phase ?? "Pending";
  return sendProblem(
    reply,
    "duplicate",
    409,
    `CodeRun ${active.metadata.name} for task ${request.task_id}, service ${request.service}, context version ${request.context_version} is still ${phase}. Wait for it, cancel it (POST /api/v1/runs/coderun/${active.metadata.name}/cancel), or retry it with a new context version.`,
    { existing: { kind: "CodeRun", name: active.metadata.name, namespace: active.metadata.namespace, phase } },
  );
}

/** POST /api/v1/pm/tasks. */
async function submitCodeTask(ctx: RouteContext, lock: KeyedLock, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const submission = readSubmission(req, reply, codeRequestSchema, "CodeRequest");
  if (!("data" in submission)) return submission;
  const { key } = submission;
  const request = submission.data;
  const intent = intentContext(ctx, req, key, request);
  const run = buildCodeRunFromRequest(request, intent);
  const labelled = await labelledSecretsFor(ctx.runs, run, ctx.config).catch((err: unknown) => err as Error);
  if (labelled instanceof Error) return sendStoreError(reply, labelled, "The list of mountable Secrets");
  const refused = authorizeIntent(reply, run, req.principal?.name ?? "unknown", ctx.config, labelled);
  if (refused) return refused;
  const sendCreated = (r: AnyRun) => codeRunCreated(reply, r as CodeRun, ctx.runs.namespace);
  const log = req.log.child({ coderun: run.metadata.name, taskId: request.task_id, service: request.service });
  // One submission of a (task, service, version) at a time in this process: the active-run
  // check and the create must not interleave with an identical request.
  const lockKey = `${request.service}/${request.task_id}/${request.context_version}`;
  try {
    return await lock.run(lockKey, async () => {
      const byKey = await findByIdempotencyKey(ctx, "CodeRun", key);
      if (byKey) return replayCreated(reply, byKey, intent, sendCreated);
      const siblings = (await ctx.runs.list("CodeRun", { service: request.service, "task-id": String(request.task_id) })) as CodeRun[];
      const active = activeDuplicate(siblings, request.context_version);
      if (active) return sendDuplicate(reply, active, request);
      const res = await createOnce(ctx, reply, run, intent, sendCreated);
      log.info({ model: run.spec.model, contextVersion: run.spec.contextVersion, by: req.principal?.name }, "Created CodeRun");
      return res;
    });
  } catch (err) {
    log.warn({ err }, "Failed to create CodeRun");
    return sendStoreError(reply, err, `CodeRun ${run.metadata.name}`);
  }
}

/** POST /api/v1/pm/docs/generate. */
async function generateDocs(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const submission = readSubmission(req, reply, docsRequestSchema, "DocsRequest");
  if (!("data" in submission)) return submission;
  const { key } = submission;
  const intent = intentContext(ctx, req, key, submission.data);
  const run = buildDocsRunFromRequest(submission.data, intent);
  const refused = authorizeIntent(reply, run, req.principal?.name ?? "unknown", ctx.config);
  if (refused) return refused;
  const log = req.log.child({ docsrun: run.metadata.name });
  const sendCreated = (r: AnyRun) => docsRunCreated(reply, r as DocsRun, ctx.runs.namespace);
  try {
    const byKey = await findByIdempotencyKey(ctx, "DocsRun", key);
    if (byKey) return replayCreated(reply, byKey, intent, sendCreated);
    const res = await createOnce(ctx, reply, run, intent, sendCreated);
    log.info({ model: run.spec.model, by: req.principal?.name }, "Created DocsRun");
    return res;
  } catch (err) {
    log.warn({ err }, "Failed to create DocsRun");
    return sendStoreError(reply, err, `DocsRun ${run.metadata.name}`);
  }
}

export function registerSubmitRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const lock = new KeyedLock();
  app.post("/api/v1/pm/tasks", (req, reply) => submitCodeTask(ctx, lock, req, reply));
  app.post("/api/v1/pm/docs/generate", (req, reply) => generateDocs(ctx, req, reply));
}
