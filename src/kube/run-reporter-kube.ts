/** The run reporter's Kubernetes adapter: it only records what it wrote to GitHub on the run. */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, Plurals, VERSION } from "../api/index.js";
import type { RunReporterKube } from "../controller/run-reporter.js";
import type { KubeClients } from "./clients.js";
import { isNotFound } from "./errors.js";

const FIELD_MANAGER = "orchestrator-run-reporter";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function createRunReporterKube(clients: KubeClients): RunReporterKube {
  return {
    async annotateRun(namespace, name, annotations) {
      try {
        await clients.custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            plural: Plurals.CodeRun,
            namespace,
            name,
            body: { metadata: { annotations } },
            fieldManager: FIELD_MANAGER,
          },
          mergePatch,
        );
      } catch (e) {
        // A deleted run has nothing left to record.
        if (!isNotFound(e)) throw e;
      }
    },
  };
}
