/**
 * The one GitHub host a deployment trusts with credentials, and what a repository URL must look
 * like to be used with them. The intake (422), the reconciler (a terminal condition) and the agent
 * runner (before any network call) all decide with these functions, so the three cannot disagree.
 *
 * Rules: credentials go only to the configured GitHub host, over HTTPS (or SSH to the same host
 * name). Plain HTTP is accepted only when the configured host itself is a loopback address (tests
 * and local development); a URL on any other host, scheme or port is refused.
 */

/** owner/repo of a GitHub-style remote, and the host it names. */
export interface RepoCoordinates {
  host: string;
  owner: string;
  repo: string;
}

/** scp-like syntax: `git@github.com:org/repo.git`. */
const SCP_LIKE = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/;
/** GitHub's own limits: owners are letters, digits and '-'; repositories add '.' and '_'. */
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
/** The short form `owner/repo` means "on the configured host". */
const SHORTHAND = /^([A-Za-z0-9][A-Za-z0-9-]{0,38})\/([A-Za-z0-9._-]{1,100}?)(?:\.git)?$/;

function splitOwnerRepo(host: string, pathname: string): RepoCoordinates | null {
  const parts = pathname
    .replace(/^\/+/, "")
    .replace(/\/+$/, "")
    .replace(/\.git$/, "")
    .split("/");
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

/** Loopback host names: the only hosts plain HTTP is accepted for (tests, local development). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(?:\.[0-9]{1,3}){3}$/.test(h);
}

/** Why `url` cannot be the GitHub web or API URL, or undefined when it can. */
export function githubUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "must be an absolute URL such as https://github.com";
  }
  if (u.username || u.password) return "must not contain credentials";
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:" && isLoopbackHost(u.hostname)) return undefined;
  return "must use https:// (plain http:// only for a loopback address such as 127.0.0.1)";
}

/** The web/git origin for an API URL: api.github.com → https://github.com, GHES https://ghe/api/v3 → https://ghe. */
export function defaultGithubUrl(apiUrl: string): string {
  const u = new URL(apiUrl);
  return u.hostname.toLowerCase() === "api.github.com" ? "https://github.com" : u.origin;
}

/** A repository on the configured host, as credentials may be used with it. */
export interface BoundRepository {
  owner: string;
  repo: string;
  /** `owner/repo`, lowercased: the key policies and workspaces use. */
  key: string;
  /** The canonical clone URL on the configured origin: `<githubUrl>/owner/repo.git`. */
  httpsUrl: string;
  /** Set when the URL names an SSH remote on the configured host name (an SSH key may be offered): its canonical form. */
  sshUrl?: string;
}

export type RepositoryBinding = { ok: true; repository: BoundRepository } | { ok: false; problem: string };

/** `sshHost`: host[:port] of an SSH remote, or undefined for HTTPS and the short form. */
function bound(origin: string, owner: string, repo: string, sshHost?: string): RepositoryBinding {
  const name = repo.replace(/\.git$/, "");
  if (!OWNER.test(owner) || !REPO.test(name) || name === "." || name === "..") {
    return {
      ok: false,
      problem: `"${owner}/${name}" is not a valid GitHub owner/repository name; credentials are only used with ${origin}`,
    };
  }
  const repository: BoundRepository = {
    owner,
    repo: name,
    key: `${owner}/${name}`.toLowerCase(),
    httpsUrl: `${origin}/${owner}/${name}.git`,
  };
  if (sshHost) repository.sshUrl = `ssh://git@${sshHost}/${owner}/${name}.git`;
  return { ok: true, repository };
}

/**
 * Checks that `url` names a repository on the configured GitHub host (`githubUrl`, e.g.
 * https://github.com): `owner/repo`, `<githubUrl>/owner/repo(.git)`, `git@<host>:owner/repo.git`
 * or `ssh://git@<host>/owner/repo.git`. Anything else is refused with the reason.
 */
export function bindRepository(url: string, githubUrl: string): RepositoryBinding {
  const configured = new URL(githubUrl);
  const origin = configured.origin;
  const refuse = (why: string): RepositoryBinding => ({
    ok: false,
    problem: `${why}; credentials are only used with ${origin}. Use ${origin}/owner/repo, git@${configured.hostname}:owner/repo.git or owner/repo`,
  });
  const text = url.trim();
  const short = SHORTHAND.exec(text);
  if (short) return bound(origin, short[1]!, short[2]!);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      return refuse("it is not a valid URL");
    }
    if (u.search || u.hash) return refuse("it has a query or fragment");
    const coords = splitOwnerRepo(u.host, decodeURIComponent(u.pathname));
    if (u.protocol === "ssh:") {
      if (u.hostname.toLowerCase() !== configured.hostname.toLowerCase())
        return refuse(`host ${u.hostname} is not the configured GitHub host`);
      return coords ? bound(origin, coords.owner, coords.repo, u.host.toLowerCase()) : refuse("the path is not /owner/repo");
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") return refuse(`the scheme ${u.protocol.replace(/:$/, "")} is not allowed`);
    if (u.username || u.password) return refuse("it contains credentials");
    if (u.origin !== origin) return refuse(`${u.origin} is not the configured GitHub host`);
    return coords ? bound(origin, coords.owner, coords.repo) : refuse("the path is not /owner/repo");
  }
  const scp = SCP_LIKE.exec(text);
  if (scp && !text.startsWith("/") && !text.startsWith(".")) {
    if (scp[1]!.toLowerCase() !== configured.hostname.toLowerCase()) return refuse(`host ${scp[1]} is not the configured GitHub host`);
    const coords = splitOwnerRepo(scp[1]!, scp[2]!);
    return coords ? bound(origin, coords.owner, coords.repo, scp[1]!.toLowerCase()) : refuse("the path is not owner/repo");
  }
  return refuse("it is not a GitHub repository URL");
}
