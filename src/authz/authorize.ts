/**
 * Who may use what: the authorization model of docs/security.md, as one pure decision the intake
 * (REST API, webhooks) makes before it writes a run and the reconciler makes again before every
 * attempt, because runs can also be created with kubectl.
 *
 * A run is allowed when
 * 1. every repository it names is on the configured GitHub host (bindRepository);
 * 2. it sets no reserved environment variable and names only well-formed identities and Secrets;
 * 3. every Secret it mounts through envFromSecrets is in authorization.mountableSecrets and is not
 *    one of the controller's own Secrets or an identity's Secret;
 * 4. one rule whose `requesters` match the requester allows its identity, every repository,
 *    every Secret and the cluster it names. No rules configured = one rule for everyone allowing any identity and
 *    repository (still bound to the host) and the mountable Secrets.
 * Messages name what was refused and the setting that would allow it, never whether a Secret exists.
 */
import { createHash } from "node:crypto";
import { Annotations, Labels } from "../api/constants.js";
import { isActive } from "../api/predicates.js";
import { bindRepository, type BoundRepository } from "../api/github-host.js";
import type { AnyRun } from "../api/types.js";
import { isIdentityName, isReservedEnvName, isSecretKey, isSecretName } from "../api/validation.js";
import type { Config } from "../config/schema.js";
import { canonicalJson } from "../util/json.js";

export type AuthzConfig = Pick<Config, "authorization" | "github" | "secrets">;

/** What a run asks to use, from a CodeRun/DocsRun spec (or a request about to become one). */
export interface RunRequest {
  githubUser?: string | undefined;
  githubApp?: string | undefined;
  repositoryUrl: string;
  docsRepositoryUrl?: string | undefined;
  env?: Record<string, string> | undefined;
  envFromSecrets?: { name: string; secretName: string; secretKey: string }[] | undefined;
  /** spec.cluster, when the run names one. */
  cluster?: string | undefined;
}

export const AuthzReasons = {
  /** A repository is not on the configured GitHub host (422 at the API). */
  RepositoryNotAllowed: "RepositoryNotAllowed",
  /** A malformed name or a reserved environment variable (422 at the API). */
  InvalidRequest: "InvalidRequest",
  /** Well-formed, but the requester may not use it (403 at the API). */
  NotAuthorized: "NotAuthorized",
  /** Over a per-requester quota: spec size (413 at the API) or active runs (429). */
  QuotaExceeded: "QuotaExceeded",
} as const;
export type AuthzReason = (typeof AuthzReasons)[keyof typeof AuthzReasons];

export type AuthzDecision =
  { allowed: true; repositories: BoundRepository[] } | { allowed: false; reason: AuthzReason; message: string; field: string };

/** Requester of runs created directly through the Kubernetes API (kubectl), i.e. by anyone RBAC lets create them. */
export const KUBERNETES_REQUESTER = "kubernetes";

/** The requester of runs a webhook rule creates. */
export function webhookRequester(rule: string): string {
  return `webhook:${rule}`;
}

/** Prefixes of the per-identity Secrets: reachable only through githubUser/githubApp, under the identity rules. */
const IDENTITY_SECRET_PREFIXES = ["github-token-", "github-ssh-", "github-app-"];

/** `*` matches any run of characters; everything else literally. */
export function globMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  const source = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`, caseInsensitive ? "i" : "").test(value);
}

function deny(reason: AuthzReason, field: string, message: string): AuthzDecision {
  return { allowed: false, reason, field, message };
}

/** Checks 1-3: shape, host binding and Secret allowlist (config or label), whoever asks. */
function checkShape(req: RunRequest, config: AuthzConfig, labelled: ReadonlySet<string>): AuthzDecision {
  const repositories: BoundRepository[] = [];
  for (const [field, url] of [
    ["repositoryUrl", req.repositoryUrl],
    ["docsRepositoryUrl", req.docsRepositoryUrl],
  ] as const) {
    if (url === undefined) continue;
    const b = bindRepository(url, config.github.url);
    if (!b.ok) return deny(AuthzReasons.RepositoryNotAllowed, field, `${field} ${url} is not allowed: ${b.problem}.`);
    repositories.push(b.repository);
  }
  for (const [field, name] of [
    ["githubUser", req.githubUser],
    ["githubApp", req.githubApp],
  ] as const) {
    if (name !== undefined && !isIdentityName(name))
      return deny(
        AuthzReasons.InvalidRequest,
        field,
        `${field} "${name}" is not a GitHub user or App name (letters, digits and inner '-', at most 39 characters).`,
      );
  }
  const envNames = [
    ...Object.keys(req.env ?? {}).map((n) => ["env", n] as const),
    ...(req.envFromSecrets ?? []).map((e) => ["envFromSecrets", e.name] as const),
  ];
  for (const [field, name] of envNames) {
    if (isReservedEnvName(name))
      return deny(
        AuthzReasons.InvalidRequest,
        field,
        `${field}: ${name} is reserved (the runner, git and Node read it while holding the run's credentials); use another variable name.`,
      );
  }
  for (const e of req.envFromSecrets ?? []) {
    if (!isSecretName(e.secretName) || !isSecretKey(e.secretKey))
      return deny(
        AuthzReasons.InvalidRequest,
        "envFromSecrets",
        `envFromSecrets ${e.name}: secretName must be a DNS subdomain and secretKey a Secret key ([-._a-zA-Z0-9]).`,
      );
    const own = e.secretName === config.secrets.apiKeySecretName || IDENTITY_SECRET_PREFIXES.some((p) => e.secretName.startsWith(p));
    if (own || !(config.authorization.mountableSecrets.includes(e.secretName) || labelled.has(e.secretName))) {
      return deny(
        AuthzReasons.NotAuthorized,
        "envFromSecrets",
        `envFromSecrets ${e.name}: Secret ${e.secretName} may not be mounted into runs${own ? " (it holds the controller's or an identity's credentials)" : `; an administrator can add it to authorization.mountableSecrets or label it ${Labels.mountable}=true`}.`,
      );
    }
  }
  return { allowed: true, repositories };
}

type Rule = Config["authorization"]["rules"][number];
const EVERYONE: Rule = { requesters: ["*"], identities: ["*"], repositories: ["*"], secrets: ["*"], clusters: ["*"] };

function ruleAllows(rule: Rule, req: RunRequest, repositories: BoundRepository[]): string | undefined {
  const identity = req.githubApp ? `app:${req.githubApp}` : req.githubUser ? `user:${req.githubUser}` : undefined;
  if (identity && !rule.identities.some((p) => globMatch(p, identity, true))) return `GitHub identity ${identity}`;
  const repo = repositories.find((r) => !rule.repositories.some((p) => globMatch(p, r.key, true)));
  if (repo) return `repository ${repo.key}`;
  const secret = (req.envFromSecrets ?? []).find((e) => !rule.secrets.some((p) => globMatch(p, e.secretName)));
  if (secret) return `Secret ${secret.secretName}`;
  if (req.cluster && !rule.clusters.some((p) => globMatch(p, req.cluster ?? ""))) return `cluster ${req.cluster}`;
  return undefined;
}

/**
 * The decision for `requester` (a principal name, `webhook:<rule>`, or `kubernetes`).
 * `labelled`: names of the Secrets labelled mountable (orchestrator.platform/mountable=true).
 */
export function authorizeRun(
  req: RunRequest,
  requester: string,
  config: AuthzConfig,
  labelled: ReadonlySet<string> = new Set(),
): AuthzDecision {
  const shape = checkShape(req, config, labelled);
  if (!shape.allowed) return shape;
  const rules = config.authorization.rules.length > 0 ? config.authorization.rules : [EVERYONE];
  const mine = rules.filter((r) => r.requesters.some((p) => globMatch(p, requester)));
  if (mine.length === 0)
    return deny(
      AuthzReasons.NotAuthorized,
      "requester",
      `${requester} may not create runs: no authorization rule lists it under requesters.`,
    );
  const refusals = mine.map((r) => ruleAllows(r, req, shape.repositories));
  if (refusals.some((r) => r === undefined)) return shape;
  return deny(
    AuthzReasons.NotAuthorized,
    "requester",
    `${requester} may not use ${refusals[0]} (authorization.rules); ask an administrator to allow it, or choose one it may use.`,
  );
}

/**
 * A digest of the spec fields a decision depends on (identity, repositories, environment,
 * Secrets). Only those: the API server fills in defaults for others (docsBranch, contextVersion),
 * and editing the prompt or a limit does not change who may run it.
 */
export function computeSpecDigest(spec: object): string {
  const s = spec as Record<string, unknown>;
  const fields = ["githubUser", "githubApp", "repositoryUrl", "docsRepositoryUrl", "env", "envFromSecrets"].map((k) => [k, s[k] ?? null]);
  // Only when set: digests of runs from before spec.cluster existed stay valid.
  if (s.cluster !== undefined) fields.push(["cluster", s.cluster]);
  return createHash("sha256")
    .update(canonicalJson(Object.fromEntries(fields)))
    .digest("hex")
    .slice(0, 40);
}

/** The spec's size as JSON, refused over authorization.quotas.maxSpecBytes (whoever asks). */
export function checkSpecSize(spec: object, config: AuthzConfig): (AuthzDecision & { allowed: false }) | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(spec));
  const max = config.authorization.quotas.maxSpecBytes;
  if (bytes <= max) return undefined;
  return {
    allowed: false,
    reason: AuthzReasons.QuotaExceeded,
    field: "spec",
    message: `The run's spec is ${bytes} bytes; authorization.quotas.maxSpecBytes allows ${max}. Shorten the prompt (long context belongs in the task documents of the docs repository).`,
  };
}

/** The label that finds a requester's runs (a hint; requesterOf decides). */
export function requesterLabel(requester: string): Record<string, string> {
  return { [Labels.requesterHash]: createHash("sha256").update(requester).digest("hex").slice(0, 40) };
}

/** The runs among `runs` that `requester` asked for and that are not finished. */
export function activeRunsOf(runs: readonly AnyRun[], requester: string): AnyRun[] {
  return runs.filter((r) => isActive(r) && requesterOf(r) === requester);
}

/** Annotations the intake puts on a run it authorized; only the controller's account may set them (the chart's ValidatingAdmissionPolicy). */
export function buildAuthzAnnotations(requester: string, spec: object): Record<string, string> {
  return { [Annotations.requester]: requester, [Annotations.authorizedSpec]: computeSpecDigest(spec) };
}

/**
 * Who a run is decided for at reconcile: the requester the intake recorded, as long as the spec
 * is still the one it authorized; otherwise (kubectl-created, or edited since) `kubernetes`.
 */
export function requesterOf(run: AnyRun): string {
  const a = run.metadata.annotations ?? {};
  const requester = a[Annotations.requester];
  if (!requester || a[Annotations.authorizedSpec] !== computeSpecDigest(run.spec)) return KUBERNETES_REQUESTER;
  return requester;
}

/** The RunRequest of a CodeRun or DocsRun. */
export function runRequestOf(run: AnyRun): RunRequest {
  const s = run.spec;
  return run.kind === "CodeRun"
    ? {
        githubUser: s.githubUser,
        githubApp: s.githubApp,
        repositoryUrl: s.repositoryUrl,
        docsRepositoryUrl: run.spec.docsRepositoryUrl,
        env: run.spec.env,
        envFromSecrets: run.spec.envFromSecrets,
        cluster: s.cluster,
      }
    : { githubUser: s.githubUser, githubApp: s.githubApp, repositoryUrl: s.repositoryUrl, cluster: s.cluster };
}
