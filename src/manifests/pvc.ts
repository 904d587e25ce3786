import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { APP_LABEL_VALUE, Labels, MANAGED_BY } from "../api/constants.js";
import type { BuilderConfig } from "./run-params.js";
import { sanitizeLabelValue, workspacePvcName } from "./names.js";

/** The per-service workspace. No owner: it outlives runs so the clone and sessions persist. */
export function buildWorkspacePvc(service: string, namespace: string, config: BuilderConfig): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: workspacePvcName(service),
      namespace,
      labels: {
        [Labels.app]: APP_LABEL_VALUE,
        [Labels.component]: "code-runner",
        [Labels.service]: sanitizeLabelValue(service),
        [Labels.managedBy]: MANAGED_BY,
      },
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: config.storage.workspaceSize } },
      ...(config.storage.storageClassName ? { storageClassName: config.storage.storageClassName } : {}),
    },
  };
}
