/**
 * The intake's half of the authorization model (docs/security.md): before a run is written, the
 * authenticated principal must be allowed everything it asks for; the run then carries the
 * requester and a digest of what was authorized, which the reconciler checks again.
 */
import type { FastifyReply } from "fastify";
import type { AnyRun } from "../api/types.js";
import { AuthzReasons, authorizeRun, buildAuthzAnnotations, runRequestOf, type AuthzConfig } from "../authz/authorize.js";
import { sendProblem } from "../intake/problem.js";

/**
 * Stamps `run` with its requester when allowed and returns null; otherwise sends 422 (a shape
 * no requester may ask for) or 403 (this requester may not) and returns the reply.
 */
export function authorizeIntent(reply: FastifyReply, run: AnyRun, requester: string, config: AuthzConfig): FastifyReply | null {
  const decision = authorizeRun(runRequestOf(run), requester, config);
  if (!decision.allowed) {
    const forbidden = decision.reason === AuthzReasons.NotAuthorized;
    return sendProblem(reply, forbidden ? "forbidden" : "validation", forbidden ? 403 : 422, decision.message, {
      reason: decision.reason,
      field: decision.field,
    });
  }
  run.metadata.annotations = { ...run.metadata.annotations, ...buildAuthzAnnotations(requester, run.spec) };
  return null;
}
