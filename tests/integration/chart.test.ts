// The Helm chart (infra/charts/orchestrator, also reached as ./infra/orchestrator-chart, the path
// the chart's README uses): lint under Helm 3 and Helm 4, renders of the README's value sets whose
// config.yaml passes the controller's own config parser, schema and required-secret failures,
// and, against a real kube-apiserver, server-side dry-run, install, RBAC (exactly the verbs the
// controller uses, nothing more), upgrade and uninstall.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { AuthorizationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { execa, type Result } from "execa";
import { parseAllDocuments } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/config.js";
import { buildJob } from "../../src/manifests/index.js";
import { ensureKubeTools, repoRoot, type KubeTools } from "../../src/controlplane/index.js";
import { BUILTIN_TEMPLATES } from "../../src/templates/builtins.js";
import { applyChartRbac, chartDir } from "../support/chart-rbac.js";
import { useControlPlane } from "../support/cluster.js";

const ROOT = repoRoot();
const CHART = chartDir();
/** The path the chart's README uses (a symlink to infra/charts/orchestrator). */
const SEED_CHART = "./infra/orchestrator-chart";
const FIXTURES = path.join(ROOT, "tests", "fixtures", "chart");
const PROD_VALUES = path.join(FIXTURES, "prod-values.yaml");
const FULL_VALUES = path.join(FIXTURES, "full-values.yaml");
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n";
/** README "Local Development": --set image.pullPolicy=IfNotPresent --set secrets.anthropicApiKey="test-key" --set secrets.githubToken="test-token". */
const DEV_SET = [
  "--set",
  "image.pullPolicy=IfNotPresent",
  "--set",
  "secrets.anthropicApiKey=test-key",
  "--set",
  "secrets.githubToken=test-token",
];
/** README "Quick Start": only the API key. */
const QUICK_SET = ["--set", "secrets.anthropicApiKey=your-anthropic-api-key"];

/** The controller's permissions, as the task defines them: the chart must grant exactly these. */
const EXPECTED_RULES = [
  { apiGroups: ["orchestrator.platform"], resources: ["coderuns", "docsruns"], verbs: ["get", "list", "watch", "create", "patch"] },
  { apiGroups: ["orchestrator.platform"], resources: ["plays"], verbs: ["get", "list", "watch", "patch"] },
  { apiGroups: ["orchestrator.platform"], resources: ["coderuns/status", "docsruns/status", "plays/status"], verbs: ["patch"] },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "delete"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
  { apiGroups: [""], resources: ["configmaps"], verbs: ["create"] },
  { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["list", "watch", "create"] },
  { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];
const ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
// Typed views of the few rendered objects the assertions look into.
interface Container {
  image: string;
  imagePullPolicy: string;
  ports: { name: string; containerPort: number }[];
  env: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
  }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: Record<string, unknown>;
  resources: unknown;
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    strategy: { type: string; rollingUpdate?: unknown };
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        securityContext: Record<string, unknown>;
        containers: Container[];
        volumes: { name: string; configMap?: { name: string }; emptyDir?: unknown }[];
        imagePullSecrets?: { name: string }[];
        topologySpreadConstraints?: Record<string, unknown>[];
      };
    };
  };
}
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

let tools: KubeTools;
beforeAll(async () => {
  tools = await ensureKubeTools();
});

function run(bin: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return execa(bin, args, { cwd: ROOT, reject: false, ...opts }) as Promise<Result>;
}

/** helm template → objects. Throws with helm's stderr when the render fails. */
async function render(args: string[], helm = tools.helm): Promise<K8sObject[]> {
  const r = await run(helm, ["template", "orchestrator", SEED_CHART, "--namespace", "orchestrator", ...args]);
  if (r.exitCode !== 0) throw new Error(`helm template ${args.join(" ")} failed:\n${String(r.stderr)}`);
  return parseAllDocuments(String(r.stdout))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => Boolean(o?.kind));
}

function find<T extends K8sObject = K8sObject>(objs: K8sObject[], kind: string, name: string, namespace?: string): T {
  const o = objs.find(
    (x) => x.kind === kind && x.metadata.name === name && (namespace === undefined || x.metadata.namespace === namespace),
  );
  if (!o)
    throw new Error(
      `no ${kind} ${name}${namespace ? ` in ${namespace}` : ""} among: ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`,
    );
  return o as T;
}

/** The rendered config.yaml through the controller's own parser (strict zod schema). */
function controllerConfig(objs: K8sObject[], fullname = "orchestrator") {
  const cm = find(objs, "ConfigMap", `${fullname}-config`) as K8sObject & { data: Record<string, string> };
  const text = cm.data["config.yaml"];
  expect(text, "ConfigMap has config.yaml").toBeTypeOf("string");
  return parseConfig(text ?? "", {}, "config.yaml");
}

function container(objs: K8sObject[]): Container {
  const c = find<Deployment>(objs, "Deployment", "orchestrator").spec.template.spec.containers[0];
  if (!c) throw new Error("Deployment has no container");
  return c;
}

function secretData(objs: K8sObject[], name = "orchestrator-secrets", namespace = "orchestrator"): Record<string, string> {
  const s = find(objs, "Secret", name, namespace) as K8sObject & { data?: Record<string, string> };
  return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

function rulesOf(objs: K8sObject[], kind: "Role" | "ClusterRole", name: string): Rule[] {
  return (find(objs, kind, name) as K8sObject & { rules: Rule[] }).rules;
}

describe("chart: lint", () => {
  it("infra/orchestrator-chart is a symlink to charts/orchestrator", () => {
    expect(fs.readlinkSync(path.join(ROOT, "infra", "orchestrator-chart"))).toBe("charts/orchestrator");
  });

  for (const helmName of ["helm3", "helm"] as const) {
    for (const chart of [SEED_CHART, "infra/charts/orchestrator"]) {
      it(`${helmName === "helm3" ? "Helm 3" : "Helm 4"} lint --strict ${chart} (no values, as in the README) and with the production values`, async () => {
        for (const extra of [[], ["--values", PROD_VALUES], ["--values", FULL_VALUES]]) {
          const r = await run(tools[helmName], ["lint", "--strict", chart, ...extra]);
          const out = `${String(r.stdout)}\n${String(r.stderr)}`;
          expect(r.exitCode, out).toBe(0);
          expect(out).toContain("0 chart(s) failed");
          expect(out).not.toMatch(/\[(ERROR|WARNING)\]/);
        }
      });
    }
  }
});

describe("chart: render", () => {
  it("default values + the required secret: every object of the README's Architecture section, config valid", async () => {
    const objs = await render(QUICK_SET);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      "ConfigMap/orchestrator-claude-templates",
      "ConfigMap/orchestrator-config",
      "Deployment/orchestrator",
      "Ingress/orchestrator",
      "NetworkPolicy/orchestrator-agents",
      "Role/orchestrator",
      "RoleBinding/orchestrator",
      "Secret/orchestrator-secrets",
      "Service/orchestrator",
      "ServiceAccount/orchestrator",
      "ValidatingAdmissionPolicy/orchestrator-orchestrator-requester",
      "ValidatingAdmissionPolicyBinding/orchestrator-orchestrator-requester",
    ]);
    for (const o of objs.filter((x) => !x.kind.startsWith("ValidatingAdmissionPolicy")))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("orchestrator");

    const cfg = controllerConfig(objs);
    expect(cfg.namespace).toBe("orchestrator");
    expect(cfg.server.port).toBe(8080);
    expect(cfg.agent.image).toEqual({ repository: "ghcr.io/5dlabs/cto/claude-code", tag: "latest", pullPolicy: "Always" });
    expect(cfg.storage).toEqual({ storageClassName: "local-path", workspaceSize: "10Gi" });
    expect(cfg.secrets).toEqual({ apiKeySecretName: "orchestrator-secrets", apiKeySecretKey: "ANTHROPIC_API_KEY" });
    expect(cfg.templates.dir).toBe("/claude-templates");
    expect(cfg.api.tokenReview).toBe(false);

    // The README's tables: defaults.
    const dep = find<Deployment>(objs, "Deployment", "orchestrator");
    expect(dep.spec.replicas).toBe(1);
    const c = container(objs);
    expect(c.image).toBe("ghcr.io/5dlabs/cto/orchestrator:latest");
    expect(c.imagePullPolicy).toBe("Always");
    const svc = find(objs, "Service", "orchestrator") as K8sObject & {
      spec: { type: string; ports: { port: number; targetPort: string }[] };
    };
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.spec.ports).toEqual([{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }]);
    expect(c.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    const ing = find(objs, "Ingress", "orchestrator") as K8sObject & {
      spec: { ingressClassName: string; rules: { host: string; http: { paths: { path: string; pathType: string }[] } }[]; tls?: unknown };
    };
    expect(ing.spec.ingressClassName).toBe("nginx");
    expect(ing.spec.rules[0]?.host).toBe("orchestrator.local");
    expect(ing.spec.rules[0]?.http.paths[0]).toMatchObject({
      path: "/",
      pathType: "Prefix",
      backend: { service: { name: "orchestrator", port: { number: 80 } } },
    });
    expect(ing.spec.tls).toBeUndefined();
    expect(secretData(objs)).toEqual({ ANTHROPIC_API_KEY: "your-anthropic-api-key" });
  });

  it("the README's production values file", async () => {
    const objs = await render(["--values", PROD_VALUES]);
    const cfg = controllerConfig(objs);
    expect(cfg.storage).toEqual({ storageClassName: "fast-ssd", workspaceSize: "100Gi" });
    const c = container(objs);
    expect(c.image).toBe("ghcr.io/5dlabs/cto/orchestrator:v1.0.0");
    expect(c.resources).toEqual({ limits: { cpu: "1000m", memory: "1Gi" }, requests: { cpu: "200m", memory: "256Mi" } });
    const ing = find(objs, "Ingress", "orchestrator") as K8sObject & { spec: { rules: { host: string }[]; tls: unknown } };
    expect(ing.spec.rules.map((r) => r.host)).toEqual(["orchestrator.yourdomain.com"]);
    expect(ing.spec.tls).toEqual([{ hosts: ["orchestrator.yourdomain.com"], secretName: "orchestrator-tls" }]);
  });

  it("the README's development --set values", async () => {
    const objs = await render(DEV_SET);
    controllerConfig(objs);
    expect(container(objs).imagePullPolicy).toBe("IfNotPresent");
    expect(secretData(objs)).toEqual({ ANTHROPIC_API_KEY: "test-key", GITHUB_TOKEN: "test-token" });
  });

  it("every controller section set: each value lands on its config key and passes the controller's schema", async () => {
    const objs = await render(["--values", FULL_VALUES]);
    const cfg = controllerConfig(objs);
    expect(cfg).toMatchObject({
      namespace: "agents",
      controller: { enabled: false, workers: 2, resyncSeconds: 60, qps: 12.5, burst: 20 },
      agent: {
        image: { repository: "registry.example.com/claude-code", tag: "1.0.56", pullPolicy: "IfNotPresent" },
        imagePullSecrets: ["agent-pull"],
        resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { cpu: "4", memory: "8Gi", "ephemeral-storage": "20Gi" } },
        channelResources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { cpu: "0.5", memory: "512Mi" } },
        serviceAccountName: "agent",
        command: ["node", "/app/dist/cmd/runner.js"],
        branchPrefix: "agent/",
        baseBranch: "develop",
      },
      job: {
        activeDeadlineSeconds: 7200,
        ttlSecondsAfterFinished: 0,
        maxRetries: 5,
        retryBackoffSeconds: 2.5,
        retryBackoffMaxSeconds: 300,
        maxTurns: 500,
        budgetMarginSeconds: 300,
      },
      storage: { storageClassName: "", workspaceSize: "50Gi" },
      concurrency: { perService: 2 },
      models: { defaultCodeModel: "claude-opus-4-20250514", defaultDocsModel: "claude-sonnet-4-20250514" },
      permissions: { allow: ["Read", "Grep"], deny: ["Bash(rm:*)"] },
      github: { apiUrl: "https://github.example.com/api/v3", replies: false, caBundle: CA_PEM },
      api: { tokenReview: true, maxBodyBytes: 2097152 },
      webhook: {
        maxBodyBytes: 1048576,
        allowedAssociations: ["OWNER"],
        allowUsers: ["renovate[bot]"],
        defaults: { service: "web", githubUser: "alice", model: "claude-sonnet-4-20250514", docsProjectDirectory: "docs" },
        rules: [
          {
            name: "claude-comment",
            event: "issue_comment",
            actions: ["created"],
            commentPattern: "^@claude (?<prompt>.+)",
            run: { service: "web", githubApp: "5DLabs-Rex" },
          },
          { name: "label", event: "issues", actions: [], label: "agent", run: {} },
        ],
      },
      agents: { rex: { githubApp: "5DLabs-Rex", role: "implementer" }, blaze: { githubUser: "blaze-bot", role: "" } },
    });
    // Secrets never go into the ConfigMap.
    const cmText = JSON.stringify(find(objs, "ConfigMap", "orchestrator-config"));
    for (const s of ["sk-ant-test", "ghp_000000000000000000000000000000000000", "token-one", "webhook-secret"])
      expect(cmText).not.toContain(s);
    expect(secretData(objs)).toEqual({
      ANTHROPIC_API_KEY: "sk-ant-test",
      GITHUB_TOKEN: "ghp_000000000000000000000000000000000000",
      ORCHESTRATOR_API_TOKENS: "token-one,token-two",
      GITHUB_WEBHOOK_SECRET: "webhook-secret",
      GITHUB_WEBHOOK_SECRET_PREVIOUS: "webhook-secret-old",
    });
    // config.namespace elsewhere: RBAC and the agents' copy of the API key go there; the
    // controller is told through KUBERNETES_NAMESPACE (which wins over POD_NAMESPACE).
    expect(find(objs, "Role", "orchestrator").metadata.namespace).toBe("agents");
    expect(find(objs, "RoleBinding", "orchestrator").metadata.namespace).toBe("agents");
    expect(secretData(objs, "orchestrator-secrets", "agents")).toEqual({ ANTHROPIC_API_KEY: "sk-ant-test" });
    expect(container(objs).env.find((e) => e.name === "KUBERNETES_NAMESPACE")?.value).toBe("agents");
    // github.caBundle: the controller's Node trusts it too, from the config ConfigMap it mounts at /config.
    expect(container(objs).env.find((e) => e.name === "NODE_EXTRA_CA_CERTS")?.value).toBe("/config/github-ca.crt");
    expect((find(objs, "ConfigMap", "orchestrator-config") as K8sObject & { data: Record<string, string> }).data["github-ca.crt"]).toBe(
      CA_PEM,
    );
    // api.tokenReview adds the cluster-scoped TokenReview permission, and nothing else.
    expect(rulesOf(objs, "ClusterRole", "orchestrator-orchestrator-tokenreview")).toEqual([
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
    ]);
    expect(find(objs, "ClusterRoleBinding", "orchestrator-orchestrator-tokenreview")).toMatchObject({
      subjects: [{ kind: "ServiceAccount", name: "orchestrator", namespace: "orchestrator" }],
    });
    // Pull secrets: the controller's list for the pod, the agent list for Jobs.
    expect(find<Deployment>(objs, "Deployment", "orchestrator").spec.template.spec.imagePullSecrets).toEqual([{ name: "ghcr-secret" }]);
    const tpl = find(objs, "ConfigMap", "orchestrator-claude-templates") as K8sObject & { data: Record<string, string> };
    expect(tpl.data["code_CLAUDE.md.hbs"]).toBe("# Task {{taskId}}\n");
  });

  it("agent Jobs inherit the controller's pull secrets when agent.imagePullSecrets is empty", async () => {
    const cfg = controllerConfig(await render([...QUICK_SET, "--set", "imagePullSecrets[0].name=ghcr-secret"]));
    expect(cfg.agent.imagePullSecrets).toEqual(["ghcr-secret"]);
  });

  it("Deployment: probes, restricted security context, config/templates mounts, secret env, rolling update", async () => {
    const objs = await render(QUICK_SET);
    const dep = find<Deployment>(objs, "Deployment", "orchestrator");
    // Leader election on (default): old and new pod may overlap, a replica always serves.
    expect(dep.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe("orchestrator");
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      fsGroup: 2000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    const c = container(objs);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/health", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(c.volumeMounts).toEqual([
      { name: "config", mountPath: "/config", readOnly: true },
      { name: "claude-templates", mountPath: "/claude-templates", readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(pod.volumes.map((v) => [v.name, v.configMap?.name ?? "emptyDir"])).toEqual([
      ["config", "orchestrator-config"],
      ["claude-templates", "orchestrator-claude-templates"],
      ["tmp", "emptyDir"],
    ]);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    expect(env.ORCHESTRATOR_CONFIG?.value).toBe("/config/config.yaml");
    expect(env.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.namespace");
    expect(env.POD_NAME?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
    expect(env.KUBERNETES_NAMESPACE).toBeUndefined();
    expect(env.ANTHROPIC_API_KEY?.valueFrom?.secretKeyRef).toEqual({ name: "orchestrator-secrets", key: "ANTHROPIC_API_KEY" });
    for (const [name, key] of [
      ["GITHUB_TOKEN", "GITHUB_TOKEN"],
      ["ORCHESTRATOR_API_TOKENS", "ORCHESTRATOR_API_TOKENS"],
      ["GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET"],
      ["GITHUB_WEBHOOK_SECRET_PREVIOUS", "GITHUB_WEBHOOK_SECRET_PREVIOUS"],
    ] as const) {
      expect(env[name]?.valueFrom?.secretKeyRef, name).toEqual({ name: "orchestrator-secrets", key, optional: true });
    }
  });

  it("checksum annotations change exactly when the config, the templates or the secrets change", async () => {
    const sums = async (args: string[]) =>
      find<Deployment>(await render([...QUICK_SET, ...args]), "Deployment", "orchestrator").spec.template.metadata.annotations;
    const base = await sums([]);
    expect(Object.keys(base).sort()).toEqual(["checksum/claude-templates", "checksum/config", "checksum/secret"]);
    expect(await sums([])).toEqual(base);
    const cfg = await sums(["--set", "storage.workspaceSize=20Gi"]);
    expect(cfg["checksum/config"]).not.toBe(base["checksum/config"]);
    expect(cfg["checksum/secret"]).toBe(base["checksum/secret"]);
    const tpl = await sums(["--set-string", "templates.overrides.code_CLAUDE\\.md\\.hbs=x"]);
    expect(tpl["checksum/claude-templates"]).not.toBe(base["checksum/claude-templates"]);
    expect(tpl["checksum/config"]).toBe(base["checksum/config"]);
    const sec = await sums(["--set", "secrets.webhookSecret=rotated"]);
    expect(sec["checksum/secret"]).not.toBe(base["checksum/secret"]);
    expect(sec["checksum/config"]).toBe(base["checksum/config"]);
  });

  it("an existing Secret: nothing created, everything read from it (also the upstream anthropicApiKey=use-existing)", async () => {
    const objs = await render(["--set", "secrets.existingSecret=my-secrets"]);
    expect(objs.filter((o) => o.kind === "Secret")).toEqual([]);
    expect(
      container(objs)
        .env.filter((e) => e.valueFrom?.secretKeyRef)
        .map((e) => e.valueFrom?.secretKeyRef?.name),
    ).toEqual(Array(5).fill("my-secrets"));
    expect(controllerConfig(objs).secrets.apiKeySecretName).toBe("my-secrets");

    // Release "demo" → fullname demo-orchestrator, so "orchestrator-secrets" can only come from use-existing.
    const r = await run(tools.helm, ["template", "demo", SEED_CHART, "--set", "secrets.anthropicApiKey=use-existing"]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const legacy = parseAllDocuments(String(r.stdout))
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => Boolean(o?.kind));
    expect(legacy.filter((o) => o.kind === "Secret")).toEqual([]);
    expect(controllerConfig(legacy, "demo-orchestrator").secrets.apiKeySecretName).toBe("orchestrator-secrets");
  });

  it("several replicas: a PodDisruptionBudget, spread over nodes, the leader Lease in the config", async () => {
    const one = await render(QUICK_SET);
    expect(one.filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
    expect(controllerConfig(one).controller.leaderElection).toEqual({
      enabled: true,
      leaseName: "orchestrator-leader",
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    });

    const three = await render([...QUICK_SET, "--set", "replicaCount=3", "--set", "controller.leaderElection.leaseDurationSeconds=20"]);
    const dep = find<Deployment>(three, "Deployment", "orchestrator");
    expect(dep.spec.replicas).toBe(3);
    const selector = { "app.kubernetes.io/name": "orchestrator", "app.kubernetes.io/instance": "orchestrator" };
    expect(dep.spec.template.spec.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
    ]);
    expect(find(three, "PodDisruptionBudget", "orchestrator")).toMatchObject({
      apiVersion: "policy/v1",
      metadata: { namespace: "orchestrator" },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    });
    expect(controllerConfig(three).controller.leaderElection.leaseDurationSeconds).toBe(20);

    const custom = await render([
      ...QUICK_SET,
      "--set",
      "replicaCount=2",
      "--set",
      "podDisruptionBudget.enabled=false",
      "--set",
      "topologySpreadConstraints[0].maxSkew=1",
      "--set",
      "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
      "--set",
      "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    ]);
    expect(custom.filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
    expect(find<Deployment>(custom, "Deployment", "orchestrator").spec.template.spec.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "DoNotSchedule" },
    ]);

    // Without leader election one pod at a time, as before.
    const single = await render([...QUICK_SET, "--set", "controller.leaderElection.enabled=false"]);
    expect(find<Deployment>(single, "Deployment", "orchestrator").spec.strategy).toEqual({ type: "Recreate" });
    // A timing the controller would refuse fails at install time.
    const bad = await run(tools.helm, [
      "template",
      "orchestrator",
      CHART,
      ...QUICK_SET,
      "--set",
      "controller.leaderElection.retryPeriodSeconds=0",
    ]);
    expect(bad.exitCode).not.toBe(0);
    expect(String(bad.stderr)).toContain("retryPeriodSeconds");
  });

  it("apiTokens: a comma-separated string or a list", async () => {
    expect(secretData(await render([...QUICK_SET, "--set", "secrets.apiTokens=a\\,b"])).ORCHESTRATOR_API_TOKENS).toBe("a,b");
    expect(secretData(await render([...QUICK_SET, "--set", "secrets.apiTokens={a,b}"])).ORCHESTRATOR_API_TOKENS).toBe("a,b");
  });

  it("RBAC: exactly the controller's verbs, always as a namespaced Role bound to the chart's ServiceAccount", async () => {
    const ns = await render(QUICK_SET);
    expect(rulesOf(ns, "Role", "orchestrator")).toEqual(EXPECTED_RULES);
    expect(find(ns, "RoleBinding", "orchestrator")).toMatchObject({
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "orchestrator" },
      subjects: [{ kind: "ServiceAccount", name: "orchestrator", namespace: "orchestrator" }],
    });
    expect(ns.some((o) => o.kind.startsWith("Cluster"))).toBe(false);

    // A ClusterRole would grant Secrets and Jobs in every namespace: refused with what to do.
    const cluster = await run(tools.helm, [
      "template",
      "orchestrator",
      CHART,
      "--namespace",
      "orchestrator",
      ...QUICK_SET,
      "--set",
      "rbac.namespaced=false",
    ]);
    expect(cluster.exitCode).not.toBe(0);
    expect(String(cluster.stderr)).toMatch(/rbac\.namespaced=false is not supported.*Remove --set rbac\.namespaced=false/s);

    const none = await render([...QUICK_SET, "--set", "rbac.create=false", "--set", "api.tokenReview=true"]);
    expect(none.filter((o) => /Role/.test(o.kind))).toEqual([]);

    const extra = await render([
      ...QUICK_SET,
      "--set",
      "rbac.extraRules[0].apiGroups[0]=",
      "--set",
      "rbac.extraRules[0].resources[0]=services",
      "--set",
      "rbac.extraRules[0].verbs[0]=get",
    ]);
    expect(rulesOf(extra, "Role", "orchestrator")).toEqual([
      ...EXPECTED_RULES,
      { apiGroups: [""], resources: ["services"], verbs: ["get"] },
    ]);
  });

  it("the templates ConfigMap is never empty, takes chart files and value overrides; override names match the controller's templates", async () => {
    const tplOf = (objs: K8sObject[]) =>
      (find(objs, "ConfigMap", "orchestrator-claude-templates") as K8sObject & { data: Record<string, string> }).data;
    const base = tplOf(await render(QUICK_SET));
    expect(Object.keys(base)).toEqual(["README.md"]);
    expect(base["README.md"]).toBe(fs.readFileSync(path.join(CHART, "claude-templates", "README.md"), "utf8"));

    // A file claude-templates/*.hbs in (a copy of) the chart; a value override of the same name wins.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "chart-copy-"));
    try {
      fs.cpSync(CHART, copy, { recursive: true });
      fs.writeFileSync(path.join(copy, "claude-templates", "docs_CLAUDE.md.hbs"), "from the chart {{runName}}\n");
      fs.writeFileSync(path.join(copy, "claude-templates", "code_mcp.json.hbs"), "{}\n");
      const r = await run(tools.helm, [
        "template",
        "orchestrator",
        copy,
        ...QUICK_SET,
        "--set-string",
        "templates.overrides.code_mcp\\.json\\.hbs=from values",
      ]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const data = tplOf(
        parseAllDocuments(String(r.stdout))
          .map((d) => d.toJS() as K8sObject)
          .filter((o) => o?.kind),
      );
      expect(data).toEqual({
        "README.md": base["README.md"],
        "docs_CLAUDE.md.hbs": "from the chart {{runName}}\n",
        "code_mcp.json.hbs": "from values",
      });
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }

    const schema = JSON.parse(fs.readFileSync(path.join(CHART, "values.schema.json"), "utf8")) as {
      properties: { templates: { properties: { overrides: { propertyNames: { enum: string[] } } } } };
    };
    expect([...schema.properties.templates.properties.overrides.propertyNames.enum].sort()).toEqual(
      Object.keys(BUILTIN_TEMPLATES)
        .map((n) => `${n}.hbs`)
        .sort(),
    );
  });
});

describe("chart: agent NetworkPolicy", () => {
  type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string }[] };
  type Rule = { to?: { ipBlock?: { cidr: string; except?: string[] } }[]; ports?: { protocol: string; port: number }[] };
  type Policy = K8sObject & { spec: { podSelector: Selector; policyTypes: string[]; egress?: Rule[]; ingress?: unknown[] } };

  const selects = (s: Selector, labels: Record<string, string>) =>
    Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (s.matchExpressions ?? []).every((e) => e.operator === "Exists" && e.key in labels);
  const family = (ip: string) => (net.isIPv6(ip) ? "ipv6" : "ipv4");
  const inBlock = (ip: string, cidr: string) => {
    const [addr, prefix] = cidr.split("/");
    const list = new net.BlockList();
    if (family(addr!) !== family(ip)) return false;
    list.addSubnet(addr!, Number(prefix), family(addr!));
    return list.check(ip, family(ip));
  };
  /** Whether the policy lets an agent pod open a TCP connection to ip:port (address rules only). */
  const allows = (p: Policy, ip: string, port: number) =>
    (p.spec.egress ?? []).some(
      (r) =>
        (r.ports ?? []).some((x) => x.protocol === "TCP" && x.port === port) &&
        (r.to ?? []).some((t) => t.ipBlock && inBlock(ip, t.ipBlock.cidr) && !(t.ipBlock.except ?? []).some((e) => inBlock(ip, e))),
    );
  const policyOf = async (args: string[]) => find(await render([...QUICK_SET, ...args]), "NetworkPolicy", "orchestrator-agents") as Policy;

  it("selects every agent pod (CodeRun and DocsRun) and not the controller's; no ingress; DNS to kube-dns only", async () => {
    const objs = await render(QUICK_SET);
    const policy = find(objs, "NetworkPolicy", "orchestrator-agents") as Policy;
    expect(policy.metadata.namespace).toBe("orchestrator");
    const config = controllerConfig(objs);
    const meta = { namespace: "orchestrator", uid: "0123abcd-ef00-1111-2222-333344445555" };
    const code = buildJob(
      {
        apiVersion: "orchestrator.platform/v1",
        kind: "CodeRun",
        metadata: { name: "c", ...meta },
        spec: { taskId: 1, service: "api", repositoryUrl: "a/b", docsRepositoryUrl: "a/b", model: "m", githubUser: "u" },
      },
      1,
      config,
      "ws",
    );
    const docs = buildJob(
      {
        apiVersion: "orchestrator.platform/v1",
        kind: "DocsRun",
        metadata: { name: "d", ...meta },
        spec: { repositoryUrl: "a/b", workingDirectory: ".", sourceBranch: "main", githubUser: "u" },
      },
      1,
      config,
      "ws",
    );
    for (const job of [code, docs]) expect(selects(policy.spec.podSelector, job.spec!.template.metadata!.labels!)).toBe(true);
    const controllerPod = find<Deployment>(objs, "Deployment", "orchestrator").spec.template as unknown as {
      metadata: { labels: Record<string, string> };
    };
    expect(selects(policy.spec.podSelector, controllerPod.metadata.labels)).toBe(false);
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec.ingress).toBeUndefined();
    expect(policy.spec.egress?.[0]).toEqual({
      to: [
        {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
          podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
        },
      ],
      ports: [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 53 },
      ],
    });
  });

  it.each<[string, string, number, boolean]>([
    ["github.com over HTTPS", "140.82.112.3", 443, true],
    ["github.com over SSH", "140.82.112.3", 22, true],
    ["GitHub over IPv6", "2606:50c0:8000::153", 443, true],
    ["the model API", "160.79.104.10", 443, true],
    ["a public address on port 80", "140.82.112.3", 80, false],
    ["the cloud metadata address", "169.254.169.254", 80, false],
    ["the cloud metadata address on 443", "169.254.169.254", 443, false],
    ["the IPv6 metadata address (AWS)", "fd00:ec2::254", 443, false],
    ["the API server's Service IP", "10.96.0.1", 443, false],
    ["an API server on a private node address", "192.168.1.10", 6443, false],
    ["a pod in the cluster", "172.17.0.5", 443, false],
    ["a carrier-grade NAT address", "100.64.1.1", 443, false],
  ])("by default an agent pod %s (%s:%i): allowed = %s", async (_what, ip, port, allowed) => {
    expect(allows(await policyOf([]), ip, port)).toBe(allowed);
  });

  it("narrows to configured ranges and ports, adds extra rules, follows config.namespace, and can be turned off", async () => {
    const narrow = await policyOf([
      "--set-json",
      'agentNetworkPolicy.egress=[{"cidr":"140.82.112.0/20"},{"cidr":"160.79.104.0/23"}]',
      "--set-json",
      "agentNetworkPolicy.ports=[443]",
      "--set-json",
      'agentNetworkPolicy.extraEgress=[{"to":[{"ipBlock":{"cidr":"10.20.0.8/32"}}],"ports":[{"protocol":"TCP","port":8080}]}]',
      "--set",
      "config.namespace=agents",
    ]);
    expect(narrow.metadata.namespace).toBe("agents");
    expect(allows(narrow, "140.82.112.3", 443)).toBe(true);
    expect(allows(narrow, "160.79.104.10", 443)).toBe(true);
    expect(allows(narrow, "1.1.1.1", 443)).toBe(false);
    expect(allows(narrow, "140.82.112.3", 22)).toBe(false);
    expect(allows(narrow, "10.20.0.8", 8080)).toBe(true);
    const objs = await render([...QUICK_SET, "--set", "agentNetworkPolicy.enabled=false"]);
    expect(objs.filter((o) => o.kind === "NetworkPolicy")).toEqual([]);
  });
});

describe("chart: wrong input fails at install time with a clear message", () => {
  const wrongTypes: [string, string[], RegExp][] = [
    ["replicaCount=one", ["--set", "replicaCount=one"], /replicaCount/],
    ["storage.workspaceSize=10 (a number)", ["--set", "storage.workspaceSize=10"], /workspaceSize/],
    ["storage.workspaceSize=ten", ["--set", "storage.workspaceSize=ten"], /workspaceSize/],
    ["service.port=x", ["--set", "service.port=x"], /service.port|\/service\/port/],
    ["ingress.enabled=yes", ["--set", "ingress.enabled=yes"], /ingress.enabled|\/ingress\/enabled/],
    ["image.pullPolicy=Sometimes", ["--set", "image.pullPolicy=Sometimes"], /pullPolicy/],
    ["a misspelt top-level key", ["--set", "secret.anthropicApiKey=x"], /secret/],
    ["job.maxRetries=100", ["--set", "job.maxRetries=100"], /maxRetries/],
    ["an unknown template override", ["--set-string", "templates.overrides.code_CLAUD\\.md\\.hbs=x"], /code_CLAUD\.md\.hbs/],
    ["an agent with both identities", ["--set", "agents.rex.githubUser=a", "--set", "agents.rex.githubApp=b"], /agents/],
    ["config.namespace=Bad_NS", ["--set", "config.namespace=Bad_NS"], /namespace/],
    ["agent.channelResources.limits.memory=1GB", ["--set", "agent.channelResources.limits.memory=1GB"], /channelResources/],
    ["agentNetworkPolicy.ports=[https]", ["--set", "agentNetworkPolicy.ports[0]=https"], /agentNetworkPolicy/],
    [
      "agentNetworkPolicy.egress without cidr",
      ["--set-json", 'agentNetworkPolicy.egress=[{"except":["10.0.0.0/8"]}]'],
      /agentNetworkPolicy/,
    ],
  ];
  for (const helmName of ["helm3", "helm"] as const) {
    it.each(wrongTypes)(`${helmName === "helm3" ? "Helm 3" : "Helm 4"}: values.schema.json rejects %s`, async (_label, args, field) => {
      const r = await run(tools[helmName], ["template", "orchestrator", SEED_CHART, ...QUICK_SET, ...args]);
      expect(r.exitCode).not.toBe(0);
      expect(String(r.stderr)).toContain("values don't meet the specifications of the schema");
      expect(String(r.stderr)).toMatch(field);
    });
  }

  it("a missing API key names the exact --set to add (Helm 3 and 4); the rest of the README's commands need no more", async () => {
    for (const helm of [tools.helm3, tools.helm]) {
      const r = await run(helm, ["template", "orchestrator", SEED_CHART]);
      expect(r.exitCode).not.toBe(0);
      expect(String(r.stderr)).toContain("secrets.anthropicApiKey is required");
      expect(String(r.stderr)).toContain("--set secrets.anthropicApiKey=<your-anthropic-api-key>");
      expect(String(r.stderr)).toContain("--set secrets.existingSecret=<name>");
    }
  });

  it("replicaCount > 1 without leader election fails and says why; 0 pauses", async () => {
    const r = await run(tools.helm, [
      "template",
      "orchestrator",
      SEED_CHART,
      ...QUICK_SET,
      "--set",
      "replicaCount=2",
      "--set",
      "controller.leaderElection.enabled=false",
    ]);
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toContain("replicaCount=2 needs leader election");
    expect(String(r.stderr)).toContain("Remove --set controller.leaderElection.enabled=false");
    expect(find<Deployment>(await render([...QUICK_SET, "--set", "replicaCount=0"]), "Deployment", "orchestrator").spec.replicas).toBe(0);
  });
});

describe("chart on a real API server", () => {
  const cluster = useControlPlane("minimal");
  const kc = () => cluster().kubeconfigPath;
  const kubectl = (args: string[], input?: string) =>
    run(tools.kubectl, ["--kubeconfig", kc(), ...args], input === undefined ? {} : { input });
  const helmIn = (helm: string, args: string[]) => run(helm, [...args, "--kubeconfig", kc()]);

  beforeAll(async () => {
    // The README's step 1, "install from local files". (Not ControlPlane.installCRDs: the typed
    // client drops schema keywords such as default and x-kubernetes-validations, and Helm 4's
    // server-side apply of crds/ then conflicts with the different .spec.versions.)
    const crds = path.join(CHART, "crds");
    const applied = await kubectl(["apply", "-f", crds]);
    expect(applied.exitCode, String(applied.stderr)).toBe(0);
    const established = await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
    expect(established.exitCode, String(established.stderr)).toBe(0);
  });

  it("kubectl apply --dry-run=server accepts every rendered value set; the controller's pod meets Pod Security restricted", async () => {
    const ns = await cluster().createNamespace("chart-dry");
    const agents = await cluster().createNamespace("chart-agents");
    // The API server warns about a Deployment whose pods the namespace's level would refuse.
    const psa = ["pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted"];
    expect((await kubectl(["label", "namespace", ns, ...psa])).exitCode).toBe(0);
    const sets: [string, string[]][] = [
      ["defaults", QUICK_SET],
      ["production", ["--values", PROD_VALUES]],
      ["development", DEV_SET],
      ["every section", ["--values", FULL_VALUES, "--set", `config.namespace=${agents}`]],
      ["existing secret, no ingress", ["--set", "secrets.existingSecret=x", "--set", "ingress.enabled=false"]],
    ];
    for (const [label, args] of sets) {
      const r = await run(tools.helm, ["template", "orchestrator", SEED_CHART, "--namespace", ns, ...args]);
      expect(r.exitCode, `${label}: ${String(r.stderr)}`).toBe(0);
      const applied = await kubectl(["apply", "--dry-run=server", "--validate=strict", "-f", "-"], String(r.stdout));
      expect(applied.exitCode, `${label}: ${String(applied.stderr)}`).toBe(0);
      expect(String(applied.stdout)).toMatch(/deployment.apps\/orchestrator (created|configured) \(server dry run\)/);
      expect(String(applied.stderr), label).not.toContain("violate PodSecurity");
      expect(String(applied.stdout), label).toMatch(
        /networkpolicy.networking.k8s.io\/orchestrator-agents (created|configured) \(server dry run\)/,
      );
    }
    const loose = await run(tools.helm, [
      "template",
      "orchestrator",
      SEED_CHART,
      "--namespace",
      ns,
      ...QUICK_SET,
      "--set",
      "securityContext.allowPrivilegeEscalation=true",
    ]);
    const warned = await kubectl(["apply", "--dry-run=server", "-f", "-"], String(loose.stdout));
    expect(String(warned.stderr)).toMatch(/would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  });

  describe("helm install / upgrade / uninstall (Helm 4, the README's development values)", () => {
    const ns = "orchestrator";
    let installOut = "";

    beforeAll(async () => {
      const r = await helmIn(tools.helm, ["install", "orchestrator", SEED_CHART, "--namespace", ns, "--create-namespace", ...DEV_SET]);
      installOut = String(r.stdout);
      expect(r.exitCode, String(r.stderr)).toBe(0);
    });

    it("creates every object of the README's Architecture section", async () => {
      const names = [
        "deployment/orchestrator",
        "service/orchestrator",
        "ingress/orchestrator",
        "configmap/orchestrator-config",
        "secret/orchestrator-secrets",
        "serviceaccount/orchestrator",
        "role/orchestrator",
        "rolebinding/orchestrator",
        "configmap/orchestrator-claude-templates",
      ];
      const r = await kubectl(["get", "-n", ns, ...names, "-o", "json"]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const items = (JSON.parse(String(r.stdout)) as { items: K8sObject[] }).items;
      expect(items.map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`)).toEqual(names);
      for (const o of items) expect(o.metadata.labels?.["app.kubernetes.io/name"], o.metadata.name).toBe("orchestrator");
      // The installed config is what the controller will read.
      const cm = items.find((o) => o.kind === "ConfigMap" && o.metadata.name === "orchestrator-config") as K8sObject & {
        data: Record<string, string>;
      };
      expect(parseConfig(cm.data["config.yaml"] ?? "", { POD_NAMESPACE: ns }).namespace).toBe(ns);
      // The chart installs the CRDs from crds/ when missing and leaves existing ones alone.
      expect((await kubectl(["get", "crd", "coderuns.orchestrator.platform", "docsruns.orchestrator.platform"])).exitCode).toBe(0);
    });

    it("NOTES: next steps, and warnings for the secrets still missing", () => {
      expect(installOut).toContain("kubectl get crd coderuns.orchestrator.platform");
      expect(installOut).toContain("setup-agent-secrets.sh");
      expect(installOut).toContain("port-forward svc/orchestrator 8080:80");
      expect(installOut).toContain("curl http://localhost:8080/health");
      expect(installOut).toContain("WARNING: secrets.apiTokens is empty");
      expect(installOut).toContain("WARNING: secrets.webhookSecret is empty");
      expect(installOut).not.toContain("WARNING: secrets.githubToken");
      expect(installOut).not.toContain("test-key");
    });

    it("grants the ServiceAccount every verb the controller uses and nothing else", async () => {
      const authz = cluster().kubeConfig.makeApiClient(AuthorizationV1Api);
      const user = `system:serviceaccount:${ns}:orchestrator`;
      const groups = ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"];
      const can = async (verb: string, group: string, resource: string, namespace: string | undefined = ns): Promise<boolean> => {
        const [res, sub] = resource.split("/");
        const review = await authz.createSubjectAccessReview({
          body: {
            spec: {
              user,
              groups,
              resourceAttributes: { verb, group, resource: res, ...(sub ? { subresource: sub } : {}), ...(namespace ? { namespace } : {}) },
            },
          },
        });
        return review.status?.allowed === true;
      };
      const checks: Promise<[string, boolean, boolean]>[] = [];
      for (const rule of EXPECTED_RULES) {
        for (const resource of rule.resources) {
          for (const verb of ALL_VERBS) {
            const group = rule.apiGroups[0] ?? "";
            checks.push(
              can(verb, group, resource).then((got) => [`${verb} ${group || "core"}/${resource}`, got, rule.verbs.includes(verb)]),
            );
          }
        }
      }
      const forbidden: [string, string, string, string | undefined][] = [
        ["create", "", "pods", ns],
        ["delete", "", "pods", ns],
        ["create", "", "pods/exec", ns],
        ["create", "", "secrets", ns],
        ["delete", "", "secrets", ns],
        ["create", "", "services", ns],
        ["create", "", "serviceaccounts", ns],
        ["create", "", "serviceaccounts/token", ns],
        ["create", "apps", "deployments", ns],
        ["create", "rbac.authorization.k8s.io", "roles", ns],
        ["create", "rbac.authorization.k8s.io", "rolebindings", ns],
        ["delete", "", "persistentvolumeclaims", ns],
        ["get", "", "coderuns", ns],
        ["get", "orchestrator.platform", "coderuns", "default"],
        ["get", "", "pods", "default"],
        ["get", "", "secrets", "kube-system"],
        ["patch", "", "nodes", undefined],
        ["get", "", "namespaces", undefined],
        ["create", "authentication.k8s.io", "tokenreviews", undefined],
        ["list", "apiextensions.k8s.io", "customresourcedefinitions", undefined],
      ];
      for (const [verb, group, resource, namespace] of forbidden) {
        checks.push(
          can(verb, group, resource, namespace).then((got) => [
            `${verb} ${group || "core"}/${resource} in ${namespace ?? "(cluster)"}`,
            got,
            false,
          ]),
        );
      }
      const results = await Promise.all(checks);
      const wrong = results.filter(([, got, want]) => got !== want).map(([what, got]) => `${what}: ${got ? "allowed" : "forbidden"}`);
      expect(wrong).toEqual([]);
      expect(results.length).toBeGreaterThan(100);

      // The same through kubectl's impersonation, as an operator would check.
      const asSa = ["--as", user, "-n", ns];
      for (const [args, want] of [
        [["create", "jobs.batch"], "yes"],
        [["patch", "coderuns.orchestrator.platform", "--subresource=status"], "yes"],
        [["get", "pods", "--subresource=log"], "yes"],
        [["create", "events"], "yes"],
        [["delete", "secrets"], "no"],
        [["create", "pods"], "no"],
        [["delete", "persistentvolumeclaims"], "no"],
        [["patch", "nodes"], "no"],
      ] as const) {
        const r = await kubectl(["auth", "can-i", ...args, ...asSa]);
        expect(`${args.join(" ")}: ${String(r.stdout).trim()}`).toBe(`${args.join(" ")}: ${want}`);
      }
    });

    it("upgrade --reuse-values --set image.tag changes the image and keeps the other values", async () => {
      const r = await helmIn(tools.helm, [
        "upgrade",
        "orchestrator",
        SEED_CHART,
        "--namespace",
        ns,
        "--set",
        "image.tag=v1.1.0",
        "--reuse-values",
      ]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const dep = JSON.parse(String((await kubectl(["get", "-n", ns, "deployment/orchestrator", "-o", "json"])).stdout)) as Deployment;
      const c = dep.spec.template.spec.containers[0];
      expect(c?.image).toBe("ghcr.io/5dlabs/cto/orchestrator:v1.1.0");
      expect(c?.imagePullPolicy).toBe("IfNotPresent");
      const secret = JSON.parse(String((await kubectl(["get", "-n", ns, "secret/orchestrator-secrets", "-o", "json"])).stdout)) as {
        data: Record<string, string>;
      };
      expect(Buffer.from(secret.data.ANTHROPIC_API_KEY ?? "", "base64").toString()).toBe("test-key");
    });

    it("upgrade with a config change updates the ConfigMap and rolls the pod template (checksum)", async () => {
      const before = JSON.parse(String((await kubectl(["get", "-n", ns, "deployment/orchestrator", "-o", "json"])).stdout)) as Deployment;
      const r = await helmIn(tools.helm, [
        "upgrade",
        "orchestrator",
        SEED_CHART,
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "storage.workspaceSize=20Gi",
      ]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const after = JSON.parse(String((await kubectl(["get", "-n", ns, "deployment/orchestrator", "-o", "json"])).stdout)) as Deployment;
      expect(after.spec.template.metadata.annotations["checksum/config"]).not.toBe(
        before.spec.template.metadata.annotations["checksum/config"],
      );
      const cm = JSON.parse(String((await kubectl(["get", "-n", ns, "configmap/orchestrator-config", "-o", "json"])).stdout)) as {
        data: Record<string, string>;
      };
      expect(parseConfig(cm.data["config.yaml"] ?? "", {}).storage.workspaceSize).toBe("20Gi");
    });

    it("uninstall removes the release's objects and keeps the CRDs", async () => {
      const r = await helmIn(tools.helm, ["uninstall", "orchestrator", "--namespace", ns]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const left = await kubectl([
        "get",
        "-n",
        ns,
        "deployment,service,ingress,configmap,secret,serviceaccount,role,rolebinding",
        "-l",
        "app.kubernetes.io/instance=orchestrator",
        "-o",
        "name",
      ]);
      expect(left.exitCode, String(left.stderr)).toBe(0);
      expect(String(left.stdout).trim()).toBe("");
      expect((await kubectl(["get", "crd", "coderuns.orchestrator.platform"])).exitCode).toBe(0);
    });
  });

  it("Helm 3: the README's Quick Start install (API key only) works; a missing key fails before anything is created", async () => {
    const ns = await cluster().createNamespace("chart-helm3");
    const failed = await helmIn(tools.helm3, ["install", "orchestrator", SEED_CHART, "--namespace", ns]);
    expect(failed.exitCode).not.toBe(0);
    expect(String(failed.stderr)).toContain("--set secrets.anthropicApiKey=<your-anthropic-api-key>");
    expect(
      String(
        (await kubectl(["get", "all,configmap,secret", "-n", ns, "-l", "app.kubernetes.io/instance=orchestrator", "-o", "name"])).stdout,
      ).trim(),
    ).toBe("");

    const ok = await helmIn(tools.helm3, ["install", "orchestrator", SEED_CHART, "--namespace", ns, ...QUICK_SET]);
    expect(ok.exitCode, String(ok.stderr)).toBe(0);
    expect(String(ok.stdout)).toContain("WARNING: secrets.githubToken is empty");
    expect((await kubectl(["get", "-n", ns, "deployment/orchestrator", "secret/orchestrator-secrets"])).exitCode).toBe(0);
    const un = await helmIn(tools.helm3, ["uninstall", "orchestrator", "--namespace", ns]);
    expect(un.exitCode, String(un.stderr)).toBe(0);
  });

  it("installChartRbac: a real ServiceAccount token works for the controller's calls and is refused the rest", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("chart-rbac");
    const rbac = await applyChartRbac(cp, ns);
    expect(rbac.objects.map((o) => `${o.kind}/${o.name}`)).toEqual([
      "ServiceAccount/orchestrator",
      "Role/orchestrator",
      "RoleBinding/orchestrator",
    ]);
    const asSa: KubeConfig = rbac.kubeConfig;
    const custom = asSa.makeApiClient(CustomObjectsApi);
    const core = asSa.makeApiClient(CoreV1Api);
    // A CRD update (Helm 4 re-applies crds/ on install) makes the API server rebuild that
    // resource's storage; meanwhile it answers 429 "storage is (re)initializing", as clients retry.
    const listRuns = async (): Promise<unknown> => {
      for (let i = 0; ; i++) {
        try {
          return await custom.listNamespacedCustomObject({
            group: "orchestrator.platform",
            version: "v1",
            namespace: ns,
            plural: "coderuns",
          });
        } catch (err) {
          if ((err as { code?: number }).code !== 429 || i >= 30) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    await expect(listRuns()).resolves.toMatchObject({ items: [] });
    await expect(
      core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "probe" }, data: { a: "b" } } }),
    ).resolves.toMatchObject({ metadata: { name: "probe" } });
    // Secrets: read (the controller's cache lists them for their key names), never written.
    await expect(core.listNamespacedSecret({ namespace: ns })).resolves.toMatchObject({ items: expect.any(Array) });
    await expect(core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "probe" } } })).rejects.toMatchObject({
      code: 403,
    });
    await expect(core.listNamespacedSecret({ namespace: "default" })).rejects.toMatchObject({ code: 403 });
    await expect(core.deleteNamespacedConfigMap({ name: "probe", namespace: ns })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNamespacedConfigMap({ namespace: "default" })).rejects.toMatchObject({ code: 403 });

    // api.tokenReview adds exactly the cluster-scoped TokenReview permission.
    const ns2 = await cp.createNamespace("chart-rbac-tr");
    const tr = await applyChartRbac(cp, ns2, { set: { "api.tokenReview": "true" } });
    const whoCan = await kubectl(["auth", "can-i", "create", "tokenreviews.authentication.k8s.io", "--as", tr.username]);
    expect(String(whoCan.stdout).trim()).toBe("yes");
    expect(
      String((await kubectl(["auth", "can-i", "create", "tokenreviews.authentication.k8s.io", "--as", rbac.username])).stdout).trim(),
    ).toBe("no");
  });
});
