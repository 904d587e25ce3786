/** The termination message: AgentResult JSON within Kubernetes' 4096-byte limit. */
import fs from "node:fs";
import path from "node:path";
import { TERMINATION_MESSAGE_MAX_BYTES } from "../api/runner-contract.js";
import type { AgentResult } from "../api/types.js";

const ELLIPSIS = "…";

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, "utf8");
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * The result as JSON of at most `maxBytes` bytes: the message is shortened (with an ellipsis)
 * until it fits; if even that is not enough, the message is dropped.
 */
export function serializeAgentResult(result: AgentResult, maxBytes: number = TERMINATION_MESSAGE_MAX_BYTES): string {
  const full = JSON.stringify(result);
  if (Buffer.byteLength(full, "utf8") <= maxBytes) return full;
  const message = result.message ?? "";
  const fits = (bytes: number) => {
    const candidate = JSON.stringify({ ...result, message: truncateUtf8(message, bytes) + ELLIPSIS });
    return Buffer.byteLength(candidate, "utf8") <= maxBytes ? candidate : null;
  };
  // JSON escaping can grow the text (quotes, newlines), so search for the longest prefix that fits.
  let lo = 0;
  let hi = Buffer.byteLength(message, "utf8");
  let best = fits(0);
  if (best) {
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const candidate = fits(mid);
      if (candidate) {
        best = candidate;
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }
  const { message: _dropped, ...rest } = result;
  return JSON.stringify(rest);
}

/** Writes the termination message and returns its text. */
export function writeAgentResult(file: string, result: AgentResult): string {
  const text = serializeAgentResult(result);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return text;
}

/** A container's exit code for the run's `result`: 0 for a delivered outcome, 1 otherwise. */
export function exitCodeFor(result: AgentResult): number {
  return result.outcome === "succeeded" || result.outcome === "no-changes" ? 0 : 1;
}
