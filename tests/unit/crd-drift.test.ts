import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { AGENT_RESULT_KEYS, CODE_RUN_SPEC_KEYS, CODE_RUN_STATUS_KEYS, DOCS_RUN_SPEC_KEYS, DOCS_RUN_STATUS_KEYS, ENV_FROM_SECRET_KEYS } from "../../src/api/keys.js";

type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema; required?: string[]; additionalProperties?: Schema };

const crds = parseAllDocuments(readFileSync("infra/charts/orchestrator/crds/platform-crds.yaml", "utf8")).map((d) => d.toJS());
const schemaOf = (kind: string): Schema => crds.find((c) => c.spec.names.kind === kind).spec.versions[0].schema.openAPIV3Schema;
const keys = (o: object) => Object.keys(o).sort();

/** Every field of `obj` exists in the schema, recursively, with a compatible type. */
function checkAgainst(schema: Schema, obj: unknown, path: string): string[] {
  const errs: string[] = [];
  if (obj === null || obj === undefined) return errs;
  const t = Array.isArray(obj) ? "array" : typeof obj === "number" ? (Number.isInteger(obj) ? "integer" : "number") : typeof obj;
  if (schema.type && !(schema.type === t || (schema.type === "number" && t === "integer"))) errs.push(`${path}: ${t} is not ${schema.type}`);
  if (t === "object" && schema.properties) {
    for (const [k, v] of Object.entries(obj as object)) {
      if (!schema.properties[k]) errs.push(`${path}.${k}: not in schema`);
      else errs.push(...checkAgainst(schema.properties[k] as Schema, v, `${path}.${k}`));
    }
    for (const r of schema.required ?? []) if (!(r in (obj as object))) errs.push(`${path}.${r}: required`);
  }
  if (t === "array" && schema.items) (obj as unknown[]).forEach((v, i) => errs.push(...checkAgainst(schema.items as Schema, v, `${path}[${i}]`)));
  return errs;
}

describe("CRD schema, TypeScript types and examples agree", () => {
  it.each([
    ["CodeRun", CODE_RUN_SPEC_KEYS, CODE_RUN_STATUS_KEYS],
    ["DocsRun", DOCS_RUN_SPEC_KEYS, DOCS_RUN_STATUS_KEYS],
  ])("%s spec and status fields match the types", (kind, specKeys, statusKeys) => {
    const s = schemaOf(kind as string);
    expect(keys(s.properties?.spec?.properties ?? {})).toEqual(keys(specKeys));
    expect(keys(s.properties?.status?.properties ?? {})).toEqual(keys(statusKeys));
    expect(keys(s.properties?.status?.properties?.result?.properties ?? {})).toEqual(keys(AGENT_RESULT_KEYS));
  });

  it("envFromSecrets items match EnvFromSecret", () => {
    expect(keys(schemaOf("CodeRun").properties?.spec?.properties?.envFromSecrets?.items?.properties ?? {})).toEqual(keys(ENV_FROM_SECRET_KEYS));
  });

  it.each([["examples/coderun.yaml", "CodeRun"], ["examples/docsrun.yaml", "DocsRun"]])("%s fits the schema", (file, kind) => {
    const obj = parseAllDocuments(readFileSync(file, "utf8"))[0]?.toJS();
    expect(obj.kind).toBe(kind);
    expect(checkAgainst(schemaOf(kind), { spec: obj.spec }, kind)).toEqual([]);
  });

  it("the example CodeRun sets every spec field, so a new field needs an example", () => {
    const obj = parseAllDocuments(readFileSync("examples/coderun.yaml", "utf8"))[0]?.toJS();
    const unset = keys(CODE_RUN_SPEC_KEYS).filter((k) => !(k in obj.spec));
    // githubApp is the alternative identity and cancel a runtime switch; both are in docsrun.yaml / the tests.
    expect(unset).toEqual(["cancel", "githubApp"]);
  });
});
