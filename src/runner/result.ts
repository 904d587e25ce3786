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
  const withoutMessage = { ...result, message: "" };
  const overhead = Buffer.byteLength(JSON.stringify(withoutMessage), "utf8");
  const message = result.message ?? "";
  // JSON escaping can grow the text (quotes, control characters): shrink until it fits.
  let budget = maxBytes - overhead - Buffer.byteLength(ELLIPSIS, "utf8");
  while (budget > 0) {
    const candidate = JSON.stringify({ ...result, message: truncateUtf8(message, budget) + ELLIPSIS });
    if (Buffer.byteLength(candidate, "utf8") <= maxBytes) return candidate;
    budget -= Math.max(1, Buffer.byteLength(candidate, "utf8") - maxBytes);
  }
  const { message: _dropped, ...rest } = result;
  return JSON.stringify(rest);
}

/** Writes the termination message; a failure to write is reported but never fatal. */
export function writeAgentResult(file: string, result: AgentResult): string {
  const text = serializeAgentResult(result);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return text;
}
