import { describe, expect, it } from "vitest";
import { agentHome, buildLayout } from "../../src/runner/layout.js";

describe("agentHome", () => {
  it("gives each agent identity its own HOME on the workspace", () => {
    const ws = buildLayout("/tmp/root").workspace;
    expect(agentHome(ws, "5DLabs-Rex")).toBe("/tmp/root/workspace/.agent-home/5dlabs-rex");
    expect(agentHome(ws, "alice")).not.toBe(agentHome(ws, "5DLabs-Cleo"));
    expect(agentHome(ws, "../../etc")).toBe("/tmp/root/workspace/.agent-home/etc");
    expect(agentHome(ws, undefined)).toBe("/tmp/root/workspace/.agent-home/default");
  });
});
