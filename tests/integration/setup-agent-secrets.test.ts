// infra/scripts/setup-agent-secrets.sh against a real kube-apiserver: it creates the agent's
// secrets with the keys the Job mounts, is idempotent, gives every bad input its own exit code
// and an actionable message, never shows the token (not even with --verbose or --dry-run, and
// never on kubectl's command line), and handles GitHub Apps.
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, type V1Secret } from "@kubernetes/client-node";
import { execa, type Result } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKubeTools, repoRoot } from "../../src/controlplane/index.js";
import { useControlPlane } from "../support/cluster.js";

const SCRIPT = path.join(repoRoot(), "infra", "scripts", "setup-agent-secrets.sh");
const TOKEN = "ghp_TestToken0123456789abcdefghijklmnopqrstu";
const TOKEN_B64 = Buffer.from(TOKEN).toString("base64");

/** Exit codes documented in the script's --help. */
const EXIT = {
  usage: 2,
  missing: 3,
  invalid: 4,
  sshKey: 5,
  sshPub: 6,
  token: 7,
  appKey: 8,
  kubectl: 9,
  cluster: 10,
  namespace: 11,
  apply: 12,
} as const;

describe("setup-agent-secrets.sh", () => {
  const cluster = useControlPlane("minimal");
  let tmp: string;
  let binDir: string;
  let argvLog: string;
  let noKubectlDir: string;
  let sshKey: string;
  let appKey: string;
  let ns: string;
  let core: CoreV1Api;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "setup-agent-secrets-"));
    // kubectl on PATH is a shim that records every argument list, so the test can prove the
    // token never reaches a command line (where `ps` would show it).
    const { kubectl } = await ensureKubeTools();
    binDir = path.join(tmp, "bin");
    argvLog = path.join(tmp, "kubectl-argv.log");
    fs.mkdirSync(binDir);
    fs.writeFileSync(path.join(binDir, "kubectl"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${kubectl}' "$@"\n`, {
      mode: 0o755,
    });

    // A PATH with the script's tools but no kubectl (this machine also has one in /usr/bin).
    noKubectlDir = path.join(tmp, "no-kubectl");
    fs.mkdirSync(noKubectlDir);
    for (const tool of ["bash", "cat", "sed", "tr", "grep", "base64", "mktemp", "id", "rm", "mv", "tail"]) {
      const found = ["/usr/bin", "/bin", "/usr/local/bin"].map((d) => path.join(d, tool)).find((f) => fs.existsSync(f));
      if (found) fs.symlinkSync(found, path.join(noKubectlDir, tool));
    }

    sshKey = path.join(tmp, "id_ed25519");
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f", sshKey]);
    appKey = path.join(tmp, "app.pem");
    fs.writeFileSync(appKey, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }));

    ns = await cluster().createNamespace("agents");
    core = cluster().kubeConfig.makeApiClient(CoreV1Api);
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs the script with our kubectl shim first on PATH and the control plane's kubeconfig. */
  function script(args: string[], opts: { env?: Record<string, string>; input?: string; path?: string } = {}): Promise<Result> {
    return execa("bash", [SCRIPT, ...args], {
      reject: false,
      env: { PATH: opts.path ?? `${binDir}:/usr/bin:/bin`, HOME: tmp, KUBECONFIG: cluster().kubeconfigPath, ...opts.env },
      extendEnv: false,
      ...(opts.input === undefined ? { stdin: "ignore" as const } : { input: opts.input }),
    }) as Promise<Result>;
  }

  const out = (r: Result) => `${String(r.stdout)}\n${String(r.stderr)}`;
  const userArgs = (user = "alice", token = TOKEN) => ["--user", user, "--ssh-key", sshKey, "--token", token, "--namespace", ns];
  const secret = (name: string): Promise<V1Secret> => core.readNamespacedSecret({ name, namespace: ns });
  const decode = (s: V1Secret) =>
    Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
  function expectNoToken(r: Result) {
    expect(out(r)).not.toContain(TOKEN);
    expect(out(r)).not.toContain(TOKEN_B64);
  }

  it("creates github-ssh-<user> and github-token-<user> with the keys the agent Job mounts", async () => {
    const r = await script(userArgs());
    expect(r.exitCode, out(r)).toBe(0);
    expectNoToken(r);
    expect(String(r.stdout)).toContain(`Created secret github-ssh-alice in namespace ${ns} (keys: ssh-privatekey, ssh-publickey)`);
    expect(String(r.stdout)).toContain(`Created secret github-token-alice in namespace ${ns} (keys: token)`);
    expect(String(r.stdout)).toContain('githubUser: "alice"');

    const ssh = await secret("github-ssh-alice");
    expect(ssh.type).toBe("Opaque");
    expect(decode(ssh)).toEqual({
      "ssh-privatekey": fs.readFileSync(sshKey, "utf8"),
      "ssh-publickey": fs.readFileSync(`${sshKey}.pub`, "utf8"),
    });
    const tok = await secret("github-token-alice");
    expect(decode(tok)).toEqual({ token: TOKEN });
    for (const s of [ssh, tok]) {
      expect(s.metadata?.labels?.["app.kubernetes.io/part-of"]).toBe("orchestrator");
      // Server-side apply: no last-applied annotation holding a second copy of the data.
      expect(Object.keys(s.metadata?.annotations ?? {})).not.toContain("kubectl.kubernetes.io/last-applied-configuration");
    }
  });

  it("is idempotent: a second run reports unchanged and writes nothing; a new token updates only its secret", async () => {
    const before = await Promise.all([secret("github-ssh-alice"), secret("github-token-alice")]);
    const r = await script(userArgs());
    expect(r.exitCode, out(r)).toBe(0);
    expect(String(r.stdout)).toContain(`Secret github-ssh-alice in namespace ${ns} is unchanged`);
    expect(String(r.stdout)).toContain(`Secret github-token-alice in namespace ${ns} is unchanged`);
    const after = await Promise.all([secret("github-ssh-alice"), secret("github-token-alice")]);
    expect(after.map((s) => s.metadata?.resourceVersion)).toEqual(before.map((s) => s.metadata?.resourceVersion));

    const rotated = "github_pat_11AAAAAAA0rotatedTokenValue0123456789";
    const u = await script(userArgs("alice", rotated));
    expect(u.exitCode, out(u)).toBe(0);
    expect(out(u)).not.toContain(rotated);
    expect(String(u.stdout)).toContain(`Secret github-ssh-alice in namespace ${ns} is unchanged`);
    expect(String(u.stdout)).toContain(`Updated secret github-token-alice in namespace ${ns}`);
    expect(decode(await secret("github-token-alice"))).toEqual({ token: rotated });
    await script(userArgs()); // back to TOKEN for the following tests
  });

  it("never shows the token: --verbose, --dry-run, a warning, and not on kubectl's command line", async () => {
    fs.writeFileSync(argvLog, "");
    const verbose = await script([...userArgs("bob"), "--verbose"]);
    expect(verbose.exitCode, out(verbose)).toBe(0);
    expect(String(verbose.stderr)).toContain("+ kubectl"); // verbose does show the commands
    expectNoToken(verbose);

    const dry = await script([...userArgs("carol"), "--dry-run", "--verbose"]);
    expect(dry.exitCode, out(dry)).toBe(0);
    expect(String(dry.stdout)).toContain(`DRY RUN: would apply Secret github-token-carol in namespace ${ns} (keys: token)`);
    expectNoToken(dry);
    await expect(secret("github-token-carol")).rejects.toMatchObject({ code: 404 });

    const oddToken = "not-a-pat-but-secret-value-42";
    const odd = await script([...userArgs("dave", oddToken), "--verbose"]);
    expect(odd.exitCode, out(odd)).toBe(0);
    expect(String(odd.stderr)).toContain("WARNING: the token does not look like a GitHub personal access token");
    expect(out(odd)).not.toContain(oddToken);
    expect(out(odd)).not.toContain(Buffer.from(oddToken).toString("base64"));

    const argv = fs.readFileSync(argvLog, "utf8");
    expect(argv).toContain("create secret generic github-token-bob");
    expect(argv).not.toContain(TOKEN);
    expect(argv).not.toContain(TOKEN_B64);
    expect(argv).not.toContain(oddToken);
  });

  it("reads the token from stdin with --token-file -", async () => {
    const r = await script(["--user", "erin", "--ssh-key", sshKey, "--token-file", "-", "--namespace", ns], { input: `${TOKEN}\n` });
    expect(r.exitCode, out(r)).toBe(0);
    expectNoToken(r);
    expect(decode(await secret("github-token-erin"))).toEqual({ token: TOKEN });
  });

  it("GitHub App: github-app-<lowercased app> with app-id and private-key (and installation-id), idempotent", async () => {
    const args = ["--app", "5DLabs-Rex", "--app-id", "123456", "--private-key", appKey, "--namespace", ns];
    const r = await script(args);
    expect(r.exitCode, out(r)).toBe(0);
    expect(String(r.stdout)).toContain(`Created secret github-app-5dlabs-rex in namespace ${ns} (keys: app-id, private-key)`);
    expect(String(r.stdout)).toContain('githubApp: "5DLabs-Rex"');
    const s = await secret("github-app-5dlabs-rex");
    expect(decode(s)).toEqual({ "app-id": "123456", "private-key": fs.readFileSync(appKey, "utf8") });
    expect(s.metadata?.labels?.["app.kubernetes.io/part-of"]).toBe("orchestrator");
    expect(String(r.stdout)).not.toContain("PRIVATE KEY");

    const again = await script(args);
    expect(String(again.stdout)).toContain(`Secret github-app-5dlabs-rex in namespace ${ns} is unchanged`);
    expect((await secret("github-app-5dlabs-rex")).metadata?.resourceVersion).toBe(s.metadata?.resourceVersion);

    const withInstallation = await script([...args, "--installation-id", "42"]);
    expect(String(withInstallation.stdout)).toContain("Updated secret github-app-5dlabs-rex");
    expect(decode(await secret("github-app-5dlabs-rex"))["installation-id"]).toBe("42");
  });

  it("--help documents every option and the exit codes", async () => {
    const r = await script(["--help"]);
    expect(r.exitCode).toBe(0);
    for (const flag of [
      "--user",
      "--ssh-key",
      "--token",
      "--token-file",
      "--namespace",
      "--context",
      "--dry-run",
      "--verbose",
      "--app",
      "--app-id",
      "--private-key",
      "Exit codes:",
    ]) {
      expect(String(r.stdout)).toContain(flag);
    }
    for (const code of Object.values(EXIT)) expect(String(r.stdout)).toMatch(new RegExp(`^\\s+${code}\\s+\\S`, "m"));
  });

  it("respects --context (and fails clearly for an unknown one)", async () => {
    const ok = await script([...userArgs(), "--context", "orchestrator-test"]);
    expect(ok.exitCode, out(ok)).toBe(0);
    expect(String(ok.stdout)).toContain("is unchanged");
    const bad = await script([...userArgs(), "--context", "no-such-context"]);
    expect(bad.exitCode, out(bad)).toBe(EXIT.cluster);
    expect(String(bad.stderr)).toContain("cannot reach the Kubernetes cluster of context no-such-context");
  });

  it("a user without rights: warns it cannot read the namespace, then exit 12 with the API server's refusal", async () => {
    // A ServiceAccount with no RBAC at all, through its own kubeconfig.
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "nobody" } } });
    const token =
      (
        await core.createNamespacedServiceAccountToken({
          name: "nobody",
          namespace: ns,
          body: { spec: { audiences: [], expirationSeconds: 600 } },
        })
      ).status?.token ?? "";
    const c = cluster().kubeConfig.getCurrentCluster();
    const kubeconfig = path.join(tmp, "nobody.kubeconfig");
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "nobody",
        clusters: [{ name: "c", cluster: { server: c?.server, "certificate-authority-data": c?.caData } }],
        users: [{ name: "nobody", user: { token } }],
        contexts: [{ name: "nobody", context: { cluster: "c", user: "nobody" } }],
      }),
    );
    const r = await script(userArgs("frank"), { env: { KUBECONFIG: kubeconfig } });
    expect(r.exitCode, out(r)).toBe(EXIT.apply);
    expect(String(r.stderr)).toContain(`WARNING: not allowed to read namespace '${ns}'`);
    expect(String(r.stderr)).toMatch(/ERROR: the API server rejected Secret github-ssh-frank .*forbidden/s);
    expect(String(r.stderr)).toContain(`kubectl auth can-i create secrets -n ${ns}`);
    expectNoToken(r);
  });

  describe("bad input: a clear message and a distinct exit code", () => {
    const cases: {
      name: string;
      args: () => string[];
      code: number;
      message: RegExp;
      env?: () => Record<string, string>;
      path?: () => string;
    }[] = [
      { name: "no options", args: () => [], code: EXIT.missing, message: /missing --user, --ssh-key and --token/ },
      {
        name: "missing --token",
        args: () => ["--user", "alice", "--ssh-key", sshKey],
        code: EXIT.missing,
        message: /missing --token <token>/,
      },
      {
        name: "missing --user and --ssh-key",
        args: () => ["--token", TOKEN],
        code: EXIT.missing,
        message: /missing --user <github-user>, --ssh-key <private-key>/,
      },
      { name: "unknown option", args: () => [...userArgs(), "--colour"], code: EXIT.usage, message: /unknown option '--colour'/ },
      { name: "option without value", args: () => ["--user", "alice", "--ssh-key"], code: EXIT.usage, message: /--ssh-key needs a value/ },
      {
        name: "option followed by another option",
        args: () => ["--user", "--ssh-key", sshKey, "--token", TOKEN],
        code: EXIT.usage,
        message: /--user needs a value/,
      },
      {
        name: "user name not usable in a Secret name",
        args: () => userArgs("Alice_Smith"),
        code: EXIT.invalid,
        message: /--user 'Alice_Smith' cannot be part of a Secret name/,
      },
      {
        name: "missing SSH key",
        args: () => ["--user", "alice", "--ssh-key", path.join(tmp, "nope"), "--token", TOKEN],
        code: EXIT.sshKey,
        message: /SSH private key .*nope does not exist\. Create one with: ssh-keygen/,
      },
      {
        name: "public key passed as --ssh-key",
        args: () => ["--user", "alice", "--ssh-key", `${sshKey}.pub`, "--token", TOKEN],
        code: EXIT.sshKey,
        message: /looks like a public key: pass the private key/,
      },
      {
        name: "missing .pub",
        args: () => {
          const k = path.join(tmp, "lonely");
          fs.copyFileSync(sshKey, k);
          return ["--user", "alice", "--ssh-key", k, "--token", TOKEN];
        },
        code: EXIT.sshPub,
        message: /SSH public key .*lonely\.pub does not exist\. Recreate it with: ssh-keygen -y -f/,
      },
      { name: "empty token", args: () => userArgs("alice", ""), code: EXIT.token, message: /the GitHub token is empty/ },
      { name: "blank token", args: () => userArgs("alice", "   "), code: EXIT.token, message: /the GitHub token is empty/ },
      {
        name: "GitHub App without --app-id",
        args: () => ["--app", "rex", "--private-key", appKey],
        code: EXIT.missing,
        message: /missing --app-id <id> for the GitHub App/,
      },
      {
        name: "non-numeric app id",
        args: () => ["--app", "rex", "--app-id", "abc", "--private-key", appKey],
        code: EXIT.invalid,
        message: /--app-id 'abc' must be the App's numeric ID/,
      },
      {
        name: "App key that is not PEM",
        args: () => ["--app", "rex", "--app-id", "1", "--private-key", `${sshKey}.pub`],
        code: EXIT.appKey,
        message: /is not a PEM private key/,
      },
      {
        name: "kubectl not on PATH",
        args: () => userArgs(),
        path: () => noKubectlDir,
        code: EXIT.kubectl,
        message: /kubectl is not on PATH/,
      },
      {
        name: "unreachable cluster (bogus KUBECONFIG)",
        args: () => userArgs(),
        env: () => ({ KUBECONFIG: path.join(tmp, "does-not-exist.kubeconfig") }),
        code: EXIT.cluster,
        message: /cannot reach the Kubernetes cluster .*Check KUBECONFIG or --context/s,
      },
      {
        name: "namespace that does not exist",
        args: () => [...userArgs(), "--namespace", "no-such-namespace"],
        code: EXIT.namespace,
        message: /namespace 'no-such-namespace' does not exist\. Create it \(kubectl create namespace no-such-namespace\)/,
      },
    ];

    it("every exit code is distinct", () => {
      expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
    });

    it.each(cases)("$name → exit $code", async ({ args, code, message, env, path: p }) => {
      const r = await script(args(), { ...(env ? { env: env() } : {}), ...(p ? { path: p() } : {}) });
      expect(r.exitCode, out(r)).toBe(code);
      expect(String(r.stderr)).toMatch(/^ERROR: /m);
      expect(String(r.stderr)).toMatch(message);
      expectNoToken(r);
    });
  });
});
