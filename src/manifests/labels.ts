/** Labels and owner references shared by all of a run's children. */
import { API_VERSION, APP_LABEL_VALUE, Labels, MANAGED_BY } from "../api/constants.js";
import type { AnyRun, OwnerReference } from "../api/types.js";
import { sanitizeLabelValue } from "./names.js";

/** Labels selecting all children of one run (kind + name + uid), plus the original's labels. */
export function runLabels(run: AnyRun): Record<string, string> {
  const isCode = run.kind === "CodeRun";
  const labels: Record<string, string> = {
    [Labels.app]: APP_LABEL_VALUE,
    [Labels.component]: isCode ? "code-runner" : "docs-generator",
    [Labels.managedBy]: MANAGED_BY,
    [Labels.runKind]: run.kind.toLowerCase(),
    [Labels.runName]: sanitizeLabelValue(run.metadata.name ?? ""),
    [Labels.runUid]: run.metadata.uid ?? "",
    [Labels.taskType]: isCode ? "code" : "docs",
  };
  const identity = run.spec.githubUser ?? run.spec.githubApp;
  if (identity) labels[Labels.githubUser] = sanitizeLabelValue(identity);
  if (run.kind === "CodeRun") {
    labels[Labels.taskId] = String(run.spec.taskId);
    labels[Labels.service] = sanitizeLabelValue(run.spec.service);
    labels[Labels.contextVersion] = String(run.spec.contextVersion ?? 1);
  }
  return labels;
}

export function ownerReference(run: AnyRun): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: run.kind,
    name: run.metadata.name ?? "",
    uid: run.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}
