import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { containerEnv, KWOK_ENV, kwokConfigYaml, kwokStages, type KwokStage } from "../../src/controlplane/kwok-stages.js";

function parsed(): KwokStage[] {
  return parseAllDocuments(kwokConfigYaml({ readyDelayMs: 700, runDelayMs: 1200 })).map((d) => d.toJS() as KwokStage);
}

describe("kwok stages", () => {
  it("renders one Stage document per stage, round-tripping through YAML", () => {
    const docs = parsed();
    expect(docs.map((d) => d.metadata.name)).toEqual([
      "node-initialize",
      "node-heartbeat-with-lease",
      "pod-ready",
      "pod-complete",
      "pod-fail",
      "pod-delete",
    ]);
    for (const d of docs) {
      expect(d.apiVersion).toBe("kwok.x-k8s.io/v1alpha1");
      expect(d.kind).toBe("Stage");
    }
    expect(docs).toEqual(kwokStages({ readyDelayMs: 700, runDelayMs: 1200 }));
  });

  it("applies the configured delays and lets pods override the run time via env", () => {
    const byName = Object.fromEntries(parsed().map((s) => [s.metadata.name, s]));
    expect(byName["pod-ready"]?.spec.delay?.durationMilliseconds).toBe(700);
    for (const n of ["pod-complete", "pod-fail"]) {
      expect(byName[n]?.spec.delay?.durationMilliseconds).toBe(1200);
      expect(byName[n]?.spec.delay?.durationFrom?.jq.expression).toBe(containerEnv(KWOK_ENV.runDuration));
    }
  });

  it("makes pod-complete and pod-fail mutually exclusive on KWOK_FAIL", () => {
    const byName = Object.fromEntries(parsed().map((s) => [s.metadata.name, s]));
    const failKey = containerEnv("KWOK_FAIL");
    const complete = byName["pod-complete"]!.spec.selector.matchExpressions;
    const fail = byName["pod-fail"]!.spec.selector.matchExpressions;
    expect(complete).toContainEqual({ key: failKey, operator: "NotIn", values: ["true"] });
    expect(complete).toContainEqual({ key: ".metadata.ownerReferences.[].kind", operator: "In", values: ["Job"] });
    expect(fail).toContainEqual({ key: failKey, operator: "In", values: ["true"] });
    expect(failKey).toBe('first( .spec.containers.[].env.[]? | select( .name == "KWOK_FAIL" ) | .value )');
  });

  it("sets terminal phase, exit code and copies the termination message env var", () => {
    const byName = Object.fromEntries(parsed().map((s) => [s.metadata.name, s]));
    const ok = byName["pod-complete"]!.spec.next.statusTemplate!;
    const bad = byName["pod-fail"]!.spec.next.statusTemplate!;
    expect(ok).toContain("phase: Succeeded");
    expect(bad).toContain("phase: Failed");
    expect(bad).toContain("{{ if $fail }}1{{ else }}0{{ end }}");
    expect(bad).toContain("{{ if $fail }}Error{{ else }}Completed{{ end }}");
    for (const t of [ok, bad]) {
      expect(t).toContain(`eq .name "${KWOK_ENV.terminationMessage}"`);
      expect(t).toContain(`eq .name "${KWOK_ENV.othersTerminationMessage}"`);
    }
    // pod-complete never fails a container, whatever the env says.
    expect(ok).toContain("$fail = false");
  });

  it("only deletes pods that are being deleted", () => {
    const del = parsed().find((s) => s.metadata.name === "pod-delete")!;
    expect(del.spec.next).toEqual({ delete: true });
    expect(del.spec.selector.matchExpressions).toEqual([{ key: ".metadata.deletionTimestamp", operator: "Exists" }]);
  });
});
