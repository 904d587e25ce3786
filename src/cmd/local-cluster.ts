// `npm start` without a Kubernetes context: a local cluster, with the real node where this
// machine allows it (root on Linux with containerd & co.), else the simulated one (kwok).
// On the real node, agents run for real: the agent image is built here and imported into the
// node, workspaces live on StorageClass local-path, and the Secrets agents need are created from
// this process's environment. That happens only on this local cluster, never on a real one.
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observability/logger.js";
import { githubTokenSecretName } from "../manifests/names.js";

export interface LocalCluster {
  kubeconfigPath: string;
  /** Config values for this cluster (agent image, storage class), under the user's own file. */
  overlay: Record<string, unknown>;
  realNode: boolean;
  stop(): Promise<void>;
}

/** The agent resources on a 2-core development machine: small requests so several runs fit. */
const LOCAL_AGENT_RESOURCES = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "2", memory: "4Gi" } };

export async function startLocalCluster(logger: Logger): Promise<LocalCluster> {
  const { ControlPlane, repoRoot } = await import("../controlplane/index.js");
  const { ensureImages } = await import("../controlplane/images.js");
  let agentRef = "";
  const cp = await ControlPlane.start({
    mode: "full",
    node: "auto",
    crdPaths: [join(repoRoot(), "infra/charts/orchestrator/crds")],
    log: (l) => logger.info(l),
    nodeImages: async () => {
      const built = await ensureImages(["pause", "busybox", "agent"], (l) => logger.info(l));
      const pick = (name: string) => {
        const img = built.find((b) => b.name === name);
        if (!img) throw new Error(`image ${name} was not built; run 'npm run images:build'`);
        return { ref: img.ref, archive: img.archive, digest: img.digest };
      };
      const agent = pick("agent");
      agentRef = agent.ref;
      return { sandbox: pick("pause"), helper: pick("busybox"), others: [agent] };
    },
  });
  if (cp.nodeKind !== "real") {
    logger.warn(`Local cluster with a SIMULATED node: Jobs complete but no agent runs (${cp.nodeFallbackReason ?? "kwok requested"}).`);
    return { kubeconfigPath: cp.kubeconfigPath, overlay: {}, realNode: false, stop: () => cp.stop() };
  }
  const [repository, tag] = splitRef(agentRef);
  logger.info({ node: cp.nodeName, agentImage: agentRef }, "Local cluster with a real node: agents run in real pods");
  return {
    kubeconfigPath: cp.kubeconfigPath,
    realNode: true,
    overlay: {
      agent: { image: { repository, tag, pullPolicy: "Never" }, resources: LOCAL_AGENT_RESOURCES },
      storage: { storageClassName: "local-path" },
    },
    stop: () => cp.stop(),
  };
}

/**
 * Creates the Secrets agents need from the orchestrator's own environment, on the local cluster
 * only: the Anthropic key (ANTHROPIC_API_KEY) and the GitHub token of GITHUB_USER (GITHUB_TOKEN).
 * Existing Secrets are replaced, so a new key in the environment takes effect on restart.
 */
export async function ensureLocalSecrets(kc: KubeConfig, config: Config, githubUser: string, logger: Logger): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = config.namespace;
  const put = async (name: string, data: Record<string, string>) => {
    const body = {
      metadata: { name, labels: { "app.kubernetes.io/part-of": "orchestrator", "app.kubernetes.io/managed-by": "orchestrator-local" } },
      stringData: data,
    };
    try {
      await core.createNamespacedSecret({ namespace, body });
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      await core.replaceNamespacedSecret({ name, namespace, body });
    }
  };
  if (config.anthropicApiKey) await put(config.secrets.apiKeySecretName, { [config.secrets.apiKeySecretKey]: config.anthropicApiKey });
  else logger.warn("ANTHROPIC_API_KEY is not set: agents cannot call the model. Set it (or ANTHROPIC_BASE_URL for a gateway) and restart.");
  if (config.githubToken) {
    await put(githubTokenSecretName(githubUser), { token: config.githubToken });
    logger.info({ githubUser }, `Created Secret ${githubTokenSecretName(githubUser)}: submit tasks with "github_user": "${githubUser}"`);
  } else logger.warn("GITHUB_TOKEN is not set: agents cannot clone or open pull requests. Set GITHUB_TOKEN (and GITHUB_USER) and restart.");
}

function splitRef(ref: string): [string, string] {
  const i = ref.lastIndexOf(":");
  return i > ref.lastIndexOf("/") ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, "latest"];
}
