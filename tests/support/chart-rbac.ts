// Runs code under the Helm chart's RBAC: renders the chart's ServiceAccount and (Cluster)Role
// objects, applies them to a namespace of the test control plane and returns a KubeConfig that
// authenticates as that ServiceAccount with a TokenRequest token. So a suite that passes with
// this KubeConfig proves the chart grants the controller everything it uses.
import path from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { execa } from "execa";
import { parseAllDocuments } from "yaml";
import { ensureKubeTools, repoRoot, type ControlPlane } from "../../src/controlplane/index.js";

/** The chart directory (infra/charts/orchestrator). */
export function chartDir(): string {
  return path.join(repoRoot(), "infra", "charts", "orchestrator");
}

export interface ChartRbacOptions {
  /** Extra `--set` values for the render, e.g. { "api.tokenReview": "true" }. */
  set?: Record<string, string>;
  /** Helm release name (default "orchestrator", so the ServiceAccount is "orchestrator"). */
  release?: string;
  /** Token lifetime (default 1 h; the API server's minimum is 10 min). */
  expirationSeconds?: number;
}

export interface ChartRbac {
  /** KubeConfig authenticating as the chart's ServiceAccount (bearer token). */
  kubeConfig: KubeConfig;
  serviceAccount: string;
  namespace: string;
  /** "system:serviceaccount:<ns>:<sa>", for impersonation (kubectl --as). */
  username: string;
  /** The rendered objects that were applied. */
  objects: { kind: string; name: string; namespace?: string }[];
}

/** Renders the chart's ServiceAccount + RBAC into `namespace` and applies it with the admin kubeconfig. */
export async function applyChartRbac(cp: ControlPlane, namespace: string, opts: ChartRbacOptions = {}): Promise<ChartRbac> {
  const { helm, kubectl } = await ensureKubeTools();
  const release = opts.release ?? "orchestrator";
  // secrets.existingSecret: the render needs no API key (nothing is created from it here).
  const set = { "secrets.existingSecret": "unused", ...opts.set };
  const rendered = await execa(helm, [
    "template",
    release,
    chartDir(),
    "--namespace",
    namespace,
    "--show-only",
    "templates/serviceaccount.yaml",
    "--show-only",
    "templates/rbac.yaml",
    ...Object.entries(set).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ]);
  await execa(kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "-f", "-"], { input: rendered.stdout });

  const objects: ChartRbac["objects"] = [];
  let serviceAccount = "";
  for (const doc of parseAllDocuments(rendered.stdout)) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
    if (!o?.kind) continue;
    objects.push({ kind: o.kind, name: o.metadata?.name ?? "", ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}) });
    if (o.kind === "ServiceAccount") serviceAccount = o.metadata?.name ?? "";
  }
  if (!serviceAccount) throw new Error("the chart rendered no ServiceAccount (serviceAccount.create=false?)");

  // Empty audiences = the API server's own audience, so the token authenticates to it.
  const token = await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: opts.expirationSeconds ?? 3600 } },
  });
  const bearer = token.status?.token;
  if (!bearer) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${serviceAccount} returned no token`);

  const cluster = cp.kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("the control plane's KubeConfig has no current cluster");
  const kubeConfig = new KubeConfig();
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  kubeConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token: bearer }],
    contexts: [{ name: "chart-rbac", cluster: cluster.name, user, namespace }],
    currentContext: "chart-rbac",
  });
  return { kubeConfig, serviceAccount, namespace, username: user, objects };
}

/**
 * Applies the chart's rendered RBAC + ServiceAccount into `namespace` and returns a KubeConfig
 * that authenticates as that ServiceAccount (TokenRequest → bearer token).
 */
export async function installChartRbac(cp: ControlPlane, namespace: string, opts: ChartRbacOptions = {}): Promise<KubeConfig> {
  return (await applyChartRbac(cp, namespace, opts)).kubeConfig;
}
