/** The controller's Kubernetes adapter: implements ControllerKube with a client-side rate limit. */
import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type V1ConfigMap,
  type V1Job,
  type V1PersistentVolumeClaim,
} from "@kubernetes/client-node";
import { GROUP, Labels, Plurals, VERSION, type Kind } from "../api/constants.js";
import type { ControllerKube } from "../controller/ports.js";
import type { KubeClients } from "./clients.js";
import { limitedCalls, type TokenBucket } from "./rate-limit.js";

const FIELD_MANAGER = "orchestrator-controller";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** `limiter` is the process's one client-side limit, shared with the Play adapter. */
export function createControllerKube(clients: KubeClients, limiter: TokenBucket): ControllerKube {
  const { core, batch, custom } = clients;
  const { call, ignoreExists, orNull } = limitedCalls(limiter);
  return {
    createPvc: (pvc: V1PersistentVolumeClaim) =>
      ignoreExists(() =>
        core.createNamespacedPersistentVolumeClaim({ namespace: pvc.metadata?.namespace ?? "", body: pvc, fieldManager: FIELD_MANAGER }),
      ),
    createConfigMap: (cm: V1ConfigMap) =>
      ignoreExists(() =>
        core.createNamespacedConfigMap({ namespace: cm.metadata?.namespace ?? "", body: cm, fieldManager: FIELD_MANAGER }),
      ),
    createJob: (job: V1Job) =>
      ignoreExists(() => batch.createNamespacedJob({ namespace: job.metadata?.namespace ?? "", body: job, fieldManager: FIELD_MANAGER })),
    getJob: (namespace, name) => orNull(() => batch.readNamespacedJob({ namespace, name })),
    deleteJob: async (namespace, name) => {
      // Background propagation: the Job's pods go with it.
      await orNull(() => batch.deleteNamespacedJob({ namespace, name, propagationPolicy: "Background" }));
    },
    getSecretKeys: async (namespace, name) => {
      const s = await orNull(() => core.readNamespacedSecret({ namespace, name }));
      return s ? Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) }) : null;
    },
    patchRunStatus: async (kind: Kind, namespace, name, status) => {
      await call(() =>
        custom.patchNamespacedCustomObjectStatus(
          { group: GROUP, version: VERSION, namespace, plural: Plurals[kind], name, body: { status }, fieldManager: FIELD_MANAGER },
          mergePatch,
        ),
      );
    },
    createEvent: (event: CoreV1Event) =>
      ignoreExists(() => core.createNamespacedEvent({ namespace: event.metadata.namespace ?? "", body: event })),
    deleteRunChildren: async (namespace, runUid) => {
      const labelSelector = `${Labels.runUid}=${runUid}`;
      await call(() => batch.deleteCollectionNamespacedJob({ namespace, labelSelector, propagationPolicy: "Background" }));
      await call(() => core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector }));
    },
  };
}
