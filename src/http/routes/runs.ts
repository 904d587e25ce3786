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
import { listQuerySchema, logsQuerySchema, retryRequestSchema, runParamsSchema, type RetryRequest } from "../schemas.js";
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

/** GET /api/v1/runs: both kinds (or one), filtered by service, task and phase, newest first. */
async function listRuns(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
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
}

async function getRun(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = parseParams(req, reply);
  if (!p) return reply;
  try {
    const run = await ctx.runs.get(p.kind, p.name);
    return { success: true, message: `${run.kind} ${p.name}`, data: present(run) };
  } catch (err) {
    return sendStoreError(reply, err, `${p.kind} ${p.name}`);
  }
}

/** POST .../cancel: sets spec.cancel; the controller stops the run. */
async function cancelRun(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
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
}

/** The retry request's body, or undefined once a problem was sent. */
function parseRetryBody(kind: RunKind, req: FastifyRequest, reply: FastifyReply): RetryRequest | undefined {
  const raw = req.body ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    sendProblem(reply, "badRequest", 400, "The request body must be a JSON object (or empty).");
    return undefined;
  }
  const parsed = retryRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const errors = fieldErrors(parsed.error);
    sendProblem(reply, "validation", 422, `Invalid retry request: ${summarizeFieldErrors(errors)}`, { errors });
    return undefined;
  }
  if (kind === "DocsRun" && parsed.data.prompt_modification !== undefined) {
    sendProblem(reply, "validation", 422, "prompt_modification applies to CodeRuns only.", {
      errors: [{ field: "prompt_modification", pointer: "#/prompt_modification", message: "not supported for DocsRun" }],
    });
    return undefined;
  }
  return parsed.data;
}

/**
 * The context version of a CodeRun's retry: the next after every run of its task and service,
 * not just after the source, so retrying an older run cannot reuse a version that already names
 * Jobs. Or the sibling that is still active, which blocks the retry.
 */
export function retryVersion(source: CodeRun, siblings: readonly CodeRun[]): { contextVersion: number } | { active: CodeRun } {
  const active = siblings.find((r) => r.metadata.name !== source.metadata.name && isActive(r));
  if (active) return { active };
  return { contextVersion: Math.max(source.spec.contextVersion ?? 1, ...siblings.map((r) => r.spec.contextVersion ?? 1)) + 1 };
}

/** The retry's context version (1 for a DocsRun), or undefined once a conflict was sent. */
async function nextContextVersion(ctx: RouteContext, source: AnyRun, reply: FastifyReply): Promise<number | undefined> {
  if (source.kind !== "CodeRun") return 1;
  const siblings = (await ctx.runs.list("CodeRun", {
    [Labels.service]: source.spec.service,
    [Labels.taskId]: String(source.spec.taskId),
  })) as CodeRun[];
  const v = retryVersion(source, siblings);
  if ("contextVersion" in v) return v.contextVersion;
  const phase = v.active.status?.phase ?? "Pending";
  sendProblem(
    reply,
    "conflict",
    409,
    `CodeRun ${v.active.metadata.name} of task ${source.spec.taskId} for service ${source.spec.service} is still ${phase}; wait for it or cancel it before retrying.`,
    { existing: { kind: "CodeRun", name: v.active.metadata.name, phase } },
  );
  return undefined;
}

/** POST .../retry: a new run from a finished one (CodeRun: the next context version). */
async function retryRun(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = parseParams(req, reply);
  if (!p) return reply;
  const key = readIdempotencyKey(req);
  if (key === null) return badIdempotencyKey(reply);
  const body = parseRetryBody(p.kind, req, reply);
  if (!body) return reply;
  try {
    const source = await ctx.runs.get(p.kind, p.name);
    if (isActive(source)) {
      const phase = source.status?.phase ?? "Pending";
      return sendProblem(
        reply,
        "conflict",
        409,
        `${p.kind} ${p.name} has not finished (phase ${phase}); only a finished run can be retried. Cancel it first if you want to start over.`,
        { phase },
      );
    }
    const intent = intentContext(ctx, req, key, body);
    const sendCreated = (r: AnyRun) => retryCreated(reply, r, ctx.runs.namespace);
    const byKey = await findByIdempotencyKey(ctx, p.kind, key);
    if (byKey) return replayCreated(reply, byKey, intent, sendCreated);
    const contextVersion = await nextContextVersion(ctx, source, reply);
    if (contextVersion === undefined) return reply;
    const run = buildRetryRun(source, { contextVersion, promptModification: body.prompt_modification }, intent);
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
}

/** The problem for a failed log read that has a more useful answer than the store's error. */
export function logsProblem(
  err: unknown,
  jobName: string,
  what: string,
): { problem: "notFound" | "notReady" | "logsUnavailable"; status: number; message: string } | undefined {
  if (isStoreError(err, "NotFound"))
    return {
      problem: "notFound",
      status: 404,
      message: `Job ${jobName} of ${what} has no pod yet (${err.message}). Retry in a few seconds.`,
    };
  if (isStoreError(err, "NotReady"))
    return {
      problem: "notReady",
      status: 409,
      message: `The pod of Job ${jobName} has not started its container yet (${err.message}). Retry in a few seconds.`,
    };
  // The API server answered, but could not fetch the log from the pod's node (its kubelet).
  if (isStoreError(err, "Unavailable") && /^HTTP 5\d\d:/.test(err.message))
    return {
      problem: "logsUnavailable",
      status: 502,
      message: `The Kubernetes API server could not read the log of Job ${jobName} from its node (${err.message}). Check that the node's kubelet is reachable from the API server; pods on simulated (kwok) nodes have no logs.`,
    };
  return undefined;
}

/** The run's current Job and the cluster it runs in, or undefined once a problem was sent. */
async function currentJob(
  ctx: RouteContext,
  p: { kind: RunKind; name: string },
  reply: FastifyReply,
): Promise<{ jobName: string; cluster: string | undefined } | undefined> {
  try {
    const run = await ctx.runs.get(p.kind, p.name);
    const job = run.status?.jobName;
    if (job) return { jobName: job, cluster: run.status?.cluster };
    sendProblem(
      reply,
      "notFound",
      404,
      `${p.kind} ${p.name} has no Job yet (phase ${run.status?.phase ?? "Pending"}); logs are available once the controller has started its Job. Retry in a few seconds.`,
    );
  } catch (err) {
    sendStoreError(reply, err, `${p.kind} ${p.name}`);
  }
  return undefined;
}

/** GET .../logs: the current Job's pod log (text; follow streams). */
async function runLogs(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = parseParams(req, reply);
  if (!p) return reply;
  const q = logsQuerySchema.safeParse(req.query);
  if (!q.success) {
    const errors = fieldErrors(q.error, ["query"]);
    return sendProblem(reply, "badRequest", 400, `Invalid query: ${summarizeFieldErrors(errors)}`, { errors });
  }
  const current = await currentJob(ctx, p, reply);
  if (current === undefined) return reply;
  const { jobName, cluster } = current;
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
    const problem = logsProblem(err, jobName, `${p.kind} ${p.name}`);
    if (problem) return sendProblem(reply, problem.problem, problem.status, problem.message);
    return sendStoreError(reply, err, `the logs of ${p.kind} ${p.name}`);
  }
}

export function registerRunRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get("/api/v1/runs", (req, reply) => listRuns(ctx, req, reply));
  app.get("/api/v1/runs/:kind/:name", (req, reply) => getRun(ctx, req, reply));
  app.post("/api/v1/runs/:kind/:name/cancel", (req, reply) => cancelRun(ctx, req, reply));
  app.post("/api/v1/runs/:kind/:name/retry", (req, reply) => retryRun(ctx, req, reply));
  app.get("/api/v1/runs/:kind/:name/logs", (req, reply) => runLogs(ctx, req, reply));
}
