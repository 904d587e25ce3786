/**
 * The intake's half of the authorization model (docs/security.md): before a run is written, the
 * authenticated principal must be allowed everything it asks for, within its quotas; the run then
 * carries the requester and a digest of what was authorized, which the reconciler checks again.
 */
import type { FastifyReply } from "fastify";
import { Annotations } from "../api/constants.js";
import type { AnyRun } from "../api/types.js";
import {
  AuthzReasons,
  authorizeRun,
  buildAuthzAnnotations,
  checkSpecSize,
  requesterLabel,
  runRequestOf,
  type AuthzConfig,
} from "../authz/authorize.js";
import { sendProblem } from "../intake/problem.js";
import { listActiveRunsOf } from "../intake/quota.js";
import type { RunStore } from "../intake/store.js";

/** Seconds a client over its active-run quota is told to wait: runs take minutes. */
const QUOTA_RETRY_AFTER_SECONDS = 60;

/**
 * Stamps `run` with its requester when allowed and returns null; otherwise sends 422 (a shape
 * no requester may ask for), 403 (this requester may not) or 413 (spec over its size quota) and
 * returns the reply.
 */
export function authorizeIntent(
  reply: FastifyReply,
  run: AnyRun,
  requester: string,
  config: AuthzConfig,
  labelled?: ReadonlySet<string>,
): FastifyReply | null {
  const decision = checkSpecSize(run.spec, config) ?? authorizeRun(runRequestOf(run), requester, config, labelled);
  if (!decision.allowed) {
    const [type, status] =
      decision.reason === AuthzReasons.QuotaExceeded
        ? (["tooLarge", 413] as const)
        : decision.reason === AuthzReasons.NotAuthorized
          ? (["forbidden", 403] as const)
          : (["validation", 422] as const);
    return sendProblem(reply, type, status, decision.message, { reason: decision.reason, field: decision.field });
  }
  run.metadata.annotations = { ...run.metadata.annotations, ...buildAuthzAnnotations(requester, run.spec) };
  run.metadata.labels = { ...run.metadata.labels, ...requesterLabel(requester) };
  return null;
}

/** The Secrets labelled mountable, read only when the run mounts one the config does not list. */
export async function labelledSecretsFor(runs: RunStore, run: AnyRun, config: AuthzConfig): Promise<ReadonlySet<string>> {
  const mounts = run.kind === "CodeRun" ? (run.spec.envFromSecrets ?? []) : [];
  if (mounts.every((e) => config.authorization.mountableSecrets.includes(e.secretName))) return new Set();
  return new Set(await runs.listMountableSecrets());
}

/**
 * Sends 429 and returns true when the run's requester (stamped by authorizeIntent) already has
 * authorization.quotas.maxActiveRuns runs that have not finished. (A boolean, not the reply: an
 * async function cannot return a FastifyReply, which is a thenable.)
 */
export async function refuseOverQuota(reply: FastifyReply, runs: RunStore, run: AnyRun, config: AuthzConfig): Promise<boolean> {
  const requester = run.metadata.annotations?.[Annotations.requester];
  if (requester === undefined) return false;
  const active = await listActiveRunsOf(runs, requester);
  const max = config.authorization.quotas.maxActiveRuns;
  if (active.length < max) return false;
  reply.header("retry-after", String(QUOTA_RETRY_AFTER_SECONDS));
  sendProblem(
    reply,
    "tooManyRequests",
    429,
    `${requester} has ${active.length} runs that have not finished; authorization.quotas.maxActiveRuns allows ${max}. Wait for one to finish or cancel one (POST /api/v1/runs/{kind}/{name}/cancel), then submit again.`,
    { reason: AuthzReasons.QuotaExceeded, active: active.map((r) => ({ kind: r.kind, name: r.metadata.name })) },
  );
  return true;
}
