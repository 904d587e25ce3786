/**
 * Execution clusters: a registered cluster's kubeconfig (from its cluster Secret) becomes the
 * controller's workload client and informer source for that cluster, with a client-side rate
 * limit of its own (client-go: one per rest.Config).
 */
import { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import type { ClusterConnector } from "../controller/ports.js";
import type { Logger } from "../observability/logger.js";
import { makeClients } from "./clients.js";
import { createControllerKube } from "./controller-kube.js";
import { createInformerSource } from "./informer.js";
import { TokenBucket } from "./rate-limit.js";

/** Kubeconfig fields that read the controller's files or run a program in its container, and what to use instead. */
const REFUSED_FIELDS: Record<string, string> = {
  exec: "an exec credential plugin; use a ServiceAccount token (token) or client-certificate-data instead",
  "auth-provider": "an auth-provider; use a ServiceAccount token (token) or client-certificate-data instead",
  "token-file": "a token file; inline the token (token)",
  "client-certificate": "a client certificate file; inline it as client-certificate-data",
  "client-key": "a client key file; inline it as client-key-data",
  "certificate-authority": "a certificate authority file; inline it as certificate-authority-data",
};

/**
 * Why a cluster Secret's kubeconfig is refused, checked before client-node reads it (its loader
 * reads a token-file at once): whoever may write a Secret in the controller's namespace must not
 * gain file reads or code execution in the controller through it. Credentials must be inline.
 */
export function kubeconfigProblem(raw: unknown): string | undefined {
  const doc = raw as { users?: { user?: Record<string, unknown> }[]; clusters?: { cluster?: Record<string, unknown> }[] } | null;
  if (!doc || typeof doc !== "object") return "it is not a kubeconfig (a YAML mapping with clusters, users and contexts)";
  const entries = [...(doc.users ?? []).map((u) => u.user), ...(doc.clusters ?? []).map((c) => c.cluster)];
  for (const entry of entries) {
    for (const [field, why] of Object.entries(REFUSED_FIELDS)) if (entry && field in entry) return `it uses ${why}`;
  }
  return undefined;
}

/** Loads a cluster Secret's kubeconfig, or throws an Error saying what to fix. */
export function loadClusterKubeConfig(kubeconfig: string): KubeConfig {
  let raw: unknown;
  try {
    raw = parse(kubeconfig);
  } catch (e) {
    throw new Error(`the kubeconfig is not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  const problem = kubeconfigProblem(raw);
  if (problem) throw new Error(problem);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig);
  if (!kc.getCurrentCluster()?.server) throw new Error("its current-context names no cluster with a server");
  if (!kc.getCurrentUser()) throw new Error("its current-context names no user");
  return kc;
}

const PING_TIMEOUT_MS = 5000;

export function createClusterConnector(opts: { qps: number; burst: number; logger: Logger }): ClusterConnector {
  return {
    connect(name, kubeconfig) {
      const kc = loadClusterKubeConfig(kubeconfig);
      const clients = makeClients(kc);
      return {
        kube: createControllerKube(clients, new TokenBucket(opts.qps, opts.burst)),
        source: createInformerSource(clients, opts.logger.child({ cluster: name })),
        ping: async () => {
          const timeout = AbortSignal.timeout(PING_TIMEOUT_MS);
          await Promise.race([
            clients.core.getAPIResources(),
            new Promise((_, reject) => timeout.addEventListener("abort", () => reject(new Error(`no answer in ${PING_TIMEOUT_MS} ms`)))),
          ]);
        },
      };
    },
  };
}
