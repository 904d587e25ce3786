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

/** The 32-byte digest a well-formed X-Hub-Signature-256 header names, or undefined. */
export function parseSignatureHeader(header: unknown): Buffer | undefined {
  if (typeof header !== "string") return undefined;
  const m = SIGNATURE.exec(header);
  return m ? Buffer.from(m[1]!, "hex") : undefined;
}

/** Checks a signature over a body that arrives in chunks, so the body need not be kept to check it. */
export interface SignatureCheck {
  update(chunk: Buffer): void;
  /** True when the header matches the bytes seen under any of the secrets. */
  matches(): boolean;
}

/**
 * Each comparison is constant-time (timingSafeEqual over the 32-byte digests) and every secret
 * (two during a rotation) is tried, so the timing says nothing about which secret or how many
 * bytes matched. A missing or malformed header never matches.
 */
export function createSignatureCheck(header: unknown, secrets: readonly string[]): SignatureCheck {
  const given = parseSignatureHeader(header);
  const hmacs = given ? secrets.filter(Boolean).map((s) => createHmac("sha256", s)) : [];
  return {
    update: (chunk) => hmacs.forEach((h) => h.update(chunk)),
    matches: () => {
      let ok = false;
      for (const h of hmacs) if (timingSafeEqual(h.digest(), given!)) ok = true;
      return ok;
    },
  };
}

/** True when the signature header matches the body under any of the secrets. */
export function verifySignature(body: Buffer, header: unknown, secrets: readonly string[]): boolean {
  const check = createSignatureCheck(header, secrets);
  check.update(body);
  return check.matches();
}
