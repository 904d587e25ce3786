/**
 * Shapes every intake and the reconciler enforce on names a run may choose. The CRD schema
 * (infra/charts/orchestrator/crds/platform-crds.yaml) carries the same patterns;
 * tests/unit/crd-drift.test.ts keeps them equal.
 */

/**
 * A Secret name a run may refer to: a DNS-1123 subdomain. Anything else ("." or "..", slashes)
 * would change the URL of the controller's Secret read (e.g. "." turns a GET into a LIST).
 */
export const SECRET_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/** An execution cluster's name (spec.cluster, cluster Secrets' label): a DNS label. */
export const CLUSTER_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/** A key inside a Secret (Kubernetes' own rule for data keys). */
export const SECRET_KEY_PATTERN = "^[-._a-zA-Z0-9]+$";
/**
 * A GitHub user or App name as a run names it: it becomes part of a Secret name
 * (github-token-{user}, github-app-{app}), so it must be DNS-safe after lowercasing; GitHub logins
 * are letters, digits and single hyphens.
 */
export const IDENTITY_PATTERN = "^[A-Za-z0-9]([-A-Za-z0-9]{0,37}[A-Za-z0-9])?$";

/**
 * The shape of a repository URL the CRDs accept: `https://host/owner/repo(.git)`,
 * `git@host:owner/repo(.git)`, `ssh://git@host[:port]/owner/repo(.git)` or `owner/repo`. Which
 * host is allowed is the controller's configuration (bindRepository), checked at intake and
 * reconcile; the schema already refuses other schemes (http, file, git), credentials in the URL
 * and local paths.
 */
export const REPOSITORY_URL_PATTERN =
  "^(https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+/?|git@[A-Za-z0-9.-]+:[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+|ssh://git@[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+|[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)$";

const SECRET_NAME = new RegExp(SECRET_NAME_PATTERN);
const SECRET_KEY = new RegExp(SECRET_KEY_PATTERN);
const IDENTITY = new RegExp(IDENTITY_PATTERN);

export function isSecretName(name: string): boolean {
  return name.length <= 253 && SECRET_NAME.test(name);
}

export function isSecretKey(key: string): boolean {
  return key.length <= 253 && SECRET_KEY.test(key);
}

export function isIdentityName(name: string): boolean {
  return IDENTITY.test(name);
}

/**
 * Environment variables a run may not set through spec.env or envFromSecrets: the runner, git and
 * Node read them before the agent starts, while the runner holds the run's GitHub credentials
 * (NODE_OPTIONS could load code into it, HTTPS_PROXY / GIT_SSL_* could redirect or intercept its
 * traffic, ANTHROPIC_BASE_URL would send the API key elsewhere).
 */
export const RESERVED_ENV_PREFIXES = [
  "ANTHROPIC_",
  "GITHUB_",
  "GH_",
  "GIT_",
  "SSH_",
  "SSL_",
  "NODE_",
  "LD_",
  "CURL_",
  "NPM_CONFIG_",
] as const;
export const RESERVED_ENV_NAMES = [
  "PATH",
  "HOME",
  "SHELL",
  "AGENT_ROOT",
  "CLAUDE_BIN",
  "TASK_ID",
  "SERVICE_NAME",
  "LOCAL_TOOLS",
  "REMOTE_TOOLS",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "NO_PROXY",
  "REQUESTS_CA_BUNDLE",
  "BASH_ENV",
  "ENV",
  "PROMPT_COMMAND",
] as const;

/** True when a run may not set this environment variable (case-insensitive, like proxies' lowercase forms). */
export function isReservedEnvName(name: string): boolean {
  const upper = name.toUpperCase();
  return (RESERVED_ENV_NAMES as readonly string[]).includes(upper) || RESERVED_ENV_PREFIXES.some((p) => upper.startsWith(p));
}

/** A CEL expression, true when the string `name` is not a reserved variable (the CRDs' form of isReservedEnvName). */
export function buildReservedEnvCel(name: string): string {
  const names = RESERVED_ENV_NAMES.map((n) => `'${n}'`).join(", ");
  const prefixes = RESERVED_ENV_PREFIXES.map((p) => `'${p}'`).join(", ");
  return `!(${name}.upperAscii() in [${names}]) && ![${prefixes}].exists(p, ${name}.upperAscii().startsWith(p))`;
}
