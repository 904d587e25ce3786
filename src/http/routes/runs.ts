/**
 * Resource API over CodeRuns and DocsRuns: list, get, cancel, retry, logs. Cancel and retry only
 * write intent (spec.cancel, a new run); the controller acts on it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Annotations, Labels } from "../../api/constants.js";
import { isActive } from "../../api/predicates.js";
import { logContainerName } from "../../api/runner-contract.js";
import type { AnyRun, CodeRun } from "../../api/types.js";
import { sendStoreError } from "../../intake/errors.js";
import { authorizeIntent, labelledSecretsFor } from "../authorize-intent.js";
import { buildRetryRun } from "../intent.js";
import { RunKinds, isStoreError, type RunKind } from "../../intake/store.js";
import { fieldErrors, sendProblem, summarizeFieldErrors } from "../../intake/problem.js";
import { listQuerySchema, logsQuerySchema, retryRequestSchema, runParamsSchema } from "../schemas.js";
import { badIdempotencyKey, readIdempotencyKey, type RouteContext } from "./context.js";
import { createOnce, findByIdempotencyKey, intentContext, replayCreated } from "./submit.js";

/** The object as returned to clients: managedFields are noise for API users. */
function present(run: AnyRun): AnyRun {
  const metadata = { ...run.metadata } as AnyRun["metadata"] & { managedFields?: unknown };
  delete metadata.managedFields;
  return { ...run, metadata } as AnyRun;
}

const lower = (k: RunKind) => k.toLowerCase();

/** The 201 of a retry, from the run it created (also when replayed for a repeated Idempotency-Key). */
function retryCreated(reply: FastifyReply, run: AnyRun, namespace: string): FastifyReply {
  const retryOf = run.metadata.annotations?.[Annotations.retryOf] ?? "";
  reply.header("location", `/api/v1/runs/${lower(run.kind)}/${run.metadata.name}`);
  const nameKey = run.kind === "CodeRun" ? "coderun_name" : "docsrun_name";
  return reply.code(201).send({
    success: true,
    message: `Retry of ${run.kind} ${retryOf} submitted successfully`,
    data: {
      [nameKey]: run.metadata.name,
      namespace,
      retry_of: retryOf,
      ...(run.kind === "CodeRun" ? { context_version: run.spec.contextVersion ?? 1 } : {}),
    },
  });
}

function parseParams(req: FastifyRequest, reply: FastifyReply): { kind: RunKind; name: string } | undefined {
  const parsed = runParamsSchema.safeParse(req.params);
  if (parsed.success) return parsed.data;
  const errors = fieldErrors(parsed.error, ["path"]);
  sendProblem(reply, "badRequest", 400, `Invalid path: ${summarizeFieldErrors(errors)}`, { errors });
  return undefined;
}

export function registerRunRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get("/api/v1/runs", async (req, reply) => {
    const parsed = listQuerySchema.safeParse(req.query);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error, ["query"]);
      return sendProblem(reply, "badRequest", 400, `Invalid query: ${summarizeFieldErrors(errors)}`, { errors });
    }
    const q = parsed.data;
    const kinds: readonly RunKind[] = q.kind ? [q.kind] : RunKinds;
    const labels: Record<string, string> = {};
    if (q.service) labels[Labels.service] = q.service;
    if (q.task) labels[Labels.taskId] = q.task;
    try {
      const lists = await Promise.all(kinds.map((k) => ctx.runs.list(k, labels)));
      const items = lists
        .flat()
        .filter((r) => !q.phase || (r.status?.phase ?? "Pending") === q.phase)
        .sort(
          (a, b) =>
            (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
            (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
        )
        .map(present);
      return { success: true, message: `${items.length} run(s)`, data: { namespace: ctx.runs.namespace, items } };
    } catch (err) {
      return sendStoreError(reply, err, "the run list");
    }
  });

  app.get("/api/v1/runs/:kind/:name", async (req, reply) => {
    const p = parseParams(req, reply);
    if (!p) return reply;
    try {
      const run = await ctx.runs.get(p.kind, p.name);
      return { success: true, message: `${run.kind} ${p.name}`, data: present(run) };
    } catch (err) {
      return sendStoreError(reply, err, `${p.kind} ${p.name}`);
    }
  });

  app.post("/api/v1/runs/:kind/:name/cancel", async (req, reply) => {
    const p = parseParams(req, reply);
    if (!p) return reply;
    try {
      const run = await ctx.runs.get(p.kind, p.name);
      const phase = run.status?.phase ?? "Pending";
      if (!isActive(run)) {
        return sendProblem(reply, "conflict", 409, `${p.kind} ${p.name} already finished (phase ${phase}); there is nothing to cancel.`, {
          phase,
        });
      }
      if (run.spec.cancel !== true) await ctx.runs.patchSpec(p.kind, p.name, { cancel: true });
      req.log.info({ [lower(p.kind)]: p.name, by: req.principal?.name }, `Requested cancel of ${p.kind}`);
      return reply.code(202).send({
        success: true,
        message: `Cancel requested; the controller stops ${p.kind} ${p.name} and sets its phase to Cancelled.`,
        data: { kind: p.kind, name: p.name, namespace: ctx.runs.namespace, phase, cancel: true },
      });
    } catch (err) {
      return sendStoreError(reply, err, `${p.kind} ${p.name}`);
    }
  });

  app.post("/api/v1/runs/:kind/:name/retry", async (req, reply) => {
    const p = parseParams(req, reply);
    if (!p) return reply;
    const key = readIdempotencyKey(req);
    if (key === null) return badIdempotencyKey(reply);
    const raw = req.body ?? {};
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      return sendProblem(reply, "badRequest", 400, "The request body must be a JSON object (or empty).");
    }
    const parsed = retryRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      return sendProblem(reply, "validation", 422, `Invalid retry request: ${summarizeFieldErrors(errors)}`, { errors });
    }
    if (p.kind === "DocsRun" && parsed.data.prompt_modification !== undefined) {
      return sendProblem(reply, "validation", 422, "prompt_modification applies to CodeRuns only.", {
        errors: [{ field: "prompt_modification", pointer: "#/prompt_modification", message: "not supported for DocsRun" }],
      });
    }
    try {
      const source = await ctx.runs.get(p.kind, p.name);
      if (isActive(source)) {
        return sendProblem(
          reply,
          "conflict",
          409,
          `${p.kind} ${p.name} has not finished (phase ${source.status?.phase ?? "Pending"}); only a finished run can be retried. Cancel it first if you want to start over.`,
          {
            phase: source.status?.phase ?? "Pending",
          },
        );
      }
      const intent = intentContext(ctx, req, key, parsed.data);
      const sendCreated = (r: AnyRun) => retryCreated(reply, r, ctx.runs.namespace);
      const byKey = await findByIdempotencyKey(ctx, p.kind, key);
      if (byKey) return replayCreated(reply, byKey, intent, sendCreated);
      let contextVersion = 1;
      if (source.kind === "CodeRun") {
        // The next version after every run of this task and service, not just after the source,
        // so retrying an older run cannot reuse a version that already names Jobs.
        const siblings = (await ctx.runs.list("CodeRun", {
          [Labels.service]: source.spec.service,
          [Labels.taskId]: String(source.spec.taskId),
        })) as CodeRun[];
        const active = siblings.find((r) => r.metadata.name !== source.metadata.name && isActive(r));
        if (active) {
          return sendProblem(
            reply,
            "conflict",
            409,
            `CodeRun ${active.metadata.name} of task ${source.spec.taskId} for service ${source.spec.service} is still ${active.status?.phase ?? "Pending"}; wait for it or cancel it before retrying.`,
            {
              existing: { kind: "CodeRun", name: active.metadata.name, phase: active.status?.phase ?? "Pending" },
            },
          );
        }
        contextVersion = Math.max(source.spec.contextVersion ?? 1, ...siblings.map((r) => r.spec.contextVersion ?? 1)) + 1;
      }
      const run = buildRetryRun(source, { contextVersion, promptModification: parsed.data.prompt_modification }, intent);
      // A retry is a new request by whoever asks now: decided for them, not for the source's requester.
      const labelled = await labelledSecretsFor(ctx.runs, run, ctx.config);
      const refused = authorizeIntent(reply, run, req.principal?.name ?? "unknown", ctx.config, labelled);
      if (refused) return refused;
      const res = await createOnce(ctx, reply, run, intent, sendCreated);
      req.log.info(
        { [lower(p.kind)]: run.metadata.name, retryOf: p.name, contextVersion, by: req.principal?.name },
        `Created ${p.kind} retry`,
      );
      return res;
    } catch (err) {
      return sendStoreError(reply, err, `${p.kind} ${p.name}`);
    }
  });

  app.get("/api/v1/runs/:kind/:name/logs", async (req, reply) => {
    const p = parseParams(req, reply);
    if (!p) return reply;
    const q = logsQuerySchema.safeParse(req.query);
    if (!q.success) {
      const errors = fieldErrors(q.error, ["query"]);
      return sendProblem(reply, "badRequest", 400, `Invalid query: ${summarizeFieldErrors(errors)}`, { errors });
    }
    let jobName: string;
    let cluster: string | undefined;
    try {
      const run = await ctx.runs.get(p.kind, p.name);
      cluster = run.status?.cluster;
      const job = run.status?.jobName;
      if (!job) {
        return sendProblem(
          reply,
          "notFound",
          404,
          `${p.kind} ${p.name} has no Job yet (phase ${run.status?.phase ?? "Pending"}); logs are available once the controller has started its Job. Retry in a few seconds.`,
        );
      }
      jobName = job;
    } catch (err) {
      return sendStoreError(reply, err, `${p.kind} ${p.name}`);
    }
    try {
      const abort = new AbortController();
      // The response closes when the stream ends or the client goes away; either way stop following.
      reply.raw.on("close", () => abort.abort());
      const stream = await ctx.runs.openJobLogs(jobName, {
        follow: q.data.follow === "true" || q.data.follow === "1",
        tailLines: q.data.tail_lines !== undefined ? Number(q.data.tail_lines) : undefined,
        container: logContainerName(p.kind, q.data.container),
        signal: abort.signal,
        ...(cluster ? { cluster } : {}),
      });
      stream.on("error", (err) => req.log.warn({ err, job: jobName }, "Log stream of Job failed"));
      return reply.code(200).type("text/plain; charset=utf-8").header("x-job-name", jobName).send(stream);
    } catch (err) {
      if (isStoreError(err, "NotFound")) {
        return sendProblem(
          reply,
          "notFound",
          404,
          `Job ${jobName} of ${p.kind} ${p.name} has no pod yet (${err.message}). Retry in a few seconds.`,
        );
      }
      if (isStoreError(err, "NotReady")) {
        return sendProblem(
          reply,
          "notReady",
          409,
          `The pod of Job ${jobName} has not started its container yet (${err.message}). Retry in a few seconds.`,
        );
      }
      // The API server answered, but could not fetch the log from the pod's node (its kubelet).
      if (isStoreError(err, "Unavailable") && /^HTTP 5\d\d:/.test(err.message)) {
        return sendProblem(
          reply,
          "logsUnavailable",
          502,
          `The Kubernetes API server could not read the log of Job ${jobName} from its node (${err.message}). Check that the node's kubelet is reachable from the API server; pods on simulated (kwok) nodes have no logs.`,
        );
      }
      return sendStoreError(reply, err, `the logs of ${p.kind} ${p.name}`);
    }
  });
}
