/**
 * GitHub webhook signatures (X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body).
 * The HMAC is computed over the exact bytes received, never over re-serialized JSON.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

/** The header value GitHub would send for this body and secret. */
export function signPayload(secret: string, body: Buffer | string): string {
  return "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * True when the signature header matches the body under any of the secrets (two during a
 * rotation). Each comparison is constant-time (timingSafeEqual over the 32-byte digests) and every
 * secret is tried, so the timing says nothing about which secret or how many bytes matched.
 */
export function verifySignature(body: Buffer, header: unknown, secrets: readonly string[]): boolean {
  if (typeof header !== "string") return false;
  const m = SIGNATURE.exec(header);
  if (!m) return false;
  const given = Buffer.from(m[1]!, "hex");
  let ok = false;
  for (const secret of secrets) {
    if (!secret) continue;
    const expected = createHmac("sha256", secret).update(body).digest();
    if (timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}
