/**
 * Settings of the `orchestrator` command line: where the REST API is and which token to send.
 * Precedence: flags, then the environment (ORCHESTRATOR_API_URL, ORCHESTRATOR_TOKEN,
 * ORCHESTRATOR_TOKEN_FILE, ORCHESTRATOR_CONTEXT), then the current context of the CLI config file
 * (ORCHESTRATOR_CLI_CONFIG, default $XDG_CONFIG_HOME/orchestrator/cli.yaml), then upstream's
 * default URL. The file holds named contexts, like a kubeconfig:
 *
 *   currentContext: dev
 *   contexts:
 *     dev:  {apiUrl: http://127.0.0.1:8080, tokenFile: /tmp/orchestrator-cp-x/api-token}
 *     prod: {apiUrl: https://orchestrator.example.com, token: "..."}
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { ConfigError, formatIssues } from "./config.js";

/** Upstream CLI's default (`--api-url`): the in-cluster Service. */
export const DEFAULT_API_URL = "http://orchestrator.orchestrator.svc.cluster.local/api/v1";

export const cliContextSchema = z.strictObject({
  apiUrl: z.url(),
  token: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
});
export type CliContext = z.infer<typeof cliContextSchema>;

export const cliFileSchema = z.strictObject({
  currentContext: z.string().min(1).optional(),
  contexts: z.record(z.string().min(1), cliContextSchema).default({}),
});
export type CliFile = z.infer<typeof cliFileSchema>;

export interface CliFlags {
  apiUrl?: string;
  token?: string;
  context?: string;
}

export interface CliSettings {
  /** Base URL of the service, without a trailing `/api/v1` (routes add it). */
  baseUrl: string;
  token?: string;
  /** Where the URL came from, for error messages: "--api-url", "ORCHESTRATOR_API_URL", "context dev", "default". */
  source: string;
  contextName?: string;
}

export function cliConfigPath(env: NodeJS.ProcessEnv): string {
  if (env.ORCHESTRATOR_CLI_CONFIG) return env.ORCHESTRATOR_CLI_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "orchestrator", "cli.yaml");
}

export function readCliFile(path: string): CliFile {
  if (!existsSync(path)) return { contexts: {} };
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, "utf8")) ?? {};
  } catch (e) {
    throw new ConfigError(`${path} is not valid YAML: ${(e as Error).message}. Fix or delete the file.`);
  }
  const parsed = cliFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      `Invalid CLI config ${path}:\n${formatIssues(parsed.error)}\nFix the file or recreate the context with \`orchestrator context set\`.`,
    );
  return parsed.data;
}

/** Writes the file with mode 0600: it may hold tokens. */
export function writeCliFile(path: string, file: CliFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, stringify(file), { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** `http://host/api/v1/` and `http://host` both become `http://host`. */
export function normalizeBaseUrl(url: string): string {
  return url
    .trim()
    .replace(/\/+$/, "")
    .replace(/\/api\/v1$/, "");
}

function readTokenFile(path: string, what: string): string {
  try {
    const token = readFileSync(path, "utf8").trim();
    if (token) return token;
  } catch (e) {
    throw new ConfigError(`Cannot read the API token file ${path} (${what}): ${(e as Error).message}. Fix the path or pass --token.`);
  }
  throw new ConfigError(`The API token file ${path} (${what}) is empty; write the token into it or pass --token.`);
}

/** Resolves URL and token once, from flags, environment and the CLI config file. */
export function readCliSettings(flags: CliFlags, env: NodeJS.ProcessEnv): CliSettings {
  const path = cliConfigPath(env);
  const file = readCliFile(path);
  const contextName = flags.context ?? env.ORCHESTRATOR_CONTEXT ?? file.currentContext;
  let context: CliContext | undefined;
  if (contextName !== undefined) {
    context = file.contexts[contextName];
    if (!context) {
      const known = Object.keys(file.contexts);
      throw new ConfigError(
        `Context "${contextName}" is not in ${path} (known: ${known.join(", ") || "none"}); create it with \`orchestrator context set ${contextName} --api-url URL\`.`,
      );
    }
  }
  const [url, source] = flags.apiUrl
    ? [flags.apiUrl, "--api-url"]
    : env.ORCHESTRATOR_API_URL
      ? [env.ORCHESTRATOR_API_URL, "ORCHESTRATOR_API_URL"]
      : context
        ? [context.apiUrl, `context ${contextName}`]
        : [DEFAULT_API_URL, "the default URL"];
  if (!/^https?:\/\/[^\s/]+/.test(url))
    throw new ConfigError(`The API URL ${url} (from ${source}) is not an http(s) URL; pass --api-url http://host:port.`);
  let token = flags.token ?? env.ORCHESTRATOR_TOKEN;
  if (!token && env.ORCHESTRATOR_TOKEN_FILE) token = readTokenFile(env.ORCHESTRATOR_TOKEN_FILE, "ORCHESTRATOR_TOKEN_FILE");
  if (!token && context?.token) token = context.token;
  if (!token && context?.tokenFile) token = readTokenFile(context.tokenFile, `context ${contextName}`);
  return { baseUrl: normalizeBaseUrl(url), ...(token ? { token } : {}), source, ...(contextName ? { contextName } : {}) };
}
