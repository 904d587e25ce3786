/** Reads the configuration once at start; nothing else reads process.env. */
import { readFileSync, existsSync } from "node:fs";
import { hostname } from "node:os";
import { parse } from "yaml";
import type { z } from "zod";
import { fileConfigSchema, type Config } from "./schema.js";

export class ConfigError extends Error {}

const DEFAULT_CONFIG_PATH = "/config/config.yaml";

function splitList(v: string | undefined): string[] {
  return (v ?? "")
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

/** Formats zod issues as "path: message" lines a user can act on. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
}

/** The controller's GitHub App credentials, when GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are both set. */
function githubAppFromEnv(env: NodeJS.ProcessEnv): { githubApp?: Config["githubApp"] } {
  const appId = env.GITHUB_APP_ID?.trim();
  const privateKey = env.GITHUB_APP_PRIVATE_KEY?.trim();
  if (!appId && !privateKey) return {};
  if (!appId || !privateKey)
    throw new ConfigError(
      "Set both GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (the controller's GitHub App), or neither to use GITHUB_TOKEN.",
    );
  const installation = env.GITHUB_APP_INSTALLATION_ID?.trim();
  if (installation && !/^[1-9][0-9]*$/.test(installation))
    throw new ConfigError(
      `GITHUB_APP_INSTALLATION_ID=${installation} is not a number; set the numeric installation id or unset it to look it up per repository.`,
    );
  // Secrets managers often store PEMs with literal \n.
  return {
    githubApp: { appId, privateKey: privateKey.replace(/\\n/g, "\n"), ...(installation ? { installationId: Number(installation) } : {}) },
  };
}

/**
 * Builds the frozen Config from a YAML text (or none) and the environment.
 * Environment overrides: KUBERNETES_NAMESPACE / POD_NAMESPACE (namespace), PORT (server.port),
 * ANTHROPIC_BASE_URL (agent.anthropicBaseUrl), GITHUB_API_URL (github.apiUrl). POD_NAME names the
 * replica (leader election).
 * Secrets: ORCHESTRATOR_API_TOKENS, GITHUB_WEBHOOK_SECRET(_PREVIOUS), GITHUB_TOKEN, GITHUB_APP_*,
 * ANTHROPIC_API_KEY (used by the controller only to set up a local cluster's Secret).
 */
export function parseConfig(
  yamlText: string | null,
  env: NodeJS.ProcessEnv,
  configPath: string | null = null,
  overlay: Record<string, unknown> = {},
): Config {
  let raw: unknown = {};
  if (yamlText !== null && yamlText.trim() !== "") {
    try {
      raw = parse(yamlText) ?? {};
    } catch (e) {
      throw new ConfigError(`Config file ${configPath ?? "(inline)"} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const obj = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  // The overlay (a local cluster's settings) sits under the file: a key the file sets wins.
  for (const [section, values] of Object.entries(overlay))
    obj[section] = { ...(values as object), ...(obj[section] as object | undefined) };
  const ns = env.KUBERNETES_NAMESPACE ?? env.POD_NAMESPACE;
  if (ns) obj.namespace = ns;
  if (env.PORT) obj.server = { ...(obj.server as object | undefined), port: env.PORT };
  // Endpoints a local or test installation points elsewhere (a model gateway, GitHub Enterprise).
  if (env.ANTHROPIC_BASE_URL) obj.agent = { ...(obj.agent as object | undefined), anthropicBaseUrl: env.ANTHROPIC_BASE_URL };
  if (env.GITHUB_API_URL) obj.github = { ...(obj.github as object | undefined), apiUrl: env.GITHUB_API_URL };
  const parsed = fileConfigSchema.safeParse(obj);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid configuration${configPath ? ` in ${configPath}` : ""}:\n${formatIssues(parsed.error)}\nFix these values (Helm: the chart's values.yaml) and restart.`,
    );
  }
  return deepFreeze({
    ...parsed.data,
    apiTokens: splitList(env.ORCHESTRATOR_API_TOKENS),
    webhookSecrets: splitList(env.GITHUB_WEBHOOK_SECRET).concat(splitList(env.GITHUB_WEBHOOK_SECRET_PREVIOUS)),
    githubToken: (env.GITHUB_TOKEN ?? "").trim(),
    anthropicApiKey: (env.ANTHROPIC_API_KEY ?? "").trim(),
    githubUser: (env.GITHUB_USER ?? "").trim() || "developer",
    podName: (env.POD_NAME ?? "").trim() || hostname(),
    ...githubAppFromEnv(env),
    configPath,
  });
}

/** Reads ORCHESTRATOR_CONFIG (default /config/config.yaml) when present and the environment. */
export function readConfig(env: NodeJS.ProcessEnv = process.env, overlay: Record<string, unknown> = {}): Config {
  const path = env.ORCHESTRATOR_CONFIG ?? DEFAULT_CONFIG_PATH;
  if (env.ORCHESTRATOR_CONFIG && !existsSync(path)) {
    throw new ConfigError(
      `ORCHESTRATOR_CONFIG=${path} does not exist; point it at the controller's config.yaml or unset it to use defaults.`,
    );
  }
  const text = existsSync(path) ? readFileSync(path, "utf8") : null;
  return parseConfig(text, env, text === null ? null : path, overlay);
}
