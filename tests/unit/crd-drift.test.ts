import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import {
  AGENT_RESULT_KEYS,
  CODE_RUN_SPEC_KEYS,
  CODE_RUN_STATUS_KEYS,
  DOCS_RUN_SPEC_KEYS,
  DOCS_RUN_STATUS_KEYS,
  ENV_FROM_SECRET_KEYS,
  GITHUB_ACTION_KEYS,
  PLAY_AGENTS_KEYS,
  PLAY_CHECK_RUN_RECORD_KEYS,
  PLAY_HISTORY_KEYS,
  PLAY_PULL_REQUEST_KEYS,
  PLAY_SPEC_KEYS,
  PLAY_STATUS_KEYS,
  PLAY_TASK_STATE_KEYS,
  PLAY_WATERMARK_KEYS,
} from "../../src/api/keys.js";
import { PlayStages, type Play } from "../../src/api/index.js";
import {
  buildReservedEnvCel,
  CLUSTER_NAME_PATTERN,
  IDENTITY_PATTERN,
  REPOSITORY_URL_PATTERN,
  SECRET_KEY_PATTERN,
  SECRET_NAME_PATTERN,
} from "../../src/api/validation.js";

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  additionalProperties?: Schema;
  enum?: string[];
};

const crds = parseAllDocuments(readFileSync("infra/charts/orchestrator/crds/platform-crds.yaml", "utf8")).map((d) => d.toJS());
const schemaOf = (kind: string): Schema => crds.find((c) => c.spec.names.kind === kind).spec.versions[0].schema.openAPIV3Schema;
const keys = (o: object) => Object.keys(o).sort();

/** Every field of `obj` exists in the schema, recursively, with a compatible type. */
function checkAgainst(schema: Schema, obj: unknown, path: string): string[] {
  const errs: string[] = [];
  if (obj === null || obj === undefined) return errs;
  const t = Array.isArray(obj) ? "array" : typeof obj === "number" ? (Number.isInteger(obj) ? "integer" : "number") : typeof obj;
  if (schema.type && !(schema.type === t || (schema.type === "number" && t === "integer")))
    errs.push(`${path}: ${t} is not ${schema.type}`);
  if (t === "object" && schema.properties) {
    for (const [k, v] of Object.entries(obj as object)) {
      if (!schema.properties[k]) errs.push(`${path}.${k}: not in schema`);
      else errs.push(...checkAgainst(schema.properties[k] as Schema, v, `${path}.${k}`));
    }
    for (const r of schema.required ?? []) if (!(r in (obj as object))) errs.push(`${path}.${r}: required`);
  }
  if (t === "array" && schema.items)
    (obj as unknown[]).forEach((v, i) => errs.push(...checkAgainst(schema.items as Schema, v, `${path}[${i}]`)));
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
    expect(keys(s.properties?.status?.properties?.result?.properties?.githubActions?.items?.properties ?? {})).toEqual(
      keys(GITHUB_ACTION_KEYS),
    );
  });

  it("envFromSecrets items match EnvFromSecret", () => {
    expect(keys(schemaOf("CodeRun").properties?.spec?.properties?.envFromSecrets?.items?.properties ?? {})).toEqual(
      keys(ENV_FROM_SECRET_KEYS),
    );
  });

  it.each([
    ["examples/coderun.yaml", "CodeRun"],
    ["examples/docsrun.yaml", "DocsRun"],
    ["examples/play.yaml", "Play"],
  ])("%s fits the schema", (file, kind) => {
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

describe("Play CRD schema and TypeScript types agree", () => {
  const play = () => schemaOf("Play");
  const spec = () => play().properties?.spec?.properties ?? {};
  const status = () => play().properties?.status?.properties ?? {};

  it("spec and status fields match the types", () => {
    expect(keys(spec())).toEqual(keys(PLAY_SPEC_KEYS));
    expect(keys(status())).toEqual(keys(PLAY_STATUS_KEYS));
  });

  it("nested objects match their types", () => {
    for (const k of ["agents", "models", "stageEnv"]) expect(keys(spec()[k]?.properties ?? {}), k).toEqual(keys(PLAY_AGENTS_KEYS));
    expect(keys(status().pullRequest?.properties ?? {})).toEqual(keys(PLAY_PULL_REQUEST_KEYS));
    expect(keys(status().history?.items?.properties ?? {})).toEqual(keys(PLAY_HISTORY_KEYS));
    expect(keys(status().task?.properties ?? {})).toEqual(keys(PLAY_TASK_STATE_KEYS));
    expect(keys(status().task?.properties?.seen?.properties ?? {})).toEqual(keys(PLAY_WATERMARK_KEYS));
    expect(keys(status().reported?.properties?.checkRuns?.items?.properties ?? {})).toEqual(keys(PLAY_CHECK_RUN_RECORD_KEYS));
    expect([...(status().stage?.enum ?? [])].sort()).toEqual(Object.values(PlayStages).sort());
  });

  it("has the short name play and the printer columns of the issue", () => {
    const crd = crds.find((c) => c.spec.names.kind === "Play");
    expect(crd.spec.names.shortNames).toEqual(["play"]);
    expect(crd.spec.versions[0].subresources).toEqual({ status: {} });
    expect(crd.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
      "Task",
      "Stage",
      "Agent",
      "PR",
      "Iteration",
      "Phase",
      "Age",
    ]);
  });

  it("a Play with every spec field fits the schema", () => {
    const obj: Play = {
      apiVersion: "orchestrator.platform/v1",
      kind: "Play",
      metadata: { name: "p" },
      spec: {
        service: "api",
        repositoryUrl: "https://github.com/acme/api",
        docsRepositoryUrl: "https://github.com/acme/docs",
        docsProjectDirectory: "_projects/api",
        docsBranch: "main",
        workingDirectory: "api",
        tasks: [1, 2],
        agents: { implementation: "rex", quality: "cleo", testing: "tess" },
        models: { implementation: "claude-sonnet-4-20250514" },
        maxRemediationIterations: 3,
        env: { A: "1" },
        stageEnv: { testing: { B: "2" } },
        cancel: false,
        cluster: "gpu-east",
      },
    };
    expect(keys(obj.spec)).toEqual(keys(PLAY_SPEC_KEYS));
    expect(checkAgainst(play(), { spec: obj.spec }, "Play")).toEqual([]);
  });
});

describe("CRD patterns are the intake's and reconciler's rules", () => {
  type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const spec = (kind: string) => (schemaOf(kind).properties?.spec as Loose).properties as Loose;

  it("repository URLs, identities and Secret names", () => {
    for (const kind of ["CodeRun", "DocsRun", "Play"]) expect(spec(kind).repositoryUrl.pattern, kind).toBe(REPOSITORY_URL_PATTERN);
    for (const kind of ["CodeRun", "Play"]) expect(spec(kind).docsRepositoryUrl.pattern, kind).toBe(REPOSITORY_URL_PATTERN);
    for (const kind of ["CodeRun", "DocsRun"]) {
      expect(spec(kind).githubUser.pattern).toBe(IDENTITY_PATTERN);
      expect(spec(kind).githubApp.pattern).toBe(IDENTITY_PATTERN);
    }
    for (const kind of ["CodeRun", "DocsRun", "Play"]) expect(spec(kind).cluster.pattern, kind).toBe(CLUSTER_NAME_PATTERN);
    const item = spec("CodeRun").envFromSecrets.items;
    expect(item.properties.secretName.pattern).toBe(SECRET_NAME_PATTERN);
    expect(item.properties.secretKey.pattern).toBe(SECRET_KEY_PATTERN);
    expect(item["x-kubernetes-validations"][0].rule).toBe(buildReservedEnvCel("self.name"));
    for (const kind of ["CodeRun", "Play"])
      expect(spec(kind).env["x-kubernetes-validations"][0].rule, kind).toBe(`self.all(k, ${buildReservedEnvCel("k")})`);
    for (const role of ["implementation", "quality", "testing"])
      expect(spec("Play").stageEnv.properties[role]["x-kubernetes-validations"][0].rule, role).toBe(
        `self.all(k, ${buildReservedEnvCel("k")})`,
      );
  });

  it("the repository pattern refuses other schemes, credentials and local paths", () => {
    const re = new RegExp(REPOSITORY_URL_PATTERN);
    for (const ok of [
      "https://github.com/acme/api",
      "https://github.com/acme/api.git",
      "git@github.com:acme/api.git",
      "ssh://git@github.com:22/acme/api.git",
      "acme/api",
    ])
      expect(re.test(ok), ok).toBe(true);
    for (const bad of [
      "http://evil:8080/x/y.git",
      "https://t@github.com/acme/api",
      "file:///srv/x.git",
      "/srv/x.git",
      "git://github.com/a/b",
      "https://github.com/a/b/c",
    ])
      expect(re.test(bad), bad).toBe(false);
  });
});
