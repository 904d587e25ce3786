/** Classifies errors of @kubernetes/client-node calls by their retry meaning. */

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  for (const c of [e?.code, e?.statusCode, e?.response?.statusCode]) if (typeof c === "number") return c;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
/** create() of an existing object: 409 with reason AlreadyExists. */
export const isAlreadyExists = (err: unknown): boolean =>
  statusCode(err) === 409 && /AlreadyExists|already exists/i.test(errorMessage(err));

/** Best human-readable message of an API error (the Status message when present). */
function errorMessage(err: unknown): string {
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
