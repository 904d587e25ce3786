/**
 * The Play controller's Kubernetes adapter (implements PlayKube with the controller's client-side
 * rate limit). Like every SDK adapter, it lives in src/kube/; src/play depends only on PlayKube.
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, Labels, Plurals, VERSION, type CodeRun, type Play } from "../api/index.js";
import type { KubeClients } from "./clients.js";
import { limitedCalls, type TokenBucket } from "./rate-limit.js";
import { sanitizeLabelValue } from "../manifests/names.js";
import type { PlayKube } from "../play/ports.js";

const FIELD_MANAGER = "orchestrator-play-controller";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** `limiter` is the process's one client-side limit, shared with the run controller's adapter. */
export function createPlayKube(clients: KubeClients, limiter: TokenBucket): PlayKube {
  const { custom } = clients;
  const { call, ignoreExists, orNull } = limitedCalls(limiter);
  const plays = { group: GROUP, version: VERSION, plural: Plurals.Play };
  const coderuns = { group: GROUP, version: VERSION, plural: Plurals.CodeRun };
  return {
    getPlay: async (namespace, name) =>
      (await orNull(() => custom.getNamespacedCustomObject({ ...plays, namespace, name }))) as Play | null,
    async listPlayRuns(namespace, play) {
      const res = (await call(() =>
        custom.listNamespacedCustomObject({ ...coderuns, namespace, labelSelector: `${Labels.play}=${sanitizeLabelValue(play)}` }),
      )) as { items: CodeRun[] };
      return res.items;
    },
    createRun: (run) =>
      ignoreExists(() =>
        custom.createNamespacedCustomObject({
          ...coderuns,
          namespace: run.metadata.namespace ?? "",
          body: run,
          fieldManager: FIELD_MANAGER,
        }),
      ),
    async cancelRun(namespace, name) {
      await orNull(() =>
        custom.patchNamespacedCustomObject(
          { ...coderuns, namespace, name, body: { spec: { cancel: true } }, fieldManager: FIELD_MANAGER },
          mergePatch,
        ),
      );
    },
    async patchPlayStatus(namespace, name, resourceVersion, patch) {
      // resourceVersion makes the API server refuse (409) a write computed from a stale read.
      const body = { ...(resourceVersion ? { metadata: { resourceVersion } } : {}), status: patch };
      await call(() =>
        custom.patchNamespacedCustomObjectStatus({ ...plays, namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatch),
      );
    },
    async annotatePlay(namespace, name, annotations) {
      await call(() =>
        custom.patchNamespacedCustomObject(
          { ...plays, namespace, name, body: { metadata: { annotations } }, fieldManager: FIELD_MANAGER },
          mergePatch,
        ),
      );
    },
  };
}
