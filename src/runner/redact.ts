/**
 * Keeps secrets out of logs, errors and the termination message. pino's path redaction covers
 * structured fields; this covers free text (git's stderr, error messages) by replacing every
 * known secret value and any URL credentials.
 */
import { redactUrl } from "./repo-url.js";

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers a secret value; short values are ignored (they would mask ordinary text). */
  add(secret: string | undefined): void {
    const value = secret?.trim();
    if (value && value.length >= 6) this.secrets.add(value);
  }

  scrub(text: string): string {
    let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s:]*(:[^/@\s]*)?@/gi, (m) => redactUrl(m));
    for (const s of this.secrets) out = out.split(s).join("[REDACTED]");
    return out;
  }
}
