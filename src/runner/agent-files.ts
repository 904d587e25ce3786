/**
 * The agent files the controller rendered into /task-files: checked before any work starts (a
 * missing or malformed file means no Claude run and no API credits spent) and installed into the
 * working directory.
 */
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { TaskFileKeys, type RunParameters } from "../api/runner-contract.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";
import type { Git } from "./git.js";
import type { Layout } from "./layout.js";

export interface AgentFiles {
  claudeMd: string;
  /** Path of managed-settings.json in /task-files, passed to claude with --settings. */
  settingsPath: string;
  systemPrompt: string;
  mcpConfig: string | null;
  codingGuidelines: string | null;
  githubGuidelines: string | null;
  docsPrompt: string | null;
}

type Key = (typeof TaskFileKeys)[keyof typeof TaskFileKeys];

const REQUIRED: Record<RunParameters["kind"], Key[]> = {
  code: [
    TaskFileKeys.claudeMd,
    TaskFileKeys.managedSettings,
    TaskFileKeys.systemPrompt,
    TaskFileKeys.mcpConfig,
    TaskFileKeys.codingGuidelines,
    TaskFileKeys.githubGuidelines,
  ],
  docs: [TaskFileKeys.claudeMd, TaskFileKeys.managedSettings, TaskFileKeys.systemPrompt, TaskFileKeys.docsPrompt],
};

function checkJsonObject(text: string, what: string, problems: string[]): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      problems.push(`${what} must be a JSON object`);
      return null;
    }
    return value as Record<string, unknown>;
  } catch (err) {
    problems.push(`${what} is not valid JSON (${(err as Error).message})`);
    return null;
  }
}

/** Reads and checks the files of `kind`; RunnerError(AgentFilesInvalid) listing every problem. */
export function readAgentFiles(layout: Layout, kind: RunParameters["kind"]): AgentFiles {
  const problems: string[] = [];
  const texts = new Map<Key, string>();
  for (const key of REQUIRED[kind]) {
    const file = layout.taskFile(key);
    try {
      const text = fs.readFileSync(file, "utf8");
      if (!text.trim()) problems.push(`${file} is empty`);
      texts.set(key, text);
    } catch {
      problems.push(`${file} is missing`);
    }
  }
  const settingsPath = layout.taskFile(TaskFileKeys.managedSettings);
  const settingsText = texts.get(TaskFileKeys.managedSettings);
  if (settingsText?.trim()) {
    const settings = checkJsonObject(settingsText, settingsPath, problems);
    const permissions = settings?.permissions as { allow?: unknown; deny?: unknown } | undefined;
    if (settings && permissions !== undefined) {
      if (typeof permissions !== "object" || permissions === null) problems.push(`${settingsPath}: permissions must be an object`);
      else {
        if (permissions.allow !== undefined && !Array.isArray(permissions.allow))
          problems.push(`${settingsPath}: permissions.allow must be an array`);
        if (permissions.deny !== undefined && !Array.isArray(permissions.deny))
          problems.push(`${settingsPath}: permissions.deny must be an array`);
      }
    }
  }
  const mcp = texts.get(TaskFileKeys.mcpConfig);
  if (mcp?.trim()) checkJsonObject(mcp, layout.taskFile(TaskFileKeys.mcpConfig), problems);
  if (problems.length > 0) {
    throw new RunnerError(
      Reasons.AgentFilesInvalid,
      `Agent files are missing or malformed, so Claude was not started: ${problems.join("; ")}. They come from the run's ConfigMap; check the controller's templates.`,
    );
  }
  return {
    claudeMd: texts.get(TaskFileKeys.claudeMd)!,
    settingsPath,
    systemPrompt: texts.get(TaskFileKeys.systemPrompt)!,
    mcpConfig: texts.get(TaskFileKeys.mcpConfig) ?? null,
    codingGuidelines: texts.get(TaskFileKeys.codingGuidelines) ?? null,
    githubGuidelines: texts.get(TaskFileKeys.githubGuidelines) ?? null,
    docsPrompt: texts.get(TaskFileKeys.docsPrompt) ?? null,
  };
}

/** Files the runner writes into the working directory; they are never committed. */
export const INSTALLED_FILES = ["CLAUDE.md", "coding-guidelines.md", "github-guidelines.md", ".mcp.json"] as const;

/**
 * Writes the agent files into `workDir`. CLAUDE.md is the agent's memory: kept when present unless
 * overwriteMemory. A file the repository tracks is never overwritten.
 */
export async function installAgentFiles(opts: {
  files: AgentFiles;
  workDir: string;
  repoDir: string;
  overwriteMemory: boolean;
  git: Git;
  log: Logger;
}): Promise<void> {
  const { files, workDir, repoDir, git, log } = opts;
  fs.mkdirSync(workDir, { recursive: true });
  const entries: [string, string | null, "memory" | "always"][] = [
    ["CLAUDE.md", files.claudeMd, "memory"],
    ["coding-guidelines.md", files.codingGuidelines, "always"],
    ["github-guidelines.md", files.githubGuidelines, "always"],
    [".mcp.json", files.mcpConfig, "always"],
  ];
  const relativeOf = (name: string) => path.relative(repoDir, path.join(workDir, name));
  // Which of them the repository tracks itself, asked in one query.
  const tracked = await git.tracked(
    repoDir,
    entries.filter(([, content]) => content !== null).map(([name]) => relativeOf(name)),
  );
  for (const [name, content, policy] of entries) {
    if (content === null) continue;
    const target = path.join(workDir, name);
    const relative = relativeOf(name);
    if (tracked.has(relative)) {
      log.info({ file: relative }, "Kept the repository's own agent file");
      continue;
    }
    if (policy === "memory" && fs.existsSync(target) && !opts.overwriteMemory) {
      log.info({ file: relative }, "Kept CLAUDE.md from the previous run");
      continue;
    }
    fs.writeFileSync(target, content);
  }
}
