/** The active-run quota both intakes enforce (authorization.quotas.maxActiveRuns, docs/security.md). */
import { activeRunsOf, requesterLabel } from "../authz/authorize.js";
import type { AnyRun } from "../api/types.js";
import { RunKinds, type RunStore } from "./store.js";

/** The runs of `requester` that have not finished: found by label, confirmed by the requester annotation. */
export async function listActiveRunsOf(runs: RunStore, requester: string): Promise<AnyRun[]> {
  const mine = (await Promise.all(RunKinds.map((k) => runs.list(k, requesterLabel(requester))))).flat();
  return activeRunsOf(mine, requester);
}
