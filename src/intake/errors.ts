/** Maps RunStore failures to HTTP problems, with a message that says what to do next. */
import type { FastifyReply } from "fastify";
import { RunStoreError } from "./store.js";
import { sendProblem, type FieldError } from "./problem.js";

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 5;

export function sendStoreError(reply: FastifyReply, err: unknown, what: string): FastifyReply {
  if (!(err instanceof RunStoreError)) throw err;
  switch (err.reason) {
    case "NotFound":
      return sendProblem(reply, "notFound", 404, `${what} was not found: ${err.message}`);
    case "AlreadyExists":
      return sendProblem(reply, "duplicate", 409, `${what} already exists: ${err.message}`);
    case "Invalid": {
      const errors: FieldError[] = err.causes.map((c) => ({
        field: c.field ?? "(object)",
        pointer: "#/" + (c.field ?? "").replace(/\./g, "/"),
        message: c.message,
      }));
      return sendProblem(reply, "validation", 422, `The Kubernetes API server rejected ${what}: ${err.message}`, { errors });
    }
    case "Conflict":
      return sendProblem(
        reply,
        "conflict",
        409,
        `${what} was changed by someone else at the same time (${err.message}). Read it again and retry.`,
      );
    case "NotReady":
      return sendProblem(reply, "notReady", 409, `${err.message}. Retry in a few seconds.`);
    case "Unavailable":
      reply.header("retry-after", String(RETRY_AFTER_SECONDS));
      return sendProblem(
        reply,
        "unavailable",
        503,
        `The Kubernetes API server is unreachable (${err.message}). Nothing was changed; retry in ${RETRY_AFTER_SECONDS} s.`,
      );
    case "Forbidden":
      return sendProblem(
        reply,
        "internal",
        500,
        `The orchestrator's ServiceAccount was refused by the Kubernetes API (${err.message}). An operator must fix its RBAC (the chart's Role) or kubeconfig.`,
      );
  }
}
