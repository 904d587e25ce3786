/**
 * Upstream-compatible submission: POST /api/v1/pm/tasks (CodeRequest → CodeRun) and
 * POST /api/v1/pm/docs/generate (DocsRequest → DocsRun). These routes only write intent; the
 * controller creates the Jobs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Labels } from "../../api/constants.js";
import { isActive } from "../../api/predicates.js";
import type { AnyRun, CodeRun } from "../../api/types.js";
import { sendStoreError } from "../../intake/errors.js";
import { buildCodeRunFromRequest, buildDocsRunFromRequest, idempotencyLabelValue, type IntentContext } from "../intent.js";
import { KeyedLock } from "../../util/keyed-lock.js";
import type { RunKind } from "../../intake/store.js";
import { fieldErrors, sendProblem, summarizeFieldErrors } from "../../intake/problem.js";
import { codeRequestSchema, docsRequestSchema } from "../schemas.js";
import { badIdempotencyKey, notAnObject, objectBody, readIdempotencyKey, type RouteContext } from "./context.js";

export function intentContext(ctx: RouteContext, req: FastifyRequest, idempotencyKey: string | undefined): IntentContext {
  return {
    namespace: ctx.runs.namespace,
    defaultCodeModel: ctx.config.models.defaultCodeModel,
    defaultDocsModel: ctx.config.models.defaultDocsModel,
    requestedBy: req.principal?.name ?? "unknown",
    idempotencyKey,
    now: ctx.clock.now(),
    randomHex: ctx.randomHex(),
  };
}

/** 409 when the Idempotency-Key was used before (the object carries its hash as a label). */
export async function findByIdempotencyKey(ctx: RouteContext, kind: RunKind, key: string | undefined): Promise<AnyRun | undefined> {
  if (key === undefined) return undefined;
  const found = await ctx.runs.list(kind, { [Labels.idempotencyKeyHash]: idempotencyLabelValue(key) });
  return found[0];
}

export function duplicateKey(reply: FastifyReply, existing: AnyRun): FastifyReply {
  return sendProblem(reply, "duplicate", 409, `This Idempotency-Key was already used: ${existing.kind} ${existing.metadata.name} was created for it. Use a new key for a new request.`, {
    existing: { kind: existing.kind, name: existing.metadata.name, namespace: existing.metadata.namespace },
  });
}

export function registerSubmitRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const lock = new KeyedLock();

  app.post("/api/v1/pm/tasks", async (req, reply) => {
    const key = readIdempotencyKey(req);
    if (key === null) return badIdempotencyKey(reply);
    const body = objectBody(req);
    if (!body) return notAnObject(reply);
    const parsed = codeRequestSchema.safeParse(body);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      return sendProblem(reply, "validation", 422, `Invalid CodeRequest: ${summarizeFieldErrors(errors)}`, { errors });
    }
    const request = parsed.data;
    const run = buildCodeRunFromRequest(request, intentContext(ctx, req, key));
    const log = req.log.child({ coderun: run.metadata.name, taskId: request.task_id, service: request.service });
    // One submission of a (task, service, version) at a time in this process: the active-run
    // check and the create must not interleave with an identical request.
    const lockKey = `${request.service}/${request.task_id}/${request.context_version}`;
    try {
      return await lock.run(lockKey, async () => {
        const byKey = await findByIdempotencyKey(ctx, "CodeRun", key);
        if (byKey) return duplicateKey(reply, byKey);
        const siblings = (await ctx.runs.list("CodeRun", { service: request.service, "task-id": String(request.task_id) })) as CodeRun[];
        const active = siblings.find((r) => (r.spec.contextVersion ?? 1) === request.context_version && isActive(r));
        if (active) {
          return sendProblem(reply, "duplicate", 409, `CodeRun ${active.metadata.name} for task ${request.task_id}, service ${request.service}, context version ${request.context_version} is still ${active.status?.phase ?? "Pending"}. Wait for it, cancel it (POST /api/v1/runs/coderun/${active.metadata.name}/cancel), or retry it with a new context version.`, {
            existing: { kind: "CodeRun", name: active.metadata.name, namespace: active.metadata.namespace, phase: active.status?.phase ?? "Pending" },
          });
        }
        const created = await ctx.runs.create(run);
        log.info({ model: run.spec.model, contextVersion: run.spec.contextVersion, by: req.principal?.name }, "Created CodeRun");
        reply.header("location", `/api/v1/runs/coderun/${created.metadata.name}`);
        return reply.code(201).send({
          success: true,
          message: "Code task submitted successfully",
          data: {
            coderun_name: created.metadata.name,
            namespace: created.metadata.namespace ?? ctx.runs.namespace,
            task_id: request.task_id,
            service: request.service,
            context_version: request.context_version,
            model: run.spec.model,
          },
        });
      });
    } catch (err) {
      log.warn({ err }, "Failed to create CodeRun");
      return sendStoreError(reply, err, `CodeRun ${run.metadata.name}`);
    }
  });

  app.post("/api/v1/pm/docs/generate", async (req, reply) => {
    const key = readIdempotencyKey(req);
    if (key === null) return badIdempotencyKey(reply);
    const body = objectBody(req);
    if (!body) return notAnObject(reply);
    const parsed = docsRequestSchema.safeParse(body);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      return sendProblem(reply, "validation", 422, `Invalid DocsRequest: ${summarizeFieldErrors(errors)}`, { errors });
    }
    const run = buildDocsRunFromRequest(parsed.data, intentContext(ctx, req, key));
    const log = req.log.child({ docsrun: run.metadata.name });
    try {
      const byKey = await findByIdempotencyKey(ctx, "DocsRun", key);
      if (byKey) return duplicateKey(reply, byKey);
      const created = await ctx.runs.create(run);
      log.info({ model: run.spec.model, by: req.principal?.name }, "Created DocsRun");
      reply.header("location", `/api/v1/runs/docsrun/${created.metadata.name}`);
      return reply.code(201).send({
        success: true,
        message: "Documentation generation job submitted successfully",
        data: {
          docsrun_name: created.metadata.name,
          namespace: created.metadata.namespace ?? ctx.runs.namespace,
          repository_url: run.spec.repositoryUrl,
          model: run.spec.model,
        },
      });
    } catch (err) {
      log.warn({ err }, "Failed to create DocsRun");
      return sendStoreError(reply, err, `DocsRun ${run.metadata.name}`);
    }
  });
}
