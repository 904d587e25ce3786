import { describe, expect, it } from "vitest";
import { bindRepository, githubUrlProblem, isReservedEnvName, isSecretName } from "../../src/api/index.js";
import { ConfigError, parseConfig } from "../../src/config/config.js";

describe("bindRepository: credentials only for the configured GitHub host", () => {
  const allowed: [string, string, string | undefined][] = [
    ["acme/api", "https://github.com/acme/api.git", undefined],
    ["acme/api.git", "https://github.com/acme/api.git", undefined],
    ["https://github.com/acme/api", "https://github.com/acme/api.git", undefined],
    ["https://GitHub.com/acme/api.git/", "https://github.com/acme/api.git", undefined],
    ["git@github.com:acme/api.git", "https://github.com/acme/api.git", "ssh://git@github.com/acme/api.git"],
    ["ssh://git@github.com/acme/api.git", "https://github.com/acme/api.git", "ssh://git@github.com/acme/api.git"],
  ];
  for (const [url, httpsUrl, sshUrl] of allowed) {
    it(`accepts ${url}`, () => {
      const b = bindRepository(url, "https://github.com");
      expect(b).toEqual({ ok: true, repository: { owner: "acme", repo: "api", key: "acme/api", httpsUrl, ...(sshUrl ? { sshUrl } : {}) } });
    });
  }

  const refused: [string, RegExp][] = [
    ["http://github.com/acme/api.git", /http:\/\/github\.com is not the configured GitHub host/],
    ["https://github.com:8443/acme/api.git", /github\.com:8443 is not the configured GitHub host/],
    ["https://evil.example/acme/api.git", /evil\.example is not the configured GitHub host/],
    ["https://x-access-token:t@github.com/acme/api.git", /contains credentials/],
    ["git@evil.example:acme/api.git", /host evil\.example is not the configured GitHub host/],
    ["ssh://git@evil.example/acme/api.git", /host evil\.example/],
    ["file:///srv/git/api.git", /scheme file is not allowed/],
    ["git://github.com/acme/api.git", /scheme git is not allowed/],
    ["/srv/git/api.git", /not a GitHub repository URL/],
    ["https://github.com/acme/api/tree/main", /path is not \/owner\/repo/],
    ["https://github.com/acme/api?x=1", /query or fragment/],
    ["acme/..", /not a valid GitHub owner\/repository name/],
  ];
  for (const [url, why] of refused) {
    it(`refuses ${url}`, () => {
      const b = bindRepository(url, "https://github.com");
      expect(b.ok).toBe(false);
      if (!b.ok) {
        expect(b.problem).toMatch(why);
        expect(b.problem).toContain("credentials are only used with https://github.com");
      }
    });
  }

  it("binds to GHES hosts and, for tests, to a loopback origin with its port", () => {
    expect(bindRepository("https://ghe.example.com/acme/api", "https://ghe.example.com")).toMatchObject({ ok: true });
    expect(bindRepository("git@ghe.example.com:acme/api.git", "https://ghe.example.com")).toMatchObject({ ok: true });
    expect(bindRepository("http://127.0.0.1:3000/acme/api.git", "http://127.0.0.1:3000")).toMatchObject({
      ok: true,
      repository: { httpsUrl: "http://127.0.0.1:3000/acme/api.git" },
    });
    expect(bindRepository("http://127.0.0.1:3001/acme/api.git", "http://127.0.0.1:3000")).toMatchObject({ ok: false });
  });
});

describe("configured GitHub URLs", () => {
  it("must be https, or http on loopback only", () => {
    expect(githubUrlProblem("https://github.com")).toBeUndefined();
    expect(githubUrlProblem("http://127.0.0.1:9")).toBeUndefined();
    expect(githubUrlProblem("http://localhost:9")).toBeUndefined();
    expect(githubUrlProblem("http://github.com")).toMatch(/https/);
    expect(githubUrlProblem("https://u:p@github.com")).toMatch(/credentials/);
  });

  it("derives github.url from github.apiUrl and refuses plain http", () => {
    expect(parseConfig(null, {}).github).toEqual({ apiUrl: "https://api.github.com", url: "https://github.com", replies: true });
    expect(parseConfig("github: {apiUrl: https://ghe.example.com/api/v3}", {}).github.url).toBe("https://ghe.example.com");
    expect(parseConfig("github: {apiUrl: http://127.0.0.1:81, url: http://127.0.0.1:82/}", {}).github.url).toBe("http://127.0.0.1:82");
    expect(() => parseConfig("github: {apiUrl: http://ghe.example.com/api/v3}", {})).toThrow(ConfigError);
    expect(() => parseConfig("github: {url: http://ghe.example.com}", {})).toThrow(/github\.url: must use https:\/\//);
  });
});

describe("names a run may choose", () => {
  it("Secret names are DNS subdomains: '.' and '..' cannot turn a GET into a LIST", () => {
    for (const ok of ["npm-token", "a.b", "x1"]) expect(isSecretName(ok), ok).toBe(true);
    for (const bad of [".", "..", "a/b", "A", "-a", "a..b", "", "a".repeat(254)]) expect(isSecretName(bad), bad).toBe(false);
  });

  it("reserves the environment the runner, git and Node read", () => {
    for (const name of [
      "NODE_OPTIONS",
      "ANTHROPIC_BASE_URL",
      "GITHUB_TOKEN",
      "GIT_SSL_CAINFO",
      "https_proxy",
      "HTTPS_PROXY",
      "LD_PRELOAD",
      "PATH",
      "HOME",
      "SSH_AUTH_SOCK",
    ]) {
      expect(isReservedEnvName(name), name).toBe(true);
    }
    for (const name of ["NPM_TOKEN", "DATABASE_URL", "MY_GITHUB", "RUST_LOG"]) expect(isReservedEnvName(name), name).toBe(false);
  });
});
