/** Where the runner finds its inputs and keeps its state, per the runner contract. */
import path from "node:path";
import { AgentPaths, legacyHomeName, WorkspaceLayout, type TaskFileKeys } from "../api/runner-contract.js";

export interface Layout {
  workspace: string;
  taskFiles: string;
  managedSettings: string;
  sshSecret: string;
  githubAppSecret: string;
  terminationMessage: string;
  channelTerminationMessage: string;
  /** The repository clone's work tree (the agent works here). */
  repo: string;
  /** Its git directory, in the channel's private directory. */
  gitDir: string;
  /** HOME for git and Claude Code: the run identity's own directory of the volume (sessions live here). */
  home: string;
  taskFile(key: (typeof TaskFileKeys)[keyof typeof TaskFileKeys]): string;
}

/** Resolves an absolute contract path under `root` (tests) or as is (in the Job). */
export function resolveContractPath(root: string, absolute: string): string {
  return root ? path.join(root, absolute) : absolute;
}

export function buildLayout(root: string): Layout {
  const at = (p: string) => resolveContractPath(root, p);
  const workspace = at(AgentPaths.workspace);
  const taskFiles = at(AgentPaths.taskFiles);
  return {
    workspace,
    taskFiles,
    managedSettings: at(AgentPaths.managedSettings),
    sshSecret: at(AgentPaths.sshSecret),
    githubAppSecret: at(AgentPaths.githubAppSecret),
    terminationMessage: at(AgentPaths.terminationMessage),
    channelTerminationMessage: at(AgentPaths.channelTerminationMessage),
    repo: path.join(workspace, WorkspaceLayout.repo),
    gitDir: path.join(at(AgentPaths.channel), `${WorkspaceLayout.repo}.git`),
    home: at(AgentPaths.home),
    taskFile: (key) => path.join(taskFiles, key),
  };
}

/** Where an earlier version kept `identity`'s HOME: on the workspace, readable by every agent that mounted it. */
export function legacyHome(layout: Layout, identity: { githubApp?: string; githubUser?: string }): string {
  return path.join(layout.workspace, WorkspaceLayout.legacyHomes, legacyHomeName(identity));
}
