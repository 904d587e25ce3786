/** Structured logging: pino with secrets redacted wherever they might appear. */
import { pino, type Logger, type LoggerOptions } from "pino";

/** Paths that may carry secrets; pino replaces their values. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers[\"x-hub-signature-256\"]",
  "req.headers[\"x-hub-signature\"]",
  "headers.authorization",
  "headers[\"x-hub-signature-256\"]",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "privateKey",
  "*.privateKey",
  "password",
  "secret",
  "*.secret",
];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    name: opts.name ?? "orchestrator",
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination as never) : pino(options);
}

export type { Logger };
