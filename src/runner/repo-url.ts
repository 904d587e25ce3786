/** Pure helpers for repository URLs: owner/repo, credential-free display, identity. */

export interface RepoCoordinates {
  host: string;
  owner: string;
  repo: string;
}

/** scp-like syntax: `git@github.com:org/repo.git`. */
const SCP_LIKE = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/;

function splitOwnerRepo(host: string, pathname: string): RepoCoordinates | null {
  const parts = pathname.replace(/^\/+/, "").replace(/\/+$/, "").replace(/\.git$/, "").split("/");
  if (parts.length !== 2 || !parts[0] || !parts[1]) return null;
  return { host: host.toLowerCase(), owner: parts[0], repo: parts[1] };
}

/**
 * owner/repo of a GitHub remote (`https://host/org/repo(.git)`, `ssh://git@host/org/repo.git`,
 * `git@host:org/repo.git`); null for anything else (local paths, file:// URLs, nested paths).
 */
export function parseRepoUrl(url: string): RepoCoordinates | null {
  const trimmed = url.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    let u: URL;
    try {
      u = new URL(trimmed);
    } catch {
      return null;
    }
    if (!["https:", "http:", "ssh:", "git:"].includes(u.protocol) || !u.hostname) return null;
    return splitOwnerRepo(u.protocol === "ssh:" || u.protocol === "git:" ? u.hostname : u.host, decodeURIComponent(u.pathname));
  }
  const scp = SCP_LIKE.exec(trimmed);
  if (scp && !trimmed.startsWith("/") && !trimmed.startsWith(".")) return splitOwnerRepo(scp[1]!, scp[2]!);
  return null;
}

/** True for URLs git reaches over SSH. */
export function isSshUrl(url: string): boolean {
  if (/^ssh:\/\//i.test(url)) return true;
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith("/") && !url.startsWith(".") && SCP_LIKE.test(url);
}

/** True for URLs git reaches over HTTP(S). */
export function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** The URL with any user:password@ removed, safe to log and to show in status. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1");
}

/** An https URL for the same repository (GitHub App / token auth of an SSH remote). */
export function toHttpsUrl(coords: RepoCoordinates): string {
  return `https://${coords.host}/${coords.owner}/${coords.repo}.git`;
}

/** Whether two remotes are the same repository (protocol, credentials, `.git` and case ignored for GitHub URLs). */
export function sameRepository(a: string, b: string): boolean {
  const ca = parseRepoUrl(a);
  const cb = parseRepoUrl(b);
  if (ca && cb) {
    return ca.host === cb.host && ca.owner.toLowerCase() === cb.owner.toLowerCase() && ca.repo.toLowerCase() === cb.repo.toLowerCase();
  }
  const norm = (u: string) => redactUrl(u.trim()).replace(/^file:\/\//, "").replace(/\/+$/, "").replace(/\.git$/, "");
  return norm(a) === norm(b);
}
