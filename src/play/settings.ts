/**
 * The parts of the config the Play controller uses, with the remediation patterns compiled once
 * (a bad pattern already failed at config load), and the roster resolution per role.
 */
import type { PlayRole, PlaySpec } from "../api/index.js";
import type { Config } from "../config/schema.js";
import { findAgent } from "../controller/render.js";

export interface PlaySettings {
  namespace: string;
  agents: Config["agents"];
  play: Config["play"];
  /** Feedback authors: author_association values and users (case-insensitive) allowed to trigger remediation. */
  allowedAssociations: readonly string[];
  allowUsers: readonly string[];
  /** Bytes of one feedback item put into a remediation prompt. */
  maxPromptBytes: number;
  defaultModel: string;
  remediationPatterns: RegExp[];
}

export function compilePlaySettings(config: Pick<Config, "namespace" | "agents" | "play" | "webhook" | "models">): PlaySettings {
  return {
    namespace: config.namespace,
    agents: config.agents,
    play: config.play,
    allowedAssociations: config.webhook.allowedAssociations,
    allowUsers: config.webhook.allowUsers,
    maxPromptBytes: config.webhook.maxPromptBytes,
    defaultModel: config.models.defaultCodeModel,
    remediationPatterns: config.play.remediationPatterns.map((p) => new RegExp(p, "imu")),
  };
}

/** A roster agent as one role of a Play uses it. */
export interface ResolvedAgent {
  /** The name as written in the Play (or the config default); case-insensitive in the roster. */
  name: string;
  githubUser?: string;
  githubApp?: string;
  model?: string;
  /** Lowercase GitHub login: the user, or `<app>[bot]` for a GitHub App. */
  login: string;
}

export type ResolvedAgents = Record<PlayRole, ResolvedAgent>;

/**
 * The login GitHub shows for an agent's actions. An App's bot user is its slug plus `[bot]`;
 * the slug is the App's name lowercased with spaces as dashes (5DLabs-Rex → 5dlabs-rex[bot]).
 */
export function agentLogin(agent: { githubUser?: string; githubApp?: string }): string {
  if (agent.githubUser) return agent.githubUser.toLowerCase();
  return `${(agent.githubApp ?? "").toLowerCase().replace(/\s+/g, "-")}[bot]`;
}

const ROLES: PlayRole[] = ["implementation", "quality", "testing"];

/** Resolves each role's roster agent (spec.agents over config play defaults); an unknown name is a terminal error. */
export function resolvePlayAgents(
  spec: PlaySpec,
  settings: PlaySettings,
): { ok: true; agents: ResolvedAgents } | { ok: false; message: string } {
  const defaults: Record<PlayRole, string> = {
    implementation: settings.play.implementationAgent,
    quality: settings.play.qualityAgent,
    testing: settings.play.testingAgent,
  };
  const out: Partial<ResolvedAgents> = {};
  const missing: string[] = [];
  for (const role of ROLES) {
    const name = spec.agents?.[role] ?? defaults[role];
    const agent = findAgent({ agents: settings.agents }, name);
    if (!agent) {
      missing.push(`${role} agent "${name}"`);
      continue;
    }
    out[role] = { name, githubUser: agent.githubUser, githubApp: agent.githubApp, model: agent.model, login: agentLogin(agent) };
  }
  if (missing.length > 0) {
    const known = Object.keys(settings.agents).join(", ") || "none";
    return {
      ok: false,
      message: `${missing.join(", ")} not in the agents roster (known: ${known}). Add it under agents: in the controller config (Helm: values agents) or set spec.agents; then change the Play (any spec change) to resume.`,
    };
  }
  return { ok: true, agents: out as ResolvedAgents };
}
