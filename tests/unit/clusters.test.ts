/**
 * Build clusters, unit level: placement (spec.cluster, the service's default, home, and the
 * cluster of the first attempt), an unknown cluster, an unreachable one, a cluster's limit, and
 * which kubeconfigs a cluster Secret may hold. Against real control planes:
 * tests/integration/build-clusters.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { ConditionTypes, RunReasons, type CodeRun } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import { RunReconciler, type RenderFiles } from "../../src/controller/reconciler.js";
import { kubeconfigProblem, loadClusterKubeConfig } from "../../src/kube/clusters.js";
import { createLogger } from "../../src/observability/logger.js";
import { FakeKube } from "../support/fake-controller-kube.js";

const NS = "team";
const config = parseConfig("job: {maxRetries: 0}\ncontroller: {clusters: {serviceDefaults: {web: gpu}, maxActiveRuns: {gpu: 1}}}", {});
const render: RenderFiles = () => ({ "CLAUDE.md": "# task" });

function codeRun(name: string, extra: Partial<CodeRun["spec"]> = {}): CodeRun {
  return {
    apiVersion: "orchestrator.platform/v1",
    kind: "CodeRun",
    metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 1, creationTimestamp: `2026-01-01T00:00:0${name.length % 10}Z` },
    spec: {
      taskId: 7,
      service: "api",
      repositoryUrl: "https://github.com/acme/r.git",
      docsRepositoryUrl: "https://github.com/acme/d.git",
      model: "m",
      githubUser: "alice",
      ...extra,
    },
  };
}

describe("placement", () => {
  let kube: FakeKube;
  let rec: RunReconciler;
  beforeEach(() => {
    kube = new FakeKube();
    kube.secrets.set(`${NS}/orchestrator-secrets`, ["ANTHROPIC_API_KEY"]);
    kube.secrets.set(`${NS}/github-token-alice`, ["token"]);
    kube.remote.set("gpu", { reachable: true });
    kube.remote.set("east", { reachable: true });
    rec = new RunReconciler({ kube, cache: kube, config, renderFiles: render, logger: createLogger({ level: "silent" }) });
  });

  it.each([
    ["spec.cluster", { cluster: "east" }, "east"],
    ["the service's default", { service: "web" }, "gpu"],
    ["spec.cluster over the service's default", { service: "web", cluster: "east" }, "east"],
    ["home otherwise", {}, "home"],
  ])("%s", async (_, spec, cluster) => {
    const run = kube.addRun(codeRun("r", spec));
    await rec.reconcile("CodeRun", NS, "r");
    expect(run.status?.phase).toBe("Running");
    expect(run.status?.cluster).toBe(cluster);
    const job = [...kube.jobs.values()][0]!;
    const cm = [...kube.configMaps.values()][0]!;
    // Only at home can an owner reference point at the run.
    expect(Boolean(job.metadata?.ownerReferences?.length)).toBe(cluster === "home");
    expect(Boolean(cm.metadata?.ownerReferences?.length)).toBe(cluster === "home");
    expect(Boolean(run.status?.conditions?.some((c) => c.type === ConditionTypes.ClusterReachable))).toBe(cluster !== "home");
  });

  it("writes nothing to a run that finished before status.cluster existed", async () => {
    const run = kube.addRun(codeRun("old"));
    run.status = {
      phase: "Succeeded",
      jobName: "old-job",
      attempts: 1,
      retryCount: 0,
      observedGeneration: 1,
      completionTime: "2026-01-01T00:00:00Z",
    };
    await rec.reconcile("CodeRun", NS, "old");
    expect(kube.calls.filter((c) => c.startsWith("patch"))).toEqual([]);
  });

  it("keeps a run in the cluster of its first attempt when spec.cluster changes", async () => {
    const run = kube.addRun(codeRun("r", { cluster: "east" }));
    await rec.reconcile("CodeRun", NS, "r");
    run.spec.cluster = "gpu";
    await rec.reconcile("CodeRun", NS, "r");
    expect(run.status?.cluster).toBe("east");
  });

  it("fails a run for an unknown cluster, saying how to register it", async () => {
    const run = kube.addRun(codeRun("r", { cluster: "nowhere" }));
    await rec.reconcile("CodeRun", NS, "r");
    expect(run.status?.phase).toBe("Failed");
    expect(run.status?.reason).toBe(RunReasons.ClusterUnknown);
    expect(run.status?.message).toContain("infra/scripts/register-cluster.sh --name nowhere");
    expect(kube.jobs.size).toBe(0);
  });

  it("lets a run wait, creating nothing, while its cluster is unreachable, and starts it when it answers", async () => {
    kube.remote.set("east", { reachable: false, lastError: "connect ECONNREFUSED" });
    const run = kube.addRun(codeRun("r", { cluster: "east" }));
    const res = await rec.reconcile("CodeRun", NS, "r");
    expect(res.requeueAfterMs).toBe(5000);
    expect(run.status?.phase).toBe("Pending");
    expect(run.status?.reason).toBe(RunReasons.ClusterUnreachable);
    const cond = run.status?.conditions?.find((c) => c.type === ConditionTypes.ClusterReachable);
    expect(cond).toMatchObject({ status: "False", reason: RunReasons.ClusterUnreachable });
    expect(cond?.message).toContain("cluster east");
    expect(kube.jobs.size).toBe(0);
    kube.remote.set("east", { reachable: true });
    await rec.reconcile("CodeRun", NS, "r");
    expect(run.status?.phase).toBe("Running");
    expect(run.status?.conditions?.find((c) => c.type === ConditionTypes.ClusterReachable)?.status).toBe("True");
  });

  it("does not call a run's Job deleted while its cluster is unreachable and the cache lacks it", async () => {
    const run = kube.addRun(codeRun("r", { cluster: "east" }));
    await rec.reconcile("CodeRun", NS, "r");
    kube.hideJob([...kube.jobs.keys()][0]!);
    kube.remote.set("east", { reachable: false, lastError: "timeout" });
    const restarted = new RunReconciler({ kube, cache: kube, config, renderFiles: render, logger: createLogger({ level: "silent" }) });
    await restarted.reconcile("CodeRun", NS, "r");
    expect(run.status?.phase).toBe("Running");
    expect(kube.calls.filter((c) => c.startsWith("getJob"))).toEqual([]);
    expect(run.status?.conditions?.find((c) => c.type === ConditionTypes.ClusterReachable)?.status).toBe("False");
  });

  it("holds a cluster to controller.clusters.maxActiveRuns", async () => {
    const a = kube.addRun(codeRun("a", { service: "web" }));
    const b = kube.addRun(codeRun("bb", { service: "web", repositoryUrl: "https://github.com/acme/other.git" }));
    await rec.reconcile("CodeRun", NS, "a");
    await rec.reconcile("CodeRun", NS, "bb");
    expect(a.status?.phase).toBe("Running");
    expect(b.status?.reason).toBe(RunReasons.WaitingForCluster);
    expect(b.status?.message).toContain("controller.clusters.maxActiveRuns.gpu allows 1");
    kube.finishJob(a.status!.jobName!, NS, true);
    await rec.reconcile("CodeRun", NS, "bb");
    expect(b.status?.phase).toBe("Running");
  });
});

describe("cluster Secret kubeconfigs", () => {
  const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": "QQ==", ...cluster } }],
      users: [{ name: "u", user }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    });

  it.each([
    ["an exec plugin", { exec: { command: "sh", apiVersion: "client.authentication.k8s.io/v1" } }, {}, "exec credential plugin"],
    ["an auth-provider", { "auth-provider": { name: "oidc" } }, {}, "auth-provider"],
    ["a token file", { "token-file": "/var/run/secrets/kubernetes.io/serviceaccount/token" }, {}, "token file"],
    ["a client certificate file", { "client-certificate": "/etc/cert", "client-key-data": "QQ==" }, {}, "client certificate file"],
    ["a CA file", { token: "t" }, { "certificate-authority": "/etc/ca" }, "certificate authority file"],
  ])("refuses %s", (_, user, cluster, why) => {
    expect(() => loadClusterKubeConfig(kubeconfig(user, cluster))).toThrow(why);
  });

  it("accepts inline credentials", () => {
    expect(loadClusterKubeConfig(kubeconfig({ token: "t" })).getCurrentCluster()?.server).toBe("https://10.0.0.1:6443");
    expect(kubeconfigProblem(null)).toContain("not a kubeconfig");
    expect(() => loadClusterKubeConfig("{}")).toThrow("names no cluster");
  });
});
