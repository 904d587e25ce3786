/**
 * Structured logging: pino with secrets redacted wherever they might appear. JSON lines by
 * default; `pretty` (a person at a terminal) formats each line with pino-pretty instead.
 */
import { createRequire } from "node:module";
import { pino, type Logger, type LoggerOptions } from "pino";
import type { PinoPretty } from "pino-pretty";

// pino-pretty is loaded only when a person asks for it: every process (the agent's pod included)
// would otherwise pay for its start-up.
const require = createRequire(import.meta.url);

/** Paths that may carry secrets; pino replaces their values. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["x-hub-signature-256"]',
  'req.headers["x-hub-signature"]',
  "headers.authorization",
  'headers["x-hub-signature-256"]',
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

/** Human-readable lines for a terminal: time, level, message, then the fields. */
function prettyStream(destination: NodeJS.WritableStream | undefined): NodeJS.WritableStream {
  const { PinoPretty: pretty } = require("pino-pretty") as { PinoPretty: typeof PinoPretty };
  return pretty({
    colorize: destination === undefined ? process.stdout.isTTY === true : false,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,name",
    sync: true,
    ...(destination ? { destination } : {}),
  });
}

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream; pretty?: boolean } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    name: opts.name ?? "orchestrator",
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.pretty) return pino(options, prettyStream(opts.destination) as never);
  return opts.destination ? pino(options, opts.destination as never) : pino(options);
}

export type { Logger };
