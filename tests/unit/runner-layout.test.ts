import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { identityHomeName, legacyHomeName } from "../../src/api/runner-contract.js";
import { adoptLegacyHome, writeOwnFile } from "../../src/runner/home.js";
import { buildLayout, legacyHome } from "../../src/runner/layout.js";

const log = pino({ level: "silent" });

describe("identity homes", () => {
  it("gives each agent identity its own directory name, a user and an App of one name apart", () => {
    expect(identityHomeName({ githubApp: "5DLabs-Rex" })).toBe("app-5dlabs-rex");
    expect(identityHomeName({ githubUser: "alice" })).toBe("user-alice");
    expect(identityHomeName({ githubUser: "alice" })).not.toBe(identityHomeName({ githubApp: "alice" }));
    expect(identityHomeName({ githubUser: "../../etc" })).toBe("user-etc");
    expect(identityHomeName({})).toBe("default");
  });
  it("mounts the home at its own path and knows where an earlier version kept it", () => {
    const layout = buildLayout("/tmp/root");
    expect(layout.home).toBe("/tmp/root/agent-home");
    expect(legacyHome(layout, { githubApp: "5DLabs-Rex", githubUser: "x" })).toBe("/tmp/root/workspace/.agent-home/5dlabs-rex");
    expect(legacyHomeName({ githubUser: "../../etc" })).toBe("etc");
    expect(legacyHomeName({})).toBe("default");
  });
});

describe("adoptLegacyHome", () => {
  let dir: string;
  let legacy: string;
  let home: string;
  const put = (file: string, content: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "home-"));
    legacy = path.join(dir, "workspace", ".agent-home", "rex");
    home = path.join(dir, "homes", "user-rex");
    fs.mkdirSync(home, { recursive: true });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("moves the sessions into the home and removes them from the workspace", () => {
    put(path.join(legacy, ".claude", "projects", "p", "s.jsonl"), "session\n");
    put(path.join(legacy, ".orchestrator", "session.json"), "{}");
    fs.chmodSync(path.join(legacy, ".claude", "projects", "p", "s.jsonl"), 0o600);
    fs.symlinkSync("../elsewhere", path.join(legacy, "link"));
    adoptLegacyHome(legacy, home, log);
    expect(fs.readFileSync(path.join(home, ".claude", "projects", "p", "s.jsonl"), "utf8")).toBe("session\n");
    expect(fs.readFileSync(path.join(home, ".orchestrator", "session.json"), "utf8")).toBe("{}");
    // Opened to the group: the agent (another uid, same group) keeps writing its sessions.
    expect(fs.statSync(path.join(home, ".claude", "projects", "p", "s.jsonl")).mode & 0o060).toBe(0o060);
    expect(fs.readlinkSync(path.join(home, "link"))).toBe("../elsewhere");
    expect(fs.existsSync(legacy)).toBe(false);
    expect(fs.readdirSync(home).sort()).toEqual([".claude", ".orchestrator", "link"]);
  });

  it("keeps what the home already has, and finishes a move an earlier run left half done", () => {
    put(path.join(legacy, ".orchestrator", "session.json"), "old");
    put(path.join(legacy, ".claude", "projects", "old", "s.jsonl"), "old session");
    put(path.join(home, ".orchestrator", "session.json"), "new");
    put(path.join(home, ".orchestrator-moving", ".claude", "half"), "half a copy");
    adoptLegacyHome(legacy, home, log);
    expect(fs.readFileSync(path.join(home, ".orchestrator", "session.json"), "utf8")).toBe("new");
    expect(fs.readFileSync(path.join(home, ".claude", "projects", "old", "s.jsonl"), "utf8")).toBe("old session");
    expect(fs.existsSync(path.join(home, ".orchestrator-moving"))).toBe(false);
    expect(fs.existsSync(path.join(home, ".claude", "half"))).toBe(false);
    expect(fs.existsSync(legacy)).toBe(false);
  });

  it("never follows a link the agent planted in its home", () => {
    const target = path.join(dir, "channel-file");
    put(target, "the channel's");
    put(path.join(legacy, "x", "file"), "legacy");
    fs.symlinkSync(path.dirname(target), path.join(home, "x"));
    adoptLegacyHome(legacy, home, log);
    expect(fs.readdirSync(dir).includes("file")).toBe(false);
    expect(fs.readFileSync(target, "utf8")).toBe("the channel's");
    fs.symlinkSync(target, path.join(home, ".gitconfig"));
    writeOwnFile(path.join(home, ".gitconfig"), "[user]\n");
    expect(fs.readFileSync(target, "utf8")).toBe("the channel's");
    expect(fs.readFileSync(path.join(home, ".gitconfig"), "utf8")).toBe("[user]\n");
  });

  it("does nothing without a home on the workspace", () => {
    adoptLegacyHome(legacy, home, log);
    expect(fs.readdirSync(home)).toEqual([]);
  });
});
