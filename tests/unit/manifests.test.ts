import { describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import {
  buildJob,
  buildRunConfigMap,
  buildWorkspacePvc,
  computeRunParameters,
  configMapName,
  jobName,
  sanitizeLabelValue,
  workspacePvcName,
} from "../../src/manifests/index.js";

const config = parseConfig("agent: {imagePullSecrets: [ghcr-secret]}\nstorage: {storageClassName: fast-ssd, workspaceSize: 100Gi}", {});
const run: CodeRun = {
  apiVersion: "orchestrator.platform/v1",
  kind: "CodeRun",
  metadata: { name: "simple-api-task-7", namespace: "ns", uid: "0123abcd-ef00-1111-2222-333344445555" },
  spec: {
    taskId: 7,
    service: "simple-api",
    repositoryUrl: "r",
    docsRepositoryUrl: "d",
    model: "m",
    githubUser: "alice",
    env: { Z: "1", A: "2" },
    envFromSecrets: [{ name: "DB", secretName: "db", secretKey: "url" }],
    contextVersion: 2,
    timeoutSeconds: 1800,
  },
};

describe("names", () => {
  it("are deterministic, attempt-specific and fit in 63 characters", () => {
    expect(jobName(run, 1)).toBe("code-simple-api-task-7-0123abcd-t7-v2-a1");
    expect(jobName(run, 2)).not.toBe(jobName(run, 1));
    expect(configMapName(run, 1)).toBe(`${jobName(run, 1)}-files`);
    const long = { ...run, metadata: { ...run.metadata, name: "x".repeat(200) } };
    expect(jobName(long, 12).length).toBeLessThanOrEqual(63);
    expect(jobName(long, 12)).toMatch(/-0123abcd-t7-v2-a12$/);
    expect(jobName({ ...long, metadata: { ...long.metadata, name: `${"x".repeat(199)}y` } }, 1)).not.toBe(jobName(long, 1));
  });
  it("label values follow the original sanitiser", () => {
    expect(sanitizeLabelValue("My_User Name!")).toBe("my-user-name");
    expect(sanitizeLabelValue(`-${"a".repeat(70)}`).length).toBe(63);
  });
});

describe("buildJob", () => {
  const job = buildJob(run, 1, config, "workspace-simple-api");
  const pod = job.spec?.template.spec;
  const agentOf = (j: typeof job) => j.spec?.template.spec?.containers.find((x) => x.name === "claude-code");
  const channelOf = (j: typeof job) => j.spec?.template.spec?.containers.find((x) => x.name === "channel");
  const c = agentOf(job);
  const ch = channelOf(job);
  it("is byte-identical for the same input", () => {
    expect(JSON.stringify(buildJob(run, 1, config, "workspace-simple-api"))).toBe(JSON.stringify(job));
  });
  it("is owned by the run and labelled", () => {
    expect(job.metadata?.ownerReferences).toEqual([
      {
        apiVersion: "orchestrator.platform/v1",
        kind: "CodeRun",
        name: run.metadata.name,
        uid: run.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(job.metadata?.labels).toMatchObject({
      app: "orchestrator",
      "task-id": "7",
      service: "simple-api",
      "orchestrator.platform/attempt": "1",
      "github-user": "alice",
    });
    expect(pod && job.spec?.template.metadata?.labels).toEqual(job.metadata?.labels);
  });
  it("runs restricted: non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp", () => {
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    for (const container of [c, ch])
      expect(container?.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        privileged: false,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.shareProcessNamespace).toBe(false);
  });
  it("mounts the workspace PVC, the run's files, managed settings and the SSH key", () => {
    expect(pod?.volumes?.find((v) => v.name === "workspace")?.persistentVolumeClaim?.claimName).toBe("workspace-simple-api");
    expect(pod?.volumes?.find((v) => v.name === "task-files")?.configMap?.name).toBe(configMapName(run, 1));
    expect(c?.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/workspace/target-repo", subPath: "workspace/target-repo" },
      { name: "workspace", mountPath: "/agent-home", subPath: "homes/user-alice" },
      { name: "task-files", mountPath: "/task-files", readOnly: true },
      { name: "task-files", mountPath: "/etc/claude-code/managed-settings.json", subPath: "managed-settings.json", readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(c?.workingDir).toBe("/workspace/target-repo");
    expect(ch?.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/workspace", subPath: "workspace" },
      { name: "workspace", mountPath: "/agent-home", subPath: "homes/user-alice" },
      { name: "task-files", mountPath: "/task-files", readOnly: true },
      { name: "workspace", mountPath: "/channel", subPath: "channel" },
      { name: "channel-tmp", mountPath: "/tmp" },
      { name: "ssh-key", mountPath: "/secrets/github-ssh", readOnly: true },
    ]);
    expect(pod?.volumes?.find((v) => v.name === "ssh-key")?.secret?.secretName).toBe("github-ssh-alice");
  });
  it("gives the channel the credentials by reference, and the agent spec.env sorted and envFromSecrets", () => {
    const channelEnv = ch?.env ?? [];
    expect(channelEnv.find((e) => e.name === "ANTHROPIC_API_KEY")?.valueFrom?.secretKeyRef).toEqual({
      name: "orchestrator-secrets",
      key: "ANTHROPIC_API_KEY",
    });
    expect(channelEnv.find((e) => e.name === "GITHUB_TOKEN")?.valueFrom?.secretKeyRef).toEqual({
      name: "github-token-alice",
      key: "token",
    });
    const env = c?.env ?? [];
    expect(env.filter((e) => e.name === "A" || e.name === "Z").map((e) => e.name)).toEqual(["A", "Z"]);
    expect(env.find((e) => e.name === "DB")?.valueFrom?.secretKeyRef).toEqual({ name: "db", key: "url" });
  });
  it("leaves the agent container nothing to steal: no Secret mount, no orchestrator credential, another uid, no token", () => {
    const secretVolumes = new Set((pod?.volumes ?? []).filter((v) => v.secret || v.projected).map((v) => v.name));
    expect(secretVolumes).toEqual(new Set(["ssh-key"]));
    expect((c?.volumeMounts ?? []).filter((m) => secretVolumes.has(m.name))).toEqual([]);
    expect((c?.volumeMounts ?? []).map((m) => m.mountPath)).not.toContain("/channel");
    const names = (c?.env ?? []).map((e) => e.name);
    for (const credential of ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GITHUB_TOKEN", "GITHUB_USER"])
      expect(names).not.toContain(credential);
    // The only secret reference the agent gets is the run's own envFromSecrets.
    expect((c?.env ?? []).filter((e) => e.valueFrom).map((e) => e.name)).toEqual(["DB"]);
    expect(c?.securityContext?.runAsUser).toBe(1000);
    expect(ch?.securityContext?.runAsUser).toBe(1001);
    expect(pod?.automountServiceAccountToken).toBe(false);
  });
  it("gives an agent of the workspace volume only the work tree and its own identity's home", () => {
    // Every agent runs as the same uid, so what it can reach is what its container mounts: the
    // directories of the shared volume below any of its mounts' subPaths.
    const reachable = (j: typeof job) => (agentOf(j)?.volumeMounts ?? []).filter((m) => m.name === "workspace").map((m) => m.subPath ?? "");
    const covers = (subPaths: string[], dir: string) => subPaths.some((p) => p === "" || dir === p || dir.startsWith(`${p}/`));
    const asBob = buildJob({ ...run, spec: { ...run.spec, githubUser: "bob" } }, 1, config, "workspace-simple-api");
    const asApp = buildJob({ ...run, spec: { ...run.spec, githubUser: undefined, githubApp: "Alice" } }, 1, config, "workspace-simple-api");
    const homeOf = (j: typeof job) => agentOf(j)?.volumeMounts?.find((m) => m.mountPath === "/agent-home")?.subPath ?? "(none)";
    for (const [self, other] of [
      [job, asBob],
      [asBob, job],
      [job, asApp],
    ] as const) {
      expect(covers(reachable(self), homeOf(other))).toBe(false);
      // Homes an earlier version kept on the workspace, every identity's.
      expect(covers(reachable(self), "workspace/.agent-home/bob")).toBe(false);
      expect(covers(reachable(self), "channel")).toBe(false);
    }
    expect([homeOf(job), homeOf(asBob), homeOf(asApp)]).toEqual(["homes/user-alice", "homes/user-bob", "homes/app-alice"]);
    expect(reachable(job)).toEqual(["workspace/target-repo", "homes/user-alice"]);
    // The channel prepares the workspace and moves a home left there, so it mounts the workspace
    // directory; of the homes, it too gets only the run identity's.
    expect(ch?.volumeMounts?.filter((m) => m.name === "workspace").map((m) => m.subPath)).toEqual([
      "workspace",
      "homes/user-alice",
      "channel",
    ]);
  });
  it("lists the channel first and the agent after it, both regular containers with no probe (kubelet starts them in one pass)", () => {
    expect(pod?.containers.map((i) => i.name)).toEqual(["channel", "claude-code"]);
    expect(pod?.initContainers).toBeUndefined();
    expect(ch).toMatchObject({ command: ["orchestrator-agent-channel"], image: c?.image });
    expect(ch?.restartPolicy).toBeUndefined();
    expect(ch?.startupProbe).toBeUndefined();
    expect(ch?.readinessProbe).toBeUndefined();
    expect(job.spec?.template.metadata?.annotations).toEqual({ "kubectl.kubernetes.io/default-container": "claude-code" });
    expect(c?.command).toEqual(["orchestrator-agent-runner"]);
  });
  it("applies deadline, TTL, resources and image pull secrets from config", () => {
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 1800, ttlSecondsAfterFinished: 3600 });
    expect(pod?.imagePullSecrets).toEqual([{ name: "ghcr-secret" }]);
    expect(c?.resources).toEqual(config.agent.resources);
    expect(c?.terminationMessagePolicy).toBe("FallbackToLogsOnError");
    // The channel's own record of the result, which the agent container cannot write.
    expect(ch).toMatchObject({ terminationMessagePath: "/dev/channel-termination-log", terminationMessagePolicy: "File" });
  });
  it("gives the channel its own resources: the defaults, or agent.channelResources", () => {
    expect(ch?.resources).toEqual({ requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "2", memory: "1Gi" } });
    const sized = parseConfig("agent: {channelResources: {requests: {cpu: 50m, memory: 128Mi}, limits: {memory: 512Mi}}}", {});
    const channel = channelOf(buildJob(run, 1, sized, "ws"));
    expect(channel?.resources).toEqual({ requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } });
    expect(agentOf(buildJob(run, 1, sized, "ws"))?.resources).toEqual(config.agent.resources);
  });
  it.each([
    [
      "agent: {channelResources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}}",
      /agent\.channelResources\.requests\.memory: the request 2Gi is above the limit 1Gi; lower requests\.memory or raise limits\.memory/,
    ],
    [
      "agent: {resources: {requests: {cpu: '3'}, limits: {cpu: 2500m}}}",
      /agent\.resources\.requests\.cpu: the request 3 is above the limit 2500m/,
    ],
    [
      "agent: {channelResources: {limits: {memory: 1GB}}}",
      /agent\.channelResources\.limits\.memory: must be a Kubernetes quantity such as 10Gi or 500m/,
    ],
    ["agent: {channelResources: {request: {cpu: 1}}}", /agent\.channelResources: Unrecognized key: "request"/],
  ])("refuses resources Kubernetes would refuse, naming the value to fix: %s", (yaml, message) => {
    expect(() => parseConfig(yaml, {})).toThrow(message);
  });
  it("accepts a request equal to its limit in other units", () => {
    expect(
      parseConfig("agent: {channelResources: {requests: {cpu: 1000m, memory: 1024Mi}, limits: {cpu: '1', memory: 1Gi}}}", {}).agent
        .channelResources.limits,
    ).toEqual({ cpu: "1", memory: "1Gi" });
  });
  it("github.caBundle: the run's files carry it and the channel's Node (which talks to GitHub) trusts it; without it, neither", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const withCa = parseConfig(`github: {caBundle: ${JSON.stringify(pem)}}`, {});
    const env = channelOf(buildJob(run, 1, withCa, "ws"))?.env ?? [];
    expect(env.find((e) => e.name === "NODE_EXTRA_CA_CERTS")?.value).toBe("/task-files/github-ca.crt");
    const params = computeRunParameters(run, 1, withCa);
    expect(buildRunConfigMap(run, 1, params, {}, withCa.github.caBundle).data?.["github-ca.crt"]).toBe(pem);
    expect(ch?.env?.some((e) => e.name === "NODE_EXTRA_CA_CERTS")).toBe(false);
    expect(buildRunConfigMap(run, 1, params, {}, config.github.caBundle).data).not.toHaveProperty("github-ca.crt");
    expect(() => parseConfig("github: {caBundle: not-a-certificate}", {})).toThrow(/caBundle.*must be PEM certificates/s);
  });
  it("gives the runner a budget below the deadline and continues on retries", () => {
    const p1 = computeRunParameters(run, 1, config);
    expect(p1.timeBudgetSeconds).toBeLessThan(1800);
    expect(p1.continueSession).toBe(false);
    expect(p1.branch).toBe("feature/task-7-implementation");
    expect(computeRunParameters(run, 2, config).continueSession).toBe(true);
  });
  it("takes the dollar budget from the run, else the service's default, else the global one (0 = none)", () => {
    const budgets = parseConfig("job: {maxCostUsd: 10, maxCostUsdByService: {simple-api: 3}}\nplay: {readyForQaLabel: qa-ready}", {});
    expect(computeRunParameters(run, 1, budgets)).toMatchObject({ maxCostUsd: 3, stageLabels: ["qa-ready"] });
    expect(computeRunParameters({ ...run, spec: { ...run.spec, maxCostUsd: 0.5 } }, 1, budgets).maxCostUsd).toBe(0.5);
    expect(computeRunParameters({ ...run, spec: { ...run.spec, service: "web" } }, 1, budgets).maxCostUsd).toBe(10);
    expect(computeRunParameters(run, 1, config)).not.toHaveProperty("maxCostUsd");
    expect(() => parseConfig("job: {maxCostUsd: -1}", {})).toThrow(/maxCostUsd/);
  });
});

describe("buildWorkspacePvc", () => {
  it("uses the configured size and class and has no owner", () => {
    const pvc = buildWorkspacePvc("simple-api", "Acme/API", "ns", config);
    expect(pvc.metadata?.name).toBe(workspacePvcName("simple-api", "acme/api"));
    expect(pvc.metadata?.name).toMatch(/^workspace-simple-api-[0-9a-f]{8}$/);
    expect(pvc.metadata?.annotations).toEqual({ "orchestrator.platform/repository": "acme/api" });
    // Two repositories of one service never share a workspace; names fit in 63 characters.
    expect(workspacePvcName("api", "acme/api")).not.toBe(workspacePvcName("api", "other/api"));
    expect(workspacePvcName("s".repeat(53), "acme/api").length).toBeLessThanOrEqual(63);
    expect(pvc.metadata?.ownerReferences).toBeUndefined();
    expect(pvc.spec).toEqual({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "100Gi" } },
      storageClassName: "fast-ssd",
    });
  });
});
