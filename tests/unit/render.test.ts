import { describe, expect, it } from "vitest";
import { Annotations, type CodeRun } from "../../src/api/index.js";
import { parseConfig } from "../../src/config/config.js";
import { findAgent, makeRenderFiles } from "../../src/controller/render.js";
import { computeRunParameters } from "../../src/manifests/index.js";
import { loadTemplates } from "../../src/templates/index.js";

const config = parseConfig(
  "agents:\n  Rex:\n    githubApp: 5DLabs-Rex\n    role: implementation\n    systemPrompt: You are Rex, a careful backend engineer.\n    tools: {allow: [Read, Edit], deny: [WebFetch]}\n",
  {},
);
const run = (agent?: string): CodeRun => ({
  apiVersion: "orchestrator.platform/v1",
  kind: "CodeRun",
  metadata: { name: "r", namespace: "ns", uid: "u", ...(agent ? { annotations: { [Annotations.agent]: agent } } : {}) },
  spec: {
    taskId: 1,
    service: "s",
    repositoryUrl: "r",
    docsRepositoryUrl: "d",
    model: "m",
    githubApp: "5DLabs-Rex",
    promptModification: 'Focus on <tests> & "edge" cases',
  },
});

describe("makeRenderFiles", () => {
  const render = makeRenderFiles(loadTemplates(), config);
  it("resolves roster agents case-insensitively", () => {
    expect(findAgent(config, "rex")?.githubApp).toBe("5DLabs-Rex");
    expect(findAgent(config, "REX")?.githubApp).toBe("5DLabs-Rex");
    expect(findAgent(config, "cleo")).toBeUndefined();
  });
  it("adds the agent's system prompt and tool permissions", () => {
    const r = run("rex");
    const files = render(r, computeRunParameters(r, 1, config));
    expect(files["system-prompt.md"]).toContain("You are Rex, a careful backend engineer.");
    const settings = JSON.parse(files["managed-settings.json"] ?? "{}");
    expect(settings.permissions.allow).toEqual(["Read", "Edit"]);
    expect(settings.permissions.deny).toEqual(["WebFetch"]);
  });
  it("uses the config's permissions without an agent and keeps the prompt modification unescaped", () => {
    const r = run();
    const files = render(r, computeRunParameters(r, 1, config));
    expect(JSON.parse(files["managed-settings.json"] ?? "{}").permissions.allow).toEqual(config.permissions.allow);
    expect(files["system-prompt.md"]).toContain('Focus on <tests> & "edge" cases');
  });
});
