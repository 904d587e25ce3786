/** JSON helpers shared by the intake and the controllers. */

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    isPlainObject(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => a.localeCompare(b))) : val,
  );
}

/**
 * A JSON merge patch (RFC 7386) turning `prev` into `next`: nested objects are patched key by
 * key with null for removed keys, arrays and scalars are replaced. Null when nothing changed.
 */
export function computeMergePatch(prev: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> | null {
  const patch: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(prev), ...Object.keys(next)])) {
    const p = prev[k];
    const n = next[k];
    if (n === undefined) {
      if (p !== undefined) patch[k] = null;
    } else if (isPlainObject(p) && isPlainObject(n)) {
      const sub = computeMergePatch(p, n);
      if (sub) patch[k] = sub;
    } else if (canonicalJson(p) !== canonicalJson(n)) {
      patch[k] = n;
    }
  }
  return Object.keys(patch).length > 0 ? patch : null;
}
