import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TaskFileKeys, type RunParameters } from "../../src/api/runner-contract.js";
import { BUILTIN_TEMPLATES } from "../../src/templates/builtins.js";
import { buildBuiltinsModule, BUILTINS_FILE } from "../../src/templates/generate-builtins.js";
import { loadTemplates, renderRunFiles, TemplateError, type RenderInput } from "../../src/templates/index.js";

const codeParams: RunParameters = {
  kind: "code",
  runName: "code-7-abc",
  namespace: "orchestrator",
  attempt: 1,
  model: "claude-sonnet-4-20250514",
  repositoryUrl: "https://github.com/acme/shop.git",
  workingDirectory: "services/api",
  baseBranch: "main",
  branch: "feature/task-7-implementation",
  githubUser: "rex-bot",
  continueSession: false,
  overwriteMemory: false,
  maxTurns: 50,
  timeBudgetSeconds: 3000,
  githubApiUrl: "https://api.github.com",
  githubUrl: "https://github.com",
  prLabels: ["task-7"],
  taskId: 7,
  service: "api",
  docsRepositoryUrl: "https://github.com/acme/docs.git",
  docsBranch: "main",
  docsProjectDirectory: "projects/shop",
};

const docsParams: RunParameters = {
  kind: "docs",
  runName: "docs-gen-1",
  namespace: "orchestrator",
  attempt: 1,
  model: "claude-opus-4-20250514",
  repositoryUrl: "https://github.com/acme/shop.git",
  workingDirectory: ".",
  baseBranch: "main",
  branch: "docs/docs-gen-1",
  githubApp: "docs-app",
  continueSession: false,
  overwriteMemory: false,
  maxTurns: 100,
  timeBudgetSeconds: 3000,
  githubApiUrl: "https://api.github.com",
  githubUrl: "https://github.com",
  prLabels: [],
  includeCodebase: true,
};

const input = (over: Partial<RenderInput> = {}): RenderInput => ({
  params: codeParams,
  permissions: { allow: ["Bash(npm run test:*)", "Edit", "Write"], deny: ["Bash(curl:*)"] },
  ...over,
});

const tmpDirs: string[] = [];
function overrideDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "templates-"));
  tmpDirs.push(dir);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}
afterEach(() => {
  for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe("renderRunFiles", () => {
  it("renders every code file and no run.json", () => {
    const files = renderRunFiles(loadTemplates(), input());
    expect(Object.keys(files)).toEqual([
      TaskFileKeys.claudeMd,
      TaskFileKeys.managedSettings,
      TaskFileKeys.mcpConfig,
      TaskFileKeys.codingGuidelines,
      TaskFileKeys.githubGuidelines,
      TaskFileKeys.systemPrompt,
    ]);
    expect(files[TaskFileKeys.claudeMd]).toContain("feature/task-7-implementation");
    expect(files[TaskFileKeys.claudeMd]).toContain("@task/task.md");
  });

  it("renders the docs files", () => {
    const files = renderRunFiles(loadTemplates(), input({ params: docsParams }));
    expect(Object.keys(files)).toEqual([
      TaskFileKeys.claudeMd,
      TaskFileKeys.managedSettings,
      TaskFileKeys.systemPrompt,
      TaskFileKeys.docsPrompt,
    ]);
    expect(files[TaskFileKeys.docsPrompt]).toContain("explore the existing codebase");
  });

  it("keeps quotes, =, & and < unescaped", () => {
    const modification = `Use "quotes" & <tags> with a=b and 'single'`;
    const files = renderRunFiles(loadTemplates(), input({ promptModification: modification, agentSystemPrompt: 'x < y && z = "w"' }));
    expect(files[TaskFileKeys.systemPrompt]).toContain(modification);
    expect(files[TaskFileKeys.systemPrompt]).toContain(`x < y && z = "w"`);
    expect(Object.values(files).join("")).not.toMatch(/&quot;|&#x3D;|&amp;|&lt;|&#x27;/);
  });

  it("renders managed-settings.json as JSON with the run's permissions and model", () => {
    const files = renderRunFiles(loadTemplates(), input());
    const settings = JSON.parse(files[TaskFileKeys.managedSettings]!) as Record<string, unknown>;
    expect(settings).toMatchObject({
      permissions: { allow: ["Bash(npm run test:*)", "Edit", "Write"], deny: ["Bash(curl:*)"], defaultMode: "acceptEdits" },
      model: "claude-sonnet-4-20250514",
      env: { DISABLE_AUTOUPDATER: "1" },
    });
    expect(files[TaskFileKeys.managedSettings]).not.toMatch(/ANTHROPIC_API_KEY|GITHUB_TOKEN|token/i);
    expect(() => JSON.parse(files[TaskFileKeys.mcpConfig]!)).not.toThrow();
    const docs = renderRunFiles(loadTemplates(), input({ params: docsParams }));
    expect(JSON.parse(docs[TaskFileKeys.managedSettings]!)).toMatchObject({ model: "claude-opus-4-20250514" });
  });

  it("is deterministic", () => {
    const a = renderRunFiles(loadTemplates(), input({ promptModification: "again" }));
    const b = renderRunFiles(loadTemplates(), input({ promptModification: "again" }));
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it("throws TemplateError naming the template and the unknown variable", () => {
    const dir = overrideDir({ "code_CLAUDE.md.hbs": "Task {{taskId}}\nBranch {{brnch}}\n" });
    const templates = loadTemplates(dir);
    let error: unknown;
    try {
      renderRunFiles(templates, input());
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TemplateError);
    const te = error as TemplateError;
    expect(te.template).toBe("code_CLAUDE.md.hbs");
    expect(te.variable).toBe("brnch");
    expect(te.message).toContain("code_CLAUDE.md.hbs");
    expect(te.message).toContain('"brnch"');
    expect(te.message).toContain("line 2");
  });

  it("rejects an override that renders invalid JSON", () => {
    const dir = overrideDir({ "code_managed-settings.json.hbs": '{"model": {{model}} }' });
    expect(() => renderRunFiles(loadTemplates(dir), input())).toThrow(/code_managed-settings\.json\.hbs.*invalid JSON/);
  });
});

describe("loadTemplates", () => {
  it("lets override files win and ignores other files", () => {
    const dir = overrideDir({
      "code_github-guidelines.md.hbs": "Custom guidelines for {{branch}} & <friends>",
      "code_container.sh.hbs": "{{unknownStuff}}",
      README: "not a template",
    });
    const files = renderRunFiles(loadTemplates(dir), input());
    expect(files[TaskFileKeys.githubGuidelines]).toBe("Custom guidelines for feature/task-7-implementation & <friends>");
    expect(files[TaskFileKeys.claudeMd]).toContain("Project memory");
  });

  it("fails on a template that does not compile, naming it", () => {
    const dir = overrideDir({ "docs_docs-prompt.md.hbs": "{{#if includeCodebase}}unclosed" });
    expect(() => loadTemplates(dir)).toThrow(TemplateError);
    expect(() => loadTemplates(dir)).toThrow(/docs_docs-prompt\.md\.hbs/);
  });

  it("treats a missing override directory as no overrides", () => {
    expect(() => loadTemplates(path.join(os.tmpdir(), "no-such-templates-dir"))).not.toThrow();
  });

  it("embeds exactly the .hbs files in src/templates/defaults", () => {
    // builtins.ts is generated; regenerate with `npx tsx src/templates/generate-builtins.ts`.
    expect(fs.readFileSync(BUILTINS_FILE, "utf8")).toBe(buildBuiltinsModule());
    expect(Object.keys(BUILTIN_TEMPLATES).sort()).toEqual([
      "code_CLAUDE.md",
      "code_coding-guidelines.md",
      "code_github-guidelines.md",
      "code_managed-settings.json",
      "code_mcp.json",
      "code_system-prompt.md",
      "docs_CLAUDE.md",
      "docs_docs-prompt.md",
      "docs_managed-settings.json",
      "docs_system-prompt.md",
    ]);
  });
});
