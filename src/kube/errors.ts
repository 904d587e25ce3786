/** Classifies errors of @kubernetes/client-node calls by their retry meaning. */

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const c of [e?.code, e?.statusCode, e?.response?.statusCode]) if (typeof c === "number") return c;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
/** create() of an existing object: 409 with reason AlreadyExists. */
export const isAlreadyExists = (err: unknown): boolean => statusCode(err) === 409 && /AlreadyExists|already exists/i.test(errorMessage(err));
export const isForbidden = (err: unknown): boolean => statusCode(err) === 403;
export const isInvalid = (err: unknown): boolean => statusCode(err) === 422;

/** The API server could not be reached (connection refused, reset, DNS, timeout) or is overloaded. */
export function isUnavailable(err: unknown): boolean {
  const code = statusCode(err);
  if (code === 503 || code === 504 || code === 429) return true;
  if (code !== undefined) return false;
  const text = `${(err as Error)?.message ?? ""} ${String((err as { cause?: { code?: string } })?.cause?.code ?? "")}`;
  return /ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|EPIPE|socket hang up|fetch failed|network|UND_ERR/i.test(text);
}

/** Best human-readable message of an API error (the Status message when present). */
export function errorMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  let body = e?.body;
  if (typeof body === "string") {
    const text: string = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text || e?.message || String(err);
    }
  }
  const msg = (body as { message?: string } | undefined)?.message;
  return msg || e?.message || String(err);
}
