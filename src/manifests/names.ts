/**
 * Deterministic names of everything the controller creates. Names derive from the run
 * (name, uid, task, contextVersion, attempt), never from the clock, so a retried create after
 * a crash finds the object it already made (AlreadyExists is success).
 */
import { createHash } from "node:crypto";
import type { AnyRun } from "../api/types.js";

const MAX_LABEL = 63;

function shortHash(s: string, n = 6): string {
  return createHash("sha256").update(s).digest("hex").slice(0, n);
}

/** Lowercases and replaces characters not allowed in DNS labels; trims to alphanumeric ends. */
export function sanitizeDnsLabel(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * Label values: lowercase, space and `_` → `-`, only [a-z0-9-_.], alphanumeric ends, ≤ 63
 * (the original's sanitiser, so selectors written for it keep working).
 */
export function sanitizeLabelValue(s: string): string {
  let v = s
    .toLowerCase()
    .replace(/[ _]/g, "-")
    .replace(/[^a-z0-9._-]/g, "");
  v = v.replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  if (v.length > MAX_LABEL) v = v.slice(0, MAX_LABEL).replace(/[^a-z0-9]+$/g, "");
  return v;
}

/** Fits `prefix-middle-suffix` into 63 chars by shortening the middle and adding a hash of it. */
function fit(prefix: string, middle: string, suffix: string): string {
  const full = `${prefix}-${middle}-${suffix}`;
  if (full.length <= MAX_LABEL) return full;
  const h = shortHash(middle);
  const room = MAX_LABEL - prefix.length - suffix.length - h.length - 3;
  const cut = middle.slice(0, Math.max(0, room)).replace(/-+$/g, "");
  return `${prefix}-${cut ? `${cut}-` : ""}${h}-${suffix}`.replace(/--+/g, "-");
}

export function uid8(run: AnyRun): string {
  return (run.metadata.uid ?? "").replace(/-/g, "").slice(0, 8) || "nouid000";
}

/** Job name of one attempt: `code-{name}-{uid8}-t{task}-v{ver}-a{n}` / `docs-{name}-{uid8}-a{n}`, ≤ 63. */
export function jobName(run: AnyRun, attempt: number): string {
  const name = sanitizeDnsLabel(run.metadata.name ?? "run");
  if (run.kind === "CodeRun") {
    const cv = run.spec.contextVersion ?? 1;
    return fit("code", name, `${uid8(run)}-t${run.spec.taskId}-v${cv}-a${attempt}`);
  }
  return fit("docs", name, `${uid8(run)}-a${attempt}`);
}

/** The ConfigMap holding one attempt's rendered agent files. */
export function configMapName(run: AnyRun, attempt: number): string {
  return `${jobName(run, attempt)}-files`;
}

/**
 * The workspace of one repository for one service: `workspace-{service}-{hash of owner/repo}`.
 * Keyed by repository so two repositories never share a clone (webhook services are bare
 * repository names: acme/api and other/api are both "api").
 */
export function workspacePvcName(service: string, repositoryKey: string): string {
  return fit("workspace", service, shortHash(repositoryKey.toLowerCase(), 8));
}

/**
 * The original's per-service name. An existing one is still used by the runs of the repository
 * it is bound to (annotation orchestrator.platform/repository), or adopted when unbound.
 */
export function legacyWorkspacePvcName(service: string): string {
  return `workspace-${service}`;
}

export function githubSshSecretName(user: string): string {
  return `github-ssh-${user}`;
}
export function githubTokenSecretName(user: string): string {
  return `github-token-${user}`;
}
export function githubAppSecretName(app: string): string {
  return `github-app-${app.toLowerCase()}`;
}
