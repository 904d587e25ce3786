/** The controller's Kubernetes adapter: implements ControllerKube with a client-side rate limit. */
import type { CoreV1Event, V1ConfigMap, V1Job, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { GROUP, Labels, Plurals, VERSION, type Kind } from "../api/constants.js";
import type { ControllerKube } from "../controller/ports.js";
import type { KubeClients } from "./clients.js";
import { limitedCalls, type TokenBucket } from "./rate-limit.js";

const FIELD_MANAGER = "orchestrator-controller";
const WITH_MANAGER = `?fieldManager=${FIELD_MANAGER}`;

/** A namespaced collection's path, e.g. /api/v1/namespaces/team/configmaps. */
const inNamespace = (apiPath: string, namespace: string | undefined, plural: string) =>
  `${apiPath}/namespaces/${encodeURIComponent(namespace ?? "")}/${plural}`;

/** `limiter` is the process's one client-side limit, shared with the Play adapter. */
export function createControllerKube(clients: KubeClients, limiter: TokenBucket): ControllerKube {
  const { core, batch, write } = clients;
  const { call, ignoreExists, orNull } = limitedCalls(limiter);
  // The writes of every run go through clients.write (no answer parsed); reads through the typed clients.
  const create = (apiPath: string, plural: string, obj: { metadata?: { namespace?: string } }, query = WITH_MANAGER) =>
    ignoreExists(() => write("POST", `${inNamespace(apiPath, obj.metadata?.namespace, plural)}${query}`, obj));
  return {
    createPvc: (pvc: V1PersistentVolumeClaim) => create("/api/v1", "persistentvolumeclaims", pvc),
    createConfigMap: (cm: V1ConfigMap) => create("/api/v1", "configmaps", cm),
    createJob: (job: V1Job) => create("/apis/batch/v1", "jobs", job),
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
      const path = `${inNamespace(`/apis/${GROUP}/${VERSION}`, namespace, Plurals[kind])}/${encodeURIComponent(name)}/status${WITH_MANAGER}`;
      await call(() => write("PATCH", path, { status }, "application/merge-patch+json"));
    },
    createEvent: (event: CoreV1Event) => create("/api/v1", "events", event, ""),
    deleteRunChildren: async (namespace, runUid) => {
      const labelSelector = `${Labels.runUid}=${runUid}`;
      await call(() => batch.deleteCollectionNamespacedJob({ namespace, labelSelector, propagationPolicy: "Background" }));
      await call(() => core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector }));
    },
  };
}
