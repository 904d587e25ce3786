/**
 * Credentials of a run, from the mounted secrets and the environment:
 * - GitHub App (params.githubApp): /secrets/github-app/{app-id,private-key[,installation-id]} →
 *   short-lived installation token (refreshed on demand) for git over HTTPS and the REST API.
 * - GitHub user: GITHUB_TOKEN for the REST API and git over HTTPS; the SSH key in
 *   /secrets/github-ssh/ssh-privatekey for SSH remotes.
 * Tokens reach git only through the environment of the git process (an http.extraHeader for the
 * GitHub origin, and a credential helper for a 401); the SSH key is copied to a private temp
 * file outside the repository.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/rest";
import type { Logger } from "pino";
import type { BoundRepository } from "../api/github-host.js";
import type { RunParameters } from "../api/runner-contract.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";
import type { Author, GitAuth, GitAuthProvider } from "./git.js";
import type { Layout } from "./layout.js";
import type { Redactor } from "./redact.js";

/** The environment variable the credential helper reads; set only on git processes. */
const TOKEN_VAR = "GITHUB_TOKEN";

/**
 * git config for a credential helper that answers `get` with the token from the git process's
 * environment (the `$` is expanded by the helper's shell at call time, never stored anywhere) and
 * ignores `store`/`erase`. The empty helper first clears helpers from every config file (including
 * any an agent might have added to .git/config); the token is offered only to `origin`, the
 * configured GitHub host (scheme, host and port must all match).
 */
export function buildTokenHelperConfig(origin: string): string[] {
  const helper = `!f() { test "$1" = get || exit 0; echo username=x-access-token; echo "password=$${TOKEN_VAR}"; }; f`;
  return ["credential.helper=", `credential.${new URL(origin).origin}.helper=${helper}`];
}

/**
 * How git sends a token to the configured GitHub origin: an `http.<origin>/.extraHeader` with
 * Basic credentials, set through git's environment (GIT_CONFIG_COUNT), so the first request
 * carries them. Without it, every fetch, clone and push first takes a 401 and starts the helper's
 * shell twice. The header goes only to URLs of that scheme, host and port; the helper stays for
 * the rare 401 (a revoked token), so git reports "Authentication failed".
 *
 * git follows no redirect: after one, git sends its next requests to the new URL with the
 * headers it chose for the old one, so a redirect from the GitHub host to another would carry
 * the token there. A renamed or transferred repository is reached under its new URL.
 */
export function buildTokenAuth(origin: string, token: string): GitAuth {
  const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
  return {
    env: {
      [TOKEN_VAR]: token,
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: `http.${new URL(origin).origin}/.extraHeader`,
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    },
    config: [...buildTokenHelperConfig(origin), "http.followRedirects=false"],
  };
}

export type AuthMethod = "github-app" | "token" | "ssh";

export interface Credentials {
  /** How git reaches the repositories. */
  gitMethod: AuthMethod;
  /** Token for the REST API. */
  apiToken(): Promise<string>;
  gitAuth: GitAuthProvider;
  /** Commit author and committer. */
  author: Author;
  /** The URL git uses for a repository: its canonical HTTPS URL, or its SSH URL when an SSH key is used. */
  remoteUrl(repository: BoundRepository): string;
  /** Removes the temporary key file. */
  dispose(): void;
}

export interface CredentialInputs {
  params: RunParameters;
  layout: Layout;
  githubToken: string | undefined;
  /** The target repository, on the configured host (for the App's installation lookup). */
  target: BoundRepository;
  /** The docs repository, when it differs from the target. */
  docs?: BoundRepository;
  redactor: Redactor;
  log: Logger;
}

function readSecretFile(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The commit identity of the run's GitHub user or App. */
export function computeAuthor(params: Pick<RunParameters, "githubUser" | "githubApp">): Author {
  if (params.githubApp) return { name: `${params.githubApp}[bot]`, email: `${params.githubApp}[bot]@users.noreply.github.com` };
  if (params.githubUser) return { name: params.githubUser, email: `${params.githubUser}@users.noreply.github.com` };
  return { name: "orchestrator-agent", email: "orchestrator-agent@users.noreply.github.com" };
}

/** SSH key → private temp file + GIT_SSH_COMMAND; known_hosts beside it (the agent HOME is agent-writable). */
function prepareSsh(layout: Layout, key: string): { env: Record<string, string>; dispose: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-ssh-"));
  fs.chmodSync(dir, 0o700);
  const keyFile = path.join(dir, "id");
  // OpenSSH rejects a key without its final newline, which Secrets often lose.
  fs.writeFileSync(keyFile, key.endsWith("\n") ? key : `${key}\n`, { mode: 0o600 });
  const knownHosts = path.join(dir, "known_hosts");
  const command = [
    "ssh",
    "-i",
    shellQuote(keyFile),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    `UserKnownHostsFile=${shellQuote(knownHosts)}`,
  ].join(" ");
  return { env: { GIT_SSH_COMMAND: command }, dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function appCredentials(inputs: CredentialInputs): Promise<() => Promise<string>> {
  const { params, layout, target, redactor, log } = inputs;
  const app = params.githubApp!;
  const appIdText = readSecretFile(path.join(layout.githubAppSecret, "app-id"))?.trim();
  const privateKey = readSecretFile(path.join(layout.githubAppSecret, "private-key"));
  if (!appIdText || !privateKey?.trim()) {
    throw new RunnerError(
      Reasons.AuthFailed,
      `GitHub App ${app}: ${layout.githubAppSecret}/app-id and private-key are required. Create the secret github-app-${app.toLowerCase()} with keys app-id and private-key.`,
    );
  }
  redactor.add(privateKey);
  const installationText = readSecretFile(path.join(layout.githubAppSecret, "installation-id"))?.trim();
  const request = new Octokit({ baseUrl: params.githubApiUrl.replace(/\/+$/, "") }).request;
  const auth = createAppAuth({ appId: appIdText, privateKey, request });
  try {
    let installationId = installationText ? Number.parseInt(installationText, 10) : undefined;
    if (!installationId) {
      const { token: jwt } = await auth({ type: "app" });
      redactor.add(jwt);
      const { data } = await request("GET /repos/{owner}/{repo}/installation", {
        owner: target.owner,
        repo: target.repo,
        headers: { authorization: `bearer ${jwt}` },
      });
      installationId = data.id;
    }
    // The token may reach only the run's repositories, even when the App is installed on more.
    const repositoryNames = appRepositoryNames(target, inputs.docs);
    const mint = async () => {
      const { token } = await auth({ type: "installation", installationId, repositoryNames });
      redactor.add(token);
      return token;
    };
    await mint();
    log.info({ app, installationId, repositories: repositoryNames }, "Minted GitHub App installation token");
    return mint;
  } catch (err) {
    const status = (err as { status?: number }).status;
    const detail = redactor.scrub((err as Error).message);
    const hint =
      status === 404
        ? `the App is not installed on ${target.owner}/${target.repo}`
        : status === 401
          ? "GitHub rejected the App's JWT: check app-id and private-key"
          : "check app-id, private-key (PEM) and githubApiUrl";
    throw new RunnerError(
      Reasons.AuthFailed,
      `GitHub App ${app}: could not get an installation token (${status ? `HTTP ${status}: ` : ""}${detail}); ${hint}. The secret is github-app-${app.toLowerCase()}.`,
      { cause: err },
    );
  }
}

/**
 * Repositories an App token is scoped to: the target, plus the docs repository when it belongs to
 * the same installation's account (a token cannot span installations anyway).
 */
export function appRepositoryNames(target: BoundRepository, docs: BoundRepository | undefined): string[] {
  const names = [target.repo];
  if (docs && docs.owner.toLowerCase() === target.owner.toLowerCase() && docs.key !== target.key) names.push(docs.repo);
  return names;
}

/** Resolves and checks the run's credentials; throws RunnerError(AuthFailed) with what to fix. */
export async function resolveCredentials(inputs: CredentialInputs): Promise<Credentials> {
  const { params, layout, githubToken, redactor } = inputs;
  const author = computeAuthor(params);
  const noop = () => {};

  if (params.githubApp) {
    const mint = await appCredentials(inputs);
    const remoteUrl = (repository: BoundRepository) => repository.httpsUrl;
    const gitAuth = async (): Promise<GitAuth> => buildTokenAuth(params.githubUrl, await mint());
    return { gitMethod: "github-app", apiToken: mint, gitAuth, author, remoteUrl, dispose: noop };
  }

  redactor.add(githubToken);
  if (!githubToken) {
    throw new RunnerError(
      Reasons.AuthFailed,
      `No GitHub token for user ${params.githubUser ?? "(unset)"}: the runner needs GITHUB_TOKEN (secret github-token-${params.githubUser ?? "{user}"}, key token) to open pull requests, or set githubApp.`,
    );
  }
  const sshKey = readSecretFile(path.join(layout.sshSecret, "ssh-privatekey"));
  const usesSsh = Boolean(inputs.target.sshUrl ?? inputs.docs?.sshUrl);
  const ssh = sshKey?.trim() && usesSsh ? prepareSsh(layout, sshKey) : null;
  if (sshKey) redactor.add(sshKey);
  // Without a key, an SSH remote is reached over HTTPS with the token.
  const remoteUrl = (repository: BoundRepository) => (repository.sshUrl && ssh ? repository.sshUrl : repository.httpsUrl);
  const tokenAuth = buildTokenAuth(params.githubUrl, githubToken);
  const gitAuth = async (): Promise<GitAuth> => (ssh ? { env: { ...tokenAuth.env, ...ssh.env }, config: tokenAuth.config } : tokenAuth);
  return {
    gitMethod: ssh && inputs.target.sshUrl ? "ssh" : "token",
    apiToken: async () => githubToken,
    gitAuth,
    author,
    remoteUrl,
    dispose: ssh ? ssh.dispose : noop,
  };
}
