import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { Annotations, APP_LABEL_VALUE, Labels, MANAGED_BY } from "../api/constants.js";
import type { BuilderConfig } from "./run-params.js";
import { sanitizeLabelValue, workspacePvcName } from "./names.js";

/** The workspace of one repository for one service. No owner: it outlives runs so the clone and sessions persist. */
export function buildWorkspacePvc(
  service: string,
  repositoryKey: string,
  namespace: string,
  config: BuilderConfig,
): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: workspacePvcName(service, repositoryKey),
      namespace,
      annotations: { [Annotations.repository]: repositoryKey.toLowerCase() },
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
