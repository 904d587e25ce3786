import { describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { authorizeRun, buildAuthzAnnotations, KUBERNETES_REQUESTER, requesterOf, type RunRequest } from "../../src/authz/authorize.js";
import { parseConfig } from "../../src/config/config.js";

const config = parseConfig(
  `
authorization:
  mountableSecrets: [npm-token, sentry-dsn, orchestrator-secrets, github-token-bob]
  rules:
    - requesters: [api-token-1]
      identities: ["user:alice", "app:rex"]
      repositories: ["acme/*"]
      secrets: [npm-token]
      clusters: ["gpu-*", home]
    - requesters: ["system:serviceaccount:ci:*"]
      identities: ["app:rex"]
      repositories: ["acme/api"]
    - requesters: ["webhook:*"]
      identities: ["app:rex"]
      repositories: ["acme/*", "other/api"]
`,
  {},
);

const base: RunRequest = { githubUser: "alice", repositoryUrl: "acme/api", docsRepositoryUrl: "https://github.com/acme/docs.git" };

describe("authorizeRun", () => {
  const cases: [string, string, Partial<RunRequest>, true | [string, RegExp]][] = [
    ["a token using its identity on its repositories", "api-token-1", {}, true],
    [
      "a token mounting an allowed Secret",
      "api-token-1",
      { envFromSecrets: [{ name: "NPM_TOKEN", secretName: "npm-token", secretKey: "token" }] },
      true,
    ],
    [
      "the controller's own Secret, even when listed as mountable",
      "api-token-1",
      { envFromSecrets: [{ name: "X", secretName: "orchestrator-secrets", secretKey: "GITHUB_WEBHOOK_SECRET" }] },
      [
        "NotAuthorized",
        /Secret orchestrator-secrets may not be mounted into runs \(it holds the controller's or an identity's credentials\)/,
      ],
    ],
    [
      "another identity's token Secret",
      "api-token-1",
      { envFromSecrets: [{ name: "X", secretName: "github-token-bob", secretKey: "token" }] },
      ["NotAuthorized", /github-token-bob may not be mounted/],
    ],
    [
      "a Secret outside the allowlist",
      "api-token-1",
      { envFromSecrets: [{ name: "X", secretName: "prod-db", secretKey: "url" }] },
      ["NotAuthorized", /prod-db may not be mounted into runs; an administrator can add it to authorization\.mountableSecrets/],
    ],
    [
      "a mountable Secret the rule does not grant",
      "api-token-1",
      { envFromSecrets: [{ name: "X", secretName: "sentry-dsn", secretKey: "dsn" }] },
      ["NotAuthorized", /api-token-1 may not use Secret sentry-dsn/],
    ],
    [
      "secretName '.'",
      "api-token-1",
      { envFromSecrets: [{ name: "X", secretName: ".", secretKey: "k" }] },
      ["InvalidRequest", /secretName must be a DNS subdomain/],
    ],
    [
      "an identity the token may not use",
      "api-token-1",
      { githubUser: "bob" },
      ["NotAuthorized", /api-token-1 may not use GitHub identity user:bob/],
    ],
    ["a repository the token may not use", "api-token-1", { repositoryUrl: "other/api" }, ["NotAuthorized", /repository other\/api/]],
    [
      "a docs repository on another host",
      "api-token-1",
      { docsRepositoryUrl: "http://evil:8080/x/y.git" },
      ["RepositoryNotAllowed", /docsRepositoryUrl http:\/\/evil:8080\/x\/y\.git is not allowed/],
    ],
    [
      "NODE_OPTIONS in env",
      "api-token-1",
      { env: { NODE_OPTIONS: "--require /workspace/x.js" } },
      ["InvalidRequest", /NODE_OPTIONS is reserved/],
    ],
    [
      "HTTPS_PROXY from a Secret",
      "api-token-1",
      { envFromSecrets: [{ name: "https_proxy", secretName: "npm-token", secretKey: "t" }] },
      ["InvalidRequest", /https_proxy is reserved/],
    ],
    [
      "an identity name that is not a login",
      "api-token-1",
      { githubUser: "../x" },
      ["InvalidRequest", /githubUser "\.\.\/x" is not a GitHub user or App name/],
    ],
    [
      "a ServiceAccount of the allowed namespace",
      "system:serviceaccount:ci:bot",
      { githubUser: undefined, githubApp: "Rex", docsRepositoryUrl: "acme/api" },
      true,
    ],
    [
      "a ServiceAccount with a user identity",
      "system:serviceaccount:ci:bot",
      {},
      ["NotAuthorized", /system:serviceaccount:ci:bot may not use GitHub identity user:alice/],
    ],
    ["a token naming a cluster its rule allows", "api-token-1", { cluster: "gpu-east" }, true],
    ["a token naming home", "api-token-1", { cluster: "home" }, true],
    ["a token naming another cluster", "api-token-1", { cluster: "prod" }, ["NotAuthorized", /api-token-1 may not use cluster prod/]],
    [
      "a rule without clusters allows any",
      "system:serviceaccount:ci:bot",
      { githubUser: undefined, githubApp: "rex", docsRepositoryUrl: "acme/api", cluster: "prod" },
      true,
    ],
    ["an unknown requester", "api-token-2", {}, ["NotAuthorized", /api-token-2 may not create runs: no authorization rule lists it/]],
    ["kubectl, with rules that do not list it", KUBERNETES_REQUESTER, {}, ["NotAuthorized", /kubernetes may not create runs/]],
  ];
  for (const [name, requester, over, want] of cases) {
    it(name, () => {
      const d = authorizeRun({ ...base, ...over }, requester, config);
      if (want === true) expect(d).toMatchObject({ allowed: true });
      else {
        expect(d).toMatchObject({ allowed: false, reason: want[0] });
        if (!d.allowed) expect(d.message).toMatch(want[1]);
      }
    });
  }

  it("without rules: anyone, any identity and repository on the host, only mountable Secrets", () => {
    const open = parseConfig("authorization: {mountableSecrets: [npm-token]}", {});
    expect(authorizeRun({ ...base, githubUser: "bob", repositoryUrl: "other/x" }, KUBERNETES_REQUESTER, open)).toMatchObject({
      allowed: true,
    });
    expect(authorizeRun({ ...base, envFromSecrets: [{ name: "N", secretName: "npm-token", secretKey: "t" }] }, "x", open)).toMatchObject({
      allowed: true,
    });
    expect(
      authorizeRun(
        { ...base, envFromSecrets: [{ name: "N", secretName: "orchestrator-secrets", secretKey: "ANTHROPIC_API_KEY" }] },
        "x",
        open,
      ),
    ).toMatchObject({ allowed: false, reason: "NotAuthorized" });
    expect(authorizeRun({ ...base, repositoryUrl: "https://gitlab.com/acme/api" }, "x", open)).toMatchObject({
      allowed: false,
      reason: "RepositoryNotAllowed",
    });
  });
});

describe("Secrets labelled mountable", () => {
  const open = parseConfig("authorization: {mountableSecrets: [npm-token]}", {});
  const mount = (secretName: string): RunRequest => ({ ...base, envFromSecrets: [{ name: "X", secretName, secretKey: "k" }] });
  const labelled = new Set(["team-registry", "orchestrator-secrets", "github-app-rex"]);

  it("are mountable besides the config list; unlabelled ones are not", () => {
    expect(authorizeRun(mount("team-registry"), "x", open, labelled)).toMatchObject({ allowed: true });
    expect(authorizeRun(mount("team-registry"), "x", open)).toMatchObject({ allowed: false, reason: "NotAuthorized" });
    const plain = authorizeRun(mount("prod-db"), "x", open, labelled);
    expect(plain).toMatchObject({ allowed: false, reason: "NotAuthorized" });
    expect(!plain.allowed && plain.message).toMatch(/or label it orchestrator\.platform\/mountable=true/);
  });

  it("never make the controller's or an identity's Secret mountable", () => {
    for (const name of ["orchestrator-secrets", "github-app-rex"]) {
      const d = authorizeRun(mount(name), "x", open, labelled);
      expect(d).toMatchObject({ allowed: false, reason: "NotAuthorized" });
      expect(!d.allowed && d.message).toContain("it holds the controller's or an identity's credentials");
    }
  });

  it("still need a rule that grants them to the requester", () => {
    expect(authorizeRun({ ...mount("team-registry"), githubUser: "alice" }, "api-token-1", config, labelled)).toMatchObject({
      allowed: false,
      message: expect.stringContaining("api-token-1 may not use Secret team-registry"),
    });
  });
});

describe("requesterOf", () => {
  const run = (annotations: Record<string, string>, spec: Partial<CodeRun["spec"]> = {}): CodeRun => ({
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name: "r", annotations },
    spec: { taskId: 1, service: "api", repositoryUrl: "acme/api", docsRepositoryUrl: "acme/api", model: "m", githubUser: "alice", ...spec },
  });

  it("is the intake's requester while the spec is the one it authorized", () => {
    const spec = run({}).spec;
    expect(requesterOf(run(buildAuthzAnnotations("api-token-1", spec)))).toBe("api-token-1");
    // Cancelling, defaults the API server fills in, or a new prompt do not change who asked.
    expect(
      requesterOf(
        run(buildAuthzAnnotations("api-token-1", spec), {
          cancel: true,
          docsBranch: "main",
          contextVersion: 1,
          promptModification: "more tests",
        }),
      ),
    ).toBe("api-token-1");
  });

  it("falls back to kubernetes for kubectl-created runs and edited specs", () => {
    expect(requesterOf(run({}))).toBe(KUBERNETES_REQUESTER);
    expect(requesterOf(run({ "orchestrator.platform/requester": "api-token-1" }))).toBe(KUBERNETES_REQUESTER);
    const spec = run({}).spec;
    expect(requesterOf(run(buildAuthzAnnotations("api-token-1", spec), { githubUser: "bob" }))).toBe(KUBERNETES_REQUESTER);
    expect(
      requesterOf(
        run(buildAuthzAnnotations("api-token-1", spec), { envFromSecrets: [{ name: "X", secretName: "npm-token", secretKey: "t" }] }),
      ),
    ).toBe(KUBERNETES_REQUESTER);
  });
});
