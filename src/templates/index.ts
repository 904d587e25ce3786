/**
 * Rendering of the agent's files (CLAUDE.md, managed settings, prompts, ...) into the run's
 * ConfigMap data. Templates are Handlebars with HTML escaping off (these are Markdown, JSON and
 * shell text, not HTML) and strict mode on, so a misspelt variable fails the render instead of
 * silently producing an empty string.
 */
import fs from "node:fs";
import path from "node:path";
import Handlebars from "handlebars";
import { TaskFileKeys, type RunParameters } from "../api/runner-contract.js";
import { BUILTIN_TEMPLATES } from "./builtins.js";

/** Template names, `{kind}_{file}`; an override file is named `{name}.hbs`. */
export type TemplateName = keyof typeof BUILTIN_TEMPLATES;
export type RunKind = RunParameters["kind"];

/** One compiled template and where it came from (for error messages). */
export interface CompiledTemplate {
  readonly name: TemplateName;
  /** "built-in", or the override file's path. */
  readonly origin: string;
  readonly render: (context: TemplateContext) => string;
}

export type Templates = Readonly<Record<TemplateName, CompiledTemplate>>;

export interface RenderInput {
  params: RunParameters;
  promptModification?: string;
  permissions: { allow: string[]; deny: string[] };
  /** The roster agent's system prompt (multi-agent Plays), appended to system-prompt.md. */
  agentSystemPrompt?: string;
}

/** A template that failed to compile or render; `template` is its file name (`code_CLAUDE.md.hbs`). */
export class TemplateError extends Error {
  override readonly name = "TemplateError";
  constructor(
    readonly template: string,
    message: string,
    /** The missing variable, when that is the cause. */
    readonly variable?: string,
  ) {
    super(message);
  }
}

/** Which ConfigMap keys each kind of run gets (run.json is added by the controller). */
export const RUN_FILES: Readonly<Record<RunKind, readonly string[]>> = {
  code: [
    TaskFileKeys.claudeMd,
    TaskFileKeys.managedSettings,
    TaskFileKeys.mcpConfig,
    TaskFileKeys.codingGuidelines,
    TaskFileKeys.githubGuidelines,
    TaskFileKeys.systemPrompt,
  ],
  docs: [TaskFileKeys.claudeMd, TaskFileKeys.managedSettings, TaskFileKeys.systemPrompt, TaskFileKeys.docsPrompt],
};

/** Rendered files that must be valid JSON. */
const JSON_FILES = new Set<string>([TaskFileKeys.managedSettings, TaskFileKeys.mcpConfig]);

const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;

/** An isolated Handlebars environment, so helpers registered here leak nowhere else. */
function createEnvironment(): typeof Handlebars {
  const hb = Handlebars.create();
  // {{json value}}: a JSON literal, for settings files.
  hb.registerHelper("json", (value: unknown) => JSON.stringify(value ?? null));
  return hb;
}

function fileName(name: string): string {
  return `${name}.hbs`;
}

function compile(hb: typeof Handlebars, name: TemplateName, source: string, origin: string): CompiledTemplate {
  try {
    // precompile parses eagerly; compile() alone would defer syntax errors to the first render.
    hb.precompile(source, COMPILE_OPTIONS);
  } catch (err) {
    throw new TemplateError(fileName(name), `Template ${fileName(name)} (${origin}) does not compile: ${(err as Error).message}`);
  }
  const template = hb.compile<TemplateContext>(source, COMPILE_OPTIONS);
  return { name, origin, render: (context) => template(context) };
}

function isTemplateName(name: string): name is TemplateName {
  return Object.hasOwn(BUILTIN_TEMPLATES, name);
}

/**
 * The built-in templates, each replaced by `{overrideDir}/{kind}_{file}.hbs` when that file exists
 * (the chart's templates ConfigMap, where `/` in a path became `_`). A missing directory means no
 * overrides; other files in it are ignored.
 */
export function loadTemplates(overrideDir?: string): Templates {
  const hb = createEnvironment();
  const overrides = new Map<string, string>();
  if (overrideDir) {
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(overrideDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    for (const entry of entries) {
      // ConfigMap mounts hold `..data` symlinks and timestamped dirs next to the keys.
      if (!entry.endsWith(".hbs")) continue;
      const name = entry.slice(0, -".hbs".length);
      if (isTemplateName(name)) overrides.set(name, path.join(overrideDir, entry));
    }
  }
  const templates = {} as Record<TemplateName, CompiledTemplate>;
  for (const name of Object.keys(BUILTIN_TEMPLATES) as TemplateName[]) {
    const overridePath = overrides.get(name);
    templates[name] = overridePath
      ? compile(hb, name, fs.readFileSync(overridePath, "utf8"), overridePath)
      : compile(hb, name, BUILTIN_TEMPLATES[name], "built-in");
  }
  return Object.freeze(templates);
}

/** The variables every template sees. Absent optional values are null, never undefined, so strict mode accepts `{{#if x}}` and `{{x}}`. */
export interface TemplateContext {
  kind: RunKind;
  runName: string;
  namespace: string;
  attempt: number;
  isRetry: boolean;
  model: string;
  repositoryUrl: string;
  workingDirectory: string;
  baseBranch: string;
  branch: string;
  githubUser: string | null;
  githubApp: string | null;
  continueSession: boolean;
  overwriteMemory: boolean;
  maxTurns: number;
  timeBudgetSeconds: number;
  prLabels: string[];
  taskId: number | null;
  service: string | null;
  docsRepositoryUrl: string | null;
  docsBranch: string | null;
  docsProjectDirectory: string | null;
  localTools: string | null;
  remoteTools: string | null;
  includeCodebase: boolean;
  promptModification: string | null;
  agentSystemPrompt: string | null;
  permissions: { allow: string[]; deny: string[] };
}

/** The template variables for a run (pure). */
export function buildTemplateContext(input: RenderInput): TemplateContext {
  const p = input.params;
  return {
    kind: p.kind,
    runName: p.runName,
    namespace: p.namespace,
    attempt: p.attempt,
    isRetry: p.attempt > 1,
    model: p.model,
    repositoryUrl: p.repositoryUrl,
    workingDirectory: p.workingDirectory,
    baseBranch: p.baseBranch,
    branch: p.branch,
    githubUser: p.githubUser ?? null,
    githubApp: p.githubApp ?? null,
    continueSession: p.continueSession,
    overwriteMemory: p.overwriteMemory,
    maxTurns: p.maxTurns,
    timeBudgetSeconds: p.timeBudgetSeconds,
    prLabels: [...p.prLabels],
    taskId: p.taskId ?? null,
    service: p.service ?? null,
    docsRepositoryUrl: p.docsRepositoryUrl ?? null,
    docsBranch: p.docsBranch ?? null,
    docsProjectDirectory: p.docsProjectDirectory ?? null,
    localTools: p.localTools ?? null,
    remoteTools: p.remoteTools ?? null,
    includeCodebase: p.includeCodebase ?? false,
    promptModification: input.promptModification?.trim() ? input.promptModification : null,
    agentSystemPrompt: input.agentSystemPrompt?.trim() ? input.agentSystemPrompt : null,
    permissions: { allow: [...input.permissions.allow], deny: [...input.permissions.deny] },
  };
}

/** Handlebars' strict-mode message: `"foo" not defined in [object Object] - 3:12`. */
const MISSING_VARIABLE = /^"([^"]+)" not defined in .*? - (\d+):(\d+)/;

function renderOne(template: CompiledTemplate, file: string, context: TemplateContext): string {
  const where = `${fileName(template.name)}${template.origin === "built-in" ? "" : ` (${template.origin})`}`;
  let output: string;
  try {
    output = template.render(context);
  } catch (err) {
    const message = (err as Error).message;
    const missing = MISSING_VARIABLE.exec(message);
    if (missing) {
      throw new TemplateError(
        fileName(template.name),
        `Template ${where} uses the unknown variable "${missing[1]}" (line ${missing[2]}). Known variables: ${Object.keys(context).join(", ")}.`,
        missing[1],
      );
    }
    throw new TemplateError(fileName(template.name), `Template ${where} failed to render: ${message}`);
  }
  if (JSON_FILES.has(file)) {
    try {
      JSON.parse(output);
    } catch (err) {
      throw new TemplateError(fileName(template.name), `Template ${where} rendered invalid JSON for ${file}: ${(err as Error).message}`);
    }
  }
  return output;
}

/**
 * The run's ConfigMap data keyed by TaskFileKeys, everything except run.json. Pure and
 * deterministic; throws TemplateError naming the template on any render error.
 */
export function renderRunFiles(templates: Templates, input: RenderInput): Record<string, string> {
  const context = buildTemplateContext(input);
  const kind = input.params.kind;
  const files: Record<string, string> = {};
  for (const file of RUN_FILES[kind]) {
    const name = `${kind}_${file}`;
    if (!isTemplateName(name)) throw new TemplateError(fileName(name), `No template ${fileName(name)} for ${file}`);
    files[file] = renderOne(templates[name], file, context);
  }
  return files;
}
