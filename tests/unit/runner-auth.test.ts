import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { RunParameters } from "../../src/api/runner-contract.js";
import { bindRepository } from "../../src/api/github-host.js";
import { appRepositoryNames, buildTokenAuth, buildTokenHelperConfig, computeAuthor, resolveCredentials } from "../../src/runner/auth.js";
import { buildLayout } from "../../src/runner/layout.js";
import { Redactor } from "../../src/runner/redact.js";

const log = pino({ level: "silent" });
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function setup(repositoryUrl: string, over: Partial<RunParameters> = {}, files: Record<string, string> = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "auth-"));
  roots.push(root);
  const layout = buildLayout(root);
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), content);
  }
  const params = {
    kind: "code",
    runName: "r",
    namespace: "n",
    attempt: 1,
    model: "m",
    repositoryUrl,
    workingDirectory: ".",
    baseBranch: "main",
    branch: "feature/x",
    githubUser: "rex",
    continueSession: false,
    overwriteMemory: false,
    maxTurns: 5,
    timeBudgetSeconds: 60,
    githubApiUrl: "http://127.0.0.1:9",
    githubUrl: "https://github.com",
    prLabels: [],
    taskId: 1,
    docsRepositoryUrl: repositoryUrl,
    ...over,
  } as RunParameters;
  const bound = bindRepository(repositoryUrl, params.githubUrl);
  if (!bound.ok) throw new Error(bound.problem);
  return { root, layout, params, target: bound.repository };
}

describe("resolveCredentials", () => {
  it("uses the SSH key for SSH remotes: private temp file, IdentitiesOnly, accept-new, known_hosts beside the key (not in the agent's HOME)", async () => {
    const { root, layout, params, target } = setup(
      "git@github.com:acme/shop.git",
      {},
      { "secrets/github-ssh/ssh-privatekey": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----" },
    );
    const creds = await resolveCredentials({ params, layout, githubToken: "ghp_token123", target, redactor: new Redactor(), log });
    expect(creds.gitMethod).toBe("ssh");
    const auth = await creds.gitAuth();
    const command = auth.env.GIT_SSH_COMMAND!;
    expect(command).toContain("IdentitiesOnly=yes");
    expect(command).toContain("StrictHostKeyChecking=accept-new");
    const keyFile = /-i '([^']+)'/.exec(command)![1]!;
    expect(command).toContain(`UserKnownHostsFile='${path.join(path.dirname(keyFile), "known_hosts")}'`);
    expect(keyFile.startsWith(root)).toBe(false);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(keyFile, "utf8").endsWith("-----END OPENSSH PRIVATE KEY-----\n")).toBe(true);
    expect(creds.remoteUrl(target)).toBe("ssh://git@github.com/acme/shop.git");
    creds.dispose();
    expect(fs.existsSync(keyFile)).toBe(false);
  });

  it("reaches an SSH remote over HTTPS with the token when there is no key", async () => {
    const { layout, params, target } = setup("git@github.com:acme/shop.git");
    const creds = await resolveCredentials({ params, layout, githubToken: "ghp_token123", target, redactor: new Redactor(), log });
    expect(creds.remoteUrl(target)).toBe("https://github.com/acme/shop.git");
    const auth = await creds.gitAuth();
    expect(auth).toEqual(buildTokenAuth("https://github.com", "ghp_token123"));
    expect(auth.env.GITHUB_TOKEN).toBe("ghp_token123");
    expect(auth.config.join("\n")).not.toContain("ghp_token123");
    expect(auth.config).toContainEqual(expect.stringMatching(/^credential\.https:\/\/github\.com\.helper=!/));
  });

  it("requires a token or an App, naming the secret", async () => {
    const { layout, params, target } = setup("https://github.com/acme/shop.git");
    await expect(
      resolveCredentials({ params, layout, githubToken: undefined, target, redactor: new Redactor(), log }),
    ).rejects.toMatchObject({ reason: "AuthFailed", message: expect.stringMatching(/github-token-rex/) });
    const app = setup("https://github.com/acme/shop.git", { githubApp: "Rex-App", githubUser: undefined });
    await expect(
      resolveCredentials({ params: app.params, layout: app.layout, githubToken: undefined, target, redactor: new Redactor(), log }),
    ).rejects.toMatchObject({ reason: "AuthFailed", message: expect.stringMatching(/github-app-rex-app/) });
  });

  it("scopes a GitHub App token to the run's repositories of the installation's account", () => {
    const repo = (url: string) => {
      const b = bindRepository(url, "https://github.com");
      if (!b.ok) throw new Error(b.problem);
      return b.repository;
    };
    expect(appRepositoryNames(repo("acme/shop"), undefined)).toEqual(["shop"]);
    expect(appRepositoryNames(repo("acme/shop"), repo("Acme/docs"))).toEqual(["shop", "docs"]);
    expect(appRepositoryNames(repo("acme/shop"), repo("acme/shop"))).toEqual(["shop"]);
    // Another account's repository is another installation: never added to this token.
    expect(appRepositoryNames(repo("acme/shop"), repo("other/docs"))).toEqual(["shop"]);
  });

  it("derives the commit identity", () => {
    expect(computeAuthor({ githubApp: "rex" })).toEqual({ name: "rex[bot]", email: "rex[bot]@users.noreply.github.com" });
    expect(computeAuthor({ githubUser: "jane" })).toEqual({ name: "jane", email: "jane@users.noreply.github.com" });
  });
});

describe("token credential helper", () => {
  const fill = (config: string[], url: string, env: Record<string, string>) =>
    execFileSync("git", [...config.flatMap((c) => ["-c", c]), "credential", "fill"], {
      input: `url=${url}\n\n`,
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: os.tmpdir(), GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });

  it("answers with the token from git's environment, for the repository's host only", () => {
    const config = buildTokenHelperConfig("https://github.com");
    expect(fill(config, "https://github.com/acme/shop.git", { GITHUB_TOKEN: "ghs_fromEnv" })).toContain("password=ghs_fromEnv");
    expect(fill(config, "https://github.com/acme/shop.git", { GITHUB_TOKEN: "ghs_fromEnv" })).toContain("username=x-access-token");
    // Another host, scheme or port gets nothing (git then fails instead of prompting).
    for (const url of ["https://evil.example.com/x.git", "http://github.com/acme/shop.git", "https://github.com:8443/acme/shop.git"]) {
      expect(() => fill(config, url, { GITHUB_TOKEN: "ghs_fromEnv" }), url).toThrow();
    }
  });

  it("sends the token as a header to the repository's origin only", () => {
    const auth = buildTokenAuth("https://github.com", "ghs_fromEnv");
    const header = (url: string) =>
      spawnSync("git", [...auth.config.flatMap((c) => ["-c", c]), "config", "--get-urlmatch", "http.extraheader", url], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), GIT_CONFIG_NOSYSTEM: "1", ...auth.env },
      }).stdout.trim();
    const expected = `Authorization: Basic ${Buffer.from("x-access-token:ghs_fromEnv").toString("base64")}`;
    expect(header("https://github.com/acme/shop.git")).toBe(expected);
    for (const url of ["https://evil.example.com/x.git", "http://github.com/acme/shop.git", "https://github.com:8443/acme/shop.git"]) {
      expect(header(url), url).toBe("");
    }
    // The helper stays for a 401 (a revoked token), so git reports the failed authentication;
    // no redirect is followed (git would send the header on to the new host).
    expect(auth.config).toEqual([...buildTokenHelperConfig("https://github.com"), "http.followRedirects=false"]);
  });
});
