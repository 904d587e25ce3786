/**
 * Config once: the controller's zod schema (src/config/schema.ts) is the source of truth; the
 * chart writes its config.yaml (templates/configmap.yaml) and validates its values
 * (values.schema.json) by hand. These tests fail on any drift between the three: a config key
 * the chart cannot set, a key it writes that the schema does not know, and a chart value whose
 * type or limits differ from the config key it feeds. Reads files only; no helm, no servers.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parse as parseYaml } from "yaml";
import { fileConfigSchema } from "../../src/config/schema.js";

const CHART = path.resolve(import.meta.dirname, "../../infra/charts/orchestrator");

type Json = {
  type?: string | string[];
  properties?: Record<string, Json>;
  additionalProperties?: boolean | Json;
  items?: Json;
  anyOf?: Json[];
  enum?: unknown[];
  [k: string]: unknown;
};

const configSchema = z.toJSONSchema(fileConfigSchema, { io: "input", unrepresentable: "any" }) as Json;
const valuesSchema = JSON.parse(fs.readFileSync(path.join(CHART, "values.schema.json"), "utf8")) as Json;

function at(schema: Json, dotted: string): Json | undefined {
  let s: Json | undefined = schema;
  for (const k of dotted.split(".")) s = s?.properties?.[k];
  return s;
}

/** One key the template writes into config.yaml. */
interface Written {
  path: string;
  /** The chart value it comes from (`.Values.a.b`), when it is one. */
  from?: string;
  /** Written whole (`toJson` of an object or list): the chart value's shape must match the key's. */
  whole: boolean;
  /** Converted by the template (`int64`, `toString`): the value's type may differ. */
  converted: boolean;
  /** Keys a `range ... list "a" "b"` restricts an object to (webhook.defaults). */
  keys?: string[];
  /** Requests/limits written by the `orchestrator.resources` helper (quantities, numbers made strings). */
  resources?: boolean;
}

/** The keys of the config.yaml block of templates/configmap.yaml, by indentation. */
function writtenKeys(): Written[] {
  const lines = fs.readFileSync(path.join(CHART, "templates/configmap.yaml"), "utf8").split("\n");
  const start = lines.findIndex((l) => l.trim() === "config.yaml: |");
  const out: Written[] = [];
  const stack: string[] = [];
  let rangeKeys: string[] | undefined;
  let lastGet: string | undefined;
  const vars: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (line.trim() && !line.startsWith("    ")) break;
    const v = /\{\{-? \$(\w+) := \.Values\.([\w.]+)/.exec(line);
    if (v) vars[v[1]!] = v[2]!;
    const got = /get \$(\w+) \$k/.exec(line);
    if (got && vars[got[1]!]) lastGet = vars[got[1]!];
    const range = /range \$k := list ((?:"\w+" ?)+)/.exec(line);
    if (range) rangeKeys = [...range[1]!.matchAll(/"(\w+)"/g)].map((m) => m[1]!);
    const m = /^( *)(\w+|\{\{ \$k \}\}): ?(.*)$/.exec(line);
    if (!m) continue;
    const depth = (m[1]!.length - 4) / 2;
    stack.length = depth;
    const value = m[3]!;
    const refOf = (s: string) => {
      const direct = /\.Values\.([\w.]+)/.exec(s)?.[1];
      const viaVar = /\$(\w+)\.(\w+)/.exec(s);
      return direct ?? (viaVar && vars[viaVar[1]!] ? `${vars[viaVar[1]!]}.${viaVar[2]}` : undefined);
    };
    const resources = /include "orchestrator\.resources"/.test(value);
    const entry = (key: string, from: string | undefined, keys?: string[]): Written => ({
      path: [...stack, key].join("."),
      from,
      whole: (/toJson/.test(value) || resources) && !/int64|toString/.test(value),
      converted: /int64|toString/.test(value),
      ...(keys ? { keys } : {}),
      ...(resources ? { resources } : {}),
    });
    if (m[2] === "{{ $k }}") {
      const parent = vars[/get \$(\w+) \$k/.exec(value)?.[1] ?? ""];
      for (const k of rangeKeys ?? []) out.push(entry(k, parent ? `${parent}.${k}` : undefined));
      continue;
    }
    const key = m[2]!;
    // `defaults: {{ $defaults | toJson }}`: a dict built from the keys of the preceding range.
    const built = /\{\{ \$\w+ \| toJson \}\}/.test(value) && !refOf(value) ? rangeKeys : undefined;
    out.push(entry(key, refOf(value) ?? (built ? lastGet : undefined), built));
    if (value === "") stack.push(key);
  }
  return out;
}

/** The config keys a chart must be able to set: leaves, records and lists of the zod schema. */
function configKeys(schema: Json, prefix = ""): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([k, s]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return s.properties && s.type === "object" ? [p, ...configKeys(s, p)] : [p];
  });
}

/** What both schemas can say about a value: type and limits, recursively; defaults and texts are not compared. */
function shape(s: Json | undefined): unknown {
  if (!s) return undefined;
  // z.url().or(z.literal("")) and the like: a string either way.
  if (s.anyOf?.every((b) => b.type === "string")) return shape({ ...s, anyOf: undefined, type: "string" });
  if (s.anyOf) return { anyOf: s.anyOf.map(shape) };
  const out: Record<string, unknown> = {};
  for (const k of ["type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems"]) {
    const v = s[k];
    if (v === undefined || v === Number.MAX_SAFE_INTEGER || v === -Number.MAX_SAFE_INTEGER) continue;
    out[k] = v;
  }
  if (s.items) out.items = shape(s.items);
  if (s.properties)
    out.properties = Object.fromEntries(
      Object.entries(s.properties)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  if (typeof s.additionalProperties === "object") out.additionalProperties = shape(s.additionalProperties);
  return out;
}

const written = writtenKeys();

/**
 * Config keys the controller checks with code JSON Schema cannot express (a URL parser); the
 * chart approximates that check with a pattern, the only difference allowed.
 */
const CHART_PATTERN_ONLY = new Set(["agent.anthropicBaseUrl", "github.apiUrl"]);

describe("config drift: zod schema ↔ templates/configmap.yaml ↔ values.schema.json", () => {
  it("reads the template (sanity: the parser sees the sections it must)", () => {
    expect(written.map((w) => w.path)).toEqual(expect.arrayContaining(["controller.qps", "play.workers", "webhook.defaults"]));
  });

  it("the chart's controller settings are the controller's defaults (bench:controller measures those)", () => {
    const values = parseYaml(fs.readFileSync(path.join(CHART, "values.yaml"), "utf8")) as { controller: Record<string, unknown> };
    const defaults = fileConfigSchema.parse({}).controller;
    for (const key of ["workers", "resyncSeconds", "qps", "burst"] as const)
      expect([key, values.controller[key]]).toEqual([key, defaults[key]]);
  });

  it("the chart writes every config key, or a whole object or list that holds it", () => {
    const covered = (key: string) => written.some((w) => w.path === key || (w.whole && key.startsWith(`${w.path}.`)));
    const parents = new Set(written.map((w) => w.path));
    const missing = configKeys(configSchema).filter((k) => !covered(k) && !parents.has(k));
    expect(missing).toEqual([]);
  });

  it("the chart writes no key the config schema does not have", () => {
    expect(written.filter((w) => !at(configSchema, w.path)).map((w) => w.path)).toEqual([]);
  });

  it("objects the template builds key by key (webhook.defaults) carry every key of the config schema", () => {
    for (const w of written.filter((x) => x.keys))
      expect([...w.keys!].sort(), w.path).toEqual(Object.keys(at(configSchema, w.path)?.properties ?? {}).sort());
  });

  it("every chart value a config key comes from is declared in values.schema.json with the same type and limits", () => {
    const drift = written
      .filter((w) => w.from)
      .flatMap((w) => {
        const value = at(valuesSchema, w.from!);
        if (!value) return [`${w.path} ← .Values.${w.from}: not in values.schema.json`];
        if (w.resources) return resourcesDrift(w, value);
        const want = shape(
          w.keys
            ? { ...at(configSchema, w.path), properties: pick(at(configSchema, w.path)?.properties, w.keys) }
            : at(configSchema, w.path),
        ) as Record<string, unknown>;
        const have = shape(value) as Record<string, unknown>;
        // int64 / toString conversions accept other types on the chart side; their limits must still agree.
        if (w.converted) {
          delete want.type;
          delete have.type;
        }
        if (CHART_PATTERN_ONLY.has(w.path) && want.pattern === undefined) delete have.pattern;
        return JSON.stringify(want) === JSON.stringify(have)
          ? []
          : [`${w.path} ← .Values.${w.from}: config ${JSON.stringify(want)} ≠ chart ${JSON.stringify(have)}`];
      });
    expect(drift).toEqual([]);
  });
});

/**
 * Requests/limits: the chart takes a quantity as a string with the config's pattern, or as a YAML
 * number (the helper writes it as a string); sections and strictness must match the config's.
 */
function resourcesDrift(w: Written, value: Json): string[] {
  const config = at(configSchema, w.path);
  const sections = (s: Json | undefined) => Object.keys(s?.properties ?? {}).sort();
  const problems: string[] = [];
  if (JSON.stringify(sections(value)) !== JSON.stringify(sections(config)) || value.additionalProperties !== false)
    problems.push(
      `${w.path} ← .Values.${w.from}: sections ${JSON.stringify(sections(value))} ≠ config ${JSON.stringify(sections(config))}`,
    );
  for (const section of sections(config)) {
    const want = (config?.properties?.[section]?.additionalProperties as Json | undefined)?.pattern;
    const have = (value.properties?.[section]?.additionalProperties as Json | undefined)?.oneOf as Json[] | undefined;
    if (!have?.some((b) => b.type === "string" && b.pattern === want))
      problems.push(`${w.path}.${section} ← .Values.${w.from}: quantity pattern differs from the config's ${String(want)}`);
  }
  return problems;
}

function pick(props: Record<string, Json> | undefined, keys: string[]): Record<string, Json> {
  return Object.fromEntries(Object.entries(props ?? {}).filter(([k]) => keys.includes(k)));
}
