/**
 * Error responses: one body that is both the upstream ApiResponse (`{success:false, message}`)
 * and an RFC 9457 problem details object (`type, title, status, detail, errors[]`), served as
 * application/problem+json. Clients of the original service read `success`/`message`; generic
 * HTTP tooling reads the problem members.
 */
import type { FastifyReply } from "fastify";
import type { z } from "zod";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";
const TYPE_BASE = "urn:orchestrator:problem:";

/** Problem types this service returns; `type` is `urn:orchestrator:problem:<slug>`. */
export const ProblemTypes = {
  badRequest: { slug: "bad-request", title: "Bad request" },
  validation: { slug: "validation-error", title: "Request validation failed" },
  unauthorized: { slug: "unauthorized", title: "Authentication required" },
  forbidden: { slug: "forbidden", title: "Not allowed" },
  notFound: { slug: "not-found", title: "Not found" },
  conflict: { slug: "conflict", title: "Conflict" },
  duplicate: { slug: "duplicate", title: "Duplicate request" },
  keyReused: { slug: "idempotency-key-reused", title: "Idempotency-Key reused for a different request" },
  notReady: { slug: "not-ready", title: "Not ready yet" },
  tooLarge: { slug: "payload-too-large", title: "Payload too large" },
  tooManyRequests: { slug: "too-many-requests", title: "Too many requests" },
  unsupportedMediaType: { slug: "unsupported-media-type", title: "Unsupported media type" },
  unavailable: { slug: "kubernetes-unavailable", title: "Kubernetes API unavailable" },
  overloaded: { slug: "overloaded", title: "Too many requests being received at once" },
  timeout: { slug: "request-timeout", title: "Request body too slow" },
  logsUnavailable: { slug: "logs-unavailable", title: "Pod log unavailable" },
  disabled: { slug: "not-configured", title: "Not configured" },
  internal: { slug: "internal-error", title: "Internal error" },
} as const;
export type ProblemType = keyof typeof ProblemTypes;

/** One field-level error: `field` is a dotted path, `pointer` a JSON Pointer (URI fragment form, RFC 6901) into the body. */
export interface FieldError {
  field: string;
  pointer: string;
  message: string;
}

export interface Problem {
  success: false;
  message: string;
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export function buildProblem(
  kind: ProblemType,
  status: number,
  detail: string,
  extra: { errors?: FieldError[]; instance?: string; [k: string]: unknown } = {},
): Problem {
  const t = ProblemTypes[kind];
  return { success: false, message: detail, type: TYPE_BASE + t.slug, title: t.title, status, detail, ...extra };
}

/** Sends a problem response; the status line, `status` and the content type always agree. */
export function sendProblem(
  reply: FastifyReply,
  kind: ProblemType,
  status: number,
  detail: string,
  extra: { errors?: FieldError[]; [k: string]: unknown } = {},
): FastifyReply {
  const body = buildProblem(kind, status, detail, { instance: reply.request.url.split("?")[0], ...extra });
  return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** Turns zod issues into field errors with a path the client can act on. */
export function fieldErrors(error: z.ZodError, prefix: readonly (string | number)[] = []): FieldError[] {
  return error.issues.flatMap((issue) => {
    const base = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    // An unknown key is an error of that key, not of the object that holds it.
    const paths = issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...base, k]) : [base];
    return paths.map((path) => ({
      field: path.length ? path.join(".") : "(body)",
      pointer: "#" + path.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join(""),
      message: issue.message,
    }));
  });
}

/** One-line summary of field errors for `message`/`detail`. */
export function summarizeFieldErrors(errors: FieldError[], max = 5): string {
  const shown = errors.slice(0, max).map((e) => `${e.field}: ${e.message}`);
  const more = errors.length > max ? ` (and ${errors.length - max} more)` : "";
  return shown.join("; ") + more;
}
