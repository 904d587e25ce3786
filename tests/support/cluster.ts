// Per-test-file control plane: `const cluster = useControlPlane("full")` starts one in
// beforeAll and stops it in afterAll; call `cluster()` inside tests to get it.
import { afterAll, beforeAll, inject } from "vitest";
import { ControlPlane, type ControlPlaneOptions, type Mode } from "../../src/controlplane/index.js";

let current: ControlPlane | undefined;

/**
 * Full mode defaults to the simulated node (kwok) here: controller tests script pod outcomes
 * through kwok stages, and files run in parallel while the real node is one per machine.
 * Tests of the real node pass `{ node: "real" }` (they fail, never skip, where it cannot start).
 */
export function useControlPlane(mode: Mode, opts: Omit<ControlPlaneOptions, "mode" | "binDir"> = {}): () => ControlPlane {
  let cp: ControlPlane | undefined;
  beforeAll(async () => {
    cp = await ControlPlane.start({
      mode,
      binDir: inject("controlPlaneBinDir"),
      log: (line) => console.log(`[control-plane] ${line}`),
      node: "kwok",
      ...opts,
    });
    current = cp;
    // CI logs show how long each component took to start.
    console.log(`[control-plane] ${mode} start-up ms: ${JSON.stringify(cp.startupMs)}`);
  });
  afterAll(async () => {
    await cp?.stop();
    if (current === cp) current = undefined;
  });
  return () => {
    if (!cp) throw new Error("control plane not started (use the accessor inside tests or hooks, after beforeAll)");
    return cp;
  };
}

/** A fresh namespace on the file's control plane (from useControlPlane). */
export async function newNamespace(prefix = "test"): Promise<string> {
  if (!current) throw new Error("newNamespace() needs useControlPlane() in this file");
  return current.createNamespace(prefix);
}
