/**
 * Play API: start (create a Play), list, get, cancel (spec.cancel=true). Intent only: the Play
 * controller creates the stage CodeRuns. Without a PlayStore (Plays disabled) every route
 * answers 503 with what to configure.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Play } from "../../api/play.js";
import { sendStoreError } from "../../intake/errors.js";
import { buildPlayFromRequest } from "../intent.js";
import type { PlayStore } from "../../intake/store.js";
import { fieldErrors, sendProblem, summarizeFieldErrors } from "../../intake/problem.js";
import { playListQuerySchema, playParamsSchema, playRequestSchema } from "../schemas.js";
import { readSubmission, type RouteContext } from "./context.js";
import { intentContext } from "./submit.js";

function present(play: Play): Play {
  const metadata = { ...play.metadata } as Play["metadata"] & { managedFields?: unknown };
  delete metadata.managedFields;
  return { ...play, metadata };
}

const phaseOf = (p: Play) => p.status?.phase ?? "Pending";

function parseName(req: FastifyRequest, reply: FastifyReply): string | undefined {
  const parsed = playParamsSchema.safeParse(req.params);
  if (parsed.success) return parsed.data.name;
  const errors = fieldErrors(parsed.error, ["path"]);
  sendProblem(reply, "badRequest", 400, `Invalid path: ${summarizeFieldErrors(errors)}`, { errors });
  return undefined;
}

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** POST /api/v1/plays: validates the request and creates the Play (intent only). */
function startPlay(ctx: RouteContext, store: PlayStore): Handler {
  return async (req, reply) => {
    const submission = readSubmission(req, reply, playRequestSchema, "Play request");
    if (!("data" in submission)) return submission;
    const { key } = submission;
    const play = buildPlayFromRequest(submission.data, intentContext(ctx, req, key, submission.data));
    try {
      const created = await store.create(play);
      req.log.info({ play: created.metadata.name, tasks: play.spec.tasks, by: req.principal?.name }, "Created Play");
      reply.header("location", `/api/v1/plays/${created.metadata.name}`);
      return reply.code(201).send({
        success: true,
        message: "Play started successfully",
        data: { play_name: created.metadata.name, namespace: store.namespace, service: play.spec.service, tasks: play.spec.tasks },
      });
    } catch (err) {
      return sendStoreError(reply, err, `Play ${play.metadata.name}`);
    }
  };
}

/** GET /api/v1/plays: newest first, filtered by service and phase. */
function listPlays(store: PlayStore): Handler {
  return async (req, reply) => {
    const parsed = playListQuerySchema.safeParse(req.query);
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error, ["query"]);
      return sendProblem(reply, "badRequest", 400, `Invalid query: ${summarizeFieldErrors(errors)}`, { errors });
    }
    const { service, phase } = parsed.data;
    try {
      const items = (await store.list())
        .filter((p) => (!service || p.spec.service === service) && (!phase || phaseOf(p) === phase))
        .sort(
          (a, b) =>
            (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
            (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
        )
        .map(present);
      return { success: true, message: `${items.length} play(s)`, data: { namespace: store.namespace, items } };
    } catch (err) {
      return sendStoreError(reply, err, "the Play list");
    }
  };
}

/** GET /api/v1/plays/:name. */
function getPlay(store: PlayStore): Handler {
  return async (req, reply) => {
    const name = parseName(req, reply);
    if (!name) return reply;
    try {
      return { success: true, message: `Play ${name}`, data: present(await store.get(name)) };
    } catch (err) {
      return sendStoreError(reply, err, `Play ${name}`);
    }
  };
}

/** POST /api/v1/plays/:name/cancel: sets spec.cancel; the Play controller stops the stage runs. */
function cancelPlay(store: PlayStore): Handler {
  return async (req, reply) => {
    const name = parseName(req, reply);
    if (!name) return reply;
    try {
      const play = await store.get(name);
      // A Failed Play can still be resumed by a spec change, so cancelling it is meaningful.
      if (phaseOf(play) === "Succeeded" || phaseOf(play) === "Cancelled") {
        return sendProblem(reply, "conflict", 409, `Play ${name} already finished (phase ${phaseOf(play)}); there is nothing to cancel.`, {
          phase: phaseOf(play),
        });
      }
      if (play.spec.cancel !== true) await store.patchSpec(name, { cancel: true });
      req.log.info({ play: name, by: req.principal?.name }, "Requested cancel of Play");
      return reply.code(202).send({
        success: true,
        message: `Cancel requested; the Play controller cancels the stage runs of Play ${name} and sets its phase to Cancelled.`,
        data: { kind: "Play", name, namespace: store.namespace, phase: phaseOf(play), cancel: true },
      });
    } catch (err) {
      return sendStoreError(reply, err, `Play ${name}`);
    }
  };
}

export function registerPlayRoutes(app: FastifyInstance, ctx: RouteContext, store: PlayStore | undefined): void {
  // Without a PlayStore every route answers 503 with what to configure.
  const route = (make: (store: PlayStore) => Handler): Handler =>
    store
      ? make(store)
      : async (_req, reply) =>
          sendProblem(
            reply,
            "disabled",
            503,
            "Plays are disabled on this orchestrator: set play.enabled and controller.enabled to true in its config (Helm: values play.enabled) and restart.",
          );
  app.post(
    "/api/v1/plays",
    route((s) => startPlay(ctx, s)),
  );
  app.get("/api/v1/plays", route(listPlays));
  app.get("/api/v1/plays/:name", route(getPlay));
  app.post("/api/v1/plays/:name/cancel", route(cancelPlay));
}
