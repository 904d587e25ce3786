/** Pure helpers for repository URLs: owner/repo, credential-free display, identity. */

export { isSshUrl, parseRepoUrl } from "../api/github-host.js";
import { parseRepoUrl } from "../api/github-host.js";

/** The URL with any user:password@ removed, safe to log and to show in status. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1");
}

/** Whether two remotes are the same repository (protocol, credentials, `.git` and case ignored for GitHub URLs). */
export function sameRepository(a: string, b: string): boolean {
  const ca = parseRepoUrl(a);
  const cb = parseRepoUrl(b);
  if (ca && cb) {
    return ca.host === cb.host && ca.owner.toLowerCase() === cb.owner.toLowerCase() && ca.repo.toLowerCase() === cb.repo.toLowerCase();
  }
  const norm = (u: string) =>
    redactUrl(u.trim())
      .replace(/^file:\/\//, "")
      .replace(/\/+$/, "")
      .replace(/\.git$/, "");
  return norm(a) === norm(b);
}
