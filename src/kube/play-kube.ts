/**
 * The Play controller's Kubernetes adapter (implements PlayKube with the controller's client-side
 * rate limit). Like every SDK adapter, it lives in src/kube/; src/play depends only on PlayKube.
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, Labels, Plurals, VERSION, type CodeRun, type Play } from "../api/index.js";
import type { KubeClients } from "./clients.js";
import { isAlreadyExists, isNotFound } from "./errors.js";
import { TokenBucket } from "./rate-limit.js";
import { sanitizeLabelValue } from "../manifests/names.js";
import type { PlayKube } from "../play/ports.js";

const FIELD_MANAGER = "orchestrator-play-controller";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function createPlayKube(clients: KubeClients, limits: { qps: number; burst: number }): PlayKube {
  const limiter = new TokenBucket(limits.qps, limits.burst);
  const { custom } = clients;
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    await limiter.acquire();
    return fn();
  };
  const plays = { group: GROUP, version: VERSION, plural: Plurals.Play };
  const coderuns = { group: GROUP, version: VERSION, plural: Plurals.CodeRun };
  return {
    async getPlay(namespace, name) {
      try {
        return (await call(() => custom.getNamespacedCustomObject({ ...plays, namespace, name }))) as Play;
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    async listPlayRuns(namespace, play) {
      const res = (await call(() => custom.listNamespacedCustomObject({ ...coderuns, namespace, labelSelector: `${Labels.play}=${sanitizeLabelValue(play)}` }))) as { items: CodeRun[] };
      return res.items;
    },
    async createRun(run) {
      try {
        await call(() => custom.createNamespacedCustomObject({ ...coderuns, namespace: run.metadata.namespace ?? "", body: run, fieldManager: FIELD_MANAGER }));
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
    },
    async cancelRun(namespace, name) {
      try {
        await call(() => custom.patchNamespacedCustomObject({ ...coderuns, namespace, name, body: { spec: { cancel: true } }, fieldManager: FIELD_MANAGER }, mergePatch));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
    async patchPlayStatus(namespace, name, resourceVersion, patch) {
      // resourceVersion makes the API server refuse (409) a write computed from a stale read.
      const body = { ...(resourceVersion ? { metadata: { resourceVersion } } : {}), status: patch };
      await call(() => custom.patchNamespacedCustomObjectStatus({ ...plays, namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatch));
    },
    async annotatePlay(namespace, name, annotations) {
      await call(() => custom.patchNamespacedCustomObject({ ...plays, namespace, name, body: { metadata: { annotations } }, fieldManager: FIELD_MANAGER }, mergePatch));
    },
  };
}
