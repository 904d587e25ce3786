/**
 * Renders one attempt's agent files: the templates plus, for runs created for a roster agent
 * (annotation orchestrator.platform/agent, e.g. by a Play), that agent's system prompt and tool
 * permissions. Agent names resolve case-insensitively.
 */
import type { AnyRun } from "../api/index.js";
import type { Config } from "../config/schema.js";
import { renderRunFiles, type Templates } from "../templates/index.js";
import type { RenderFiles } from "./reconciler.js";

export const AGENT_ANNOTATION = "orchestrator.platform/agent";

/** The roster entry named by `name`, compared case-insensitively. */
export function findAgent(config: Pick<Config, "agents">, name: string | undefined): Config["agents"][string] | undefined {
  if (!name) return undefined;
  const key = Object.keys(config.agents).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : config.agents[key];
}

export function makeRenderFiles(templates: Templates, config: Pick<Config, "agents" | "permissions">): RenderFiles {
  return (run: AnyRun, params) => {
    const agent = findAgent(config, run.metadata.annotations?.[AGENT_ANNOTATION]);
    return renderRunFiles(templates, {
      params,
      permissions: { allow: [...(agent?.tools.allow ?? config.permissions.allow)], deny: [...(agent?.tools.deny ?? config.permissions.deny)] },
      promptModification: run.kind === "CodeRun" ? run.spec.promptModification : undefined,
      ...(agent?.systemPrompt ? { agentSystemPrompt: agent.systemPrompt } : {}),
    });
  };
}
