/**
 * Renders one attempt's agent files: the templates plus, for runs created for a roster agent
 * (annotation orchestrator.platform/agent, e.g. by a Play), that agent's system prompt and tool
 * permissions. Agent names resolve case-insensitively.
 */
import { Annotations, type AnyRun } from "../api/index.js";
import type { Config } from "../config/schema.js";
import { findAgent } from "../config/agents.js";

export { findAgent };
import { renderRunFiles, type Templates } from "../templates/index.js";
import type { RenderFiles } from "./reconciler.js";

export function makeRenderFiles(templates: Templates, config: Pick<Config, "agents" | "permissions">): RenderFiles {
  return (run: AnyRun, params) => {
    const agent = findAgent(config, run.metadata.annotations?.[Annotations.agent]);
    return renderRunFiles(templates, {
      params,
      permissions: {
        allow: [...(agent?.tools.allow ?? config.permissions.allow)],
        deny: [...(agent?.tools.deny ?? config.permissions.deny)],
      },
      promptModification: run.kind === "CodeRun" ? run.spec.promptModification : undefined,
      ...(agent?.systemPrompt ? { agentSystemPrompt: agent.systemPrompt } : {}),
    });
  };
}
