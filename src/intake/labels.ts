/** Labels of the runs the intakes (REST API and webhook receiver) create. */
import { APP_LABEL_VALUE, Labels } from "../api/constants.js";
import type { CodeRunSpec } from "../api/types.js";

/** A label value Kubernetes accepts, or undefined (e.g. a user name with characters labels forbid). */
export function labelValue(v: string | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  return /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(s) && s.length <= 63 ? s : undefined;
}

/** Labels every CodeRun gets; the controller and GET /api/v1/runs select on them. */
export function codeRunLabels(
  spec: Pick<CodeRunSpec, "service" | "taskId" | "contextVersion" | "githubUser" | "githubApp">,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries({
      [Labels.app]: APP_LABEL_VALUE,
      [Labels.service]: spec.service,
      [Labels.taskId]: String(spec.taskId),
      [Labels.contextVersion]: String(spec.contextVersion ?? 1),
      [Labels.githubUser]: labelValue(spec.githubUser ?? spec.githubApp),
    }).filter((e): e is [string, string] => e[1] !== undefined),
  );
}
