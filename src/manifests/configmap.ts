import type { V1ConfigMap } from "@kubernetes/client-node";
import { Labels } from "../api/constants.js";
import { TaskFileKeys, type RunParameters } from "../api/runner-contract.js";
import type { AnyRun } from "../api/types.js";
import { runLabels, ownerReference } from "./labels.js";
import { configMapName } from "./names.js";

/**
 * One attempt's agent files (rendered templates + run.json, and github.caBundle when set), owned
 * by the run.
 */
export function buildRunConfigMap(
  run: AnyRun,
  attempt: number,
  params: RunParameters,
  files: Record<string, string>,
  githubCaBundle?: string,
): V1ConfigMap {
  const data: Record<string, string> = {};
  for (const k of Object.keys(files).sort()) data[k] = files[k] as string;
  data[TaskFileKeys.runJson] = `${JSON.stringify(params, null, 2)}\n`;
  if (githubCaBundle) data[TaskFileKeys.githubCa] = githubCaBundle;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: configMapName(run, attempt),
      namespace: run.metadata.namespace,
      labels: { ...runLabels(run), [Labels.attempt]: String(attempt) },
      ownerReferences: [ownerReference(run)],
    },
    data,
    immutable: true,
  };
}
