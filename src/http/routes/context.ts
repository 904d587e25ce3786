/** What the route modules share; built once by buildApp. */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { Config } from "../../config/schema.js";
import type { Metrics } from "../../observability/metrics.js";
import type { Principal } from "../auth.js";
import type { RunStore } from "../../intake/store.js";
import { fieldErrors, sendProblem, summarizeFieldErrors } from "../../intake/problem.js";
import type { Clock } from "../ports.js";

export interface RouteContext {
  config: Config;
  runs: RunStore;
  clock: Clock;
  /** Random hex for names without an Idempotency-Key. */
  randomHex: () => string;
  metrics: Metrics;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the API's authentication hook. */
    principal?: Principal;
  }
}

export const IDEMPOTENCY_HEADER = "idempotency-key";

/**
 * The Idempotency-Key header: undefined when absent, null when malformed (the route answers 400).
 * Printable ASCII, at most 255 characters (draft-ietf-httpapi-idempotency-key-header).
 */
export function readIdempotencyKey(req: FastifyRequest): string | undefined | null {
  const v = req.headers[IDEMPOTENCY_HEADER];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^[\x20-\x7e]{1,255}$/.test(v)) return null;
  return v;
}

export function badIdempotencyKey(reply: FastifyReply): FastifyReply {
  return sendProblem(reply, "badRequest", 400, "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice).", {
    errors: [{ field: "Idempotency-Key", pointer: "#/headers/idempotency-key", message: "must be 1-255 printable ASCII characters" }],
  });
}

/** The request body, or undefined when it is not a JSON object (absent, array, scalar). */
export function objectBody(req: FastifyRequest): Record<string, unknown> | undefined {
  const b = req.body;
  return b !== null && typeof b === "object" && !Array.isArray(b) && !Buffer.isBuffer(b) ? (b as Record<string, unknown>) : undefined;
}

export function notAnObject(reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    "badRequest",
    400,
    "The request body must be a JSON object sent with Content-Type: application/json. See /openapi.json for the schema.",
  );
}

/**
 * A submission's Idempotency-Key and body checked against `schema`; a malformed key (400), a body
 * that is not an object (400) or one the schema refuses (422, every field's error) is answered
 * here, and the reply is returned instead.
 */
export function readSubmission<T>(
  req: FastifyRequest,
  reply: FastifyReply,
  schema: z.ZodType<T>,
  what: string,
): { key: string | undefined; data: T } | FastifyReply {
  const key = readIdempotencyKey(req);
  if (key === null) return badIdempotencyKey(reply);
  const body = objectBody(req);
  if (!body) return notAnObject(reply);
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const errors = fieldErrors(parsed.error);
    return sendProblem(reply, "validation", 422, `Invalid ${what}: ${summarizeFieldErrors(errors)}`, { errors });
  }
  return { key, data: parsed.data };
}
