/**
 * The agent's only GitHub actions: MCP tools (official SDK, streamable HTTP, stateless) served by
 * the credentialed side on loopback. They act on exactly one pull request, this run's (head =
 * the run's branch, base = its base branch, in the run's repository), with the run's identity:
 * comment on it, add or remove one of the configured stage labels, submit a review. Nothing
 * else: no other PR, repository or label, and no raw API. A call outside that scope is refused
 * with a message saying what is allowed; every call, done or refused, is recorded for the run's
 * result.
 */
import type http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "pino";
import { z } from "zod";
import { GITHUB_TOOLS_SERVER, GitHubTools } from "../api/runner-contract.js";
import type { GitHubAction } from "../api/types.js";
import type { GitHubPort, ReviewEvent } from "./github.js";

/** What the tools may touch. */
export interface ToolScope {
  owner: string;
  repo: string;
  /** This run's pull request: head → base. */
  branch: string;
  baseBranch: string;
  /** The stage labels the agent may add or remove (case-insensitive). */
  labels: string[];
}

export interface GitHubToolsOptions {
  github: GitHubPort;
  scope: ToolScope;
  /** Called for every call, done or refused. */
  record: (action: GitHubAction) => void;
  log: Logger;
  version: string;
}

const target = {
  pull_number: z.number().int().min(1).optional().describe("This run's pull request number (optional; no other PR is allowed)."),
  repository: z.string().max(200).optional().describe("owner/repo of this run's repository (optional; no other repository is allowed)."),
};

class OutOfScope extends Error {}

/** This run's open PR, after checking the caller's optional repository and number against it. */
async function resolvePull(o: GitHubToolsOptions, args: { pull_number?: number | undefined; repository?: string | undefined }) {
  const { scope } = o;
  const own = `${scope.owner}/${scope.repo}`;
  if (args.repository !== undefined && args.repository.toLowerCase() !== own.toLowerCase())
    throw new OutOfScope(
      `Refused: repository ${args.repository} is not this run's repository (${own}); these tools act only on this run's pull request.`,
    );
  const pull = await o.github.findOpenPullRequest(scope.branch, scope.baseBranch);
  if (!pull)
    throw new OutOfScope(
      `Refused: there is no open pull request ${scope.branch} → ${scope.baseBranch} in ${own} yet; the orchestrator opens it when the run finishes.`,
    );
  if (args.pull_number !== undefined && args.pull_number !== pull.number)
    throw new OutOfScope(`Refused: pull request #${args.pull_number} is not this run's pull request (#${pull.number} in ${own}).`);
  return pull;
}

function checkLabel(scope: ToolScope, label: string): string {
  const match = scope.labels.find((l) => l.toLowerCase() === label.toLowerCase());
  if (!match)
    throw new OutOfScope(
      `Refused: label "${label}" is not a stage label; the labels this run may set are: ${scope.labels.join(", ") || "(none)"}.`,
    );
  return match;
}

/** Runs one tool call: records it and turns refusals and GitHub errors into tool errors. */
async function act(
  o: GitHubToolsOptions,
  tool: string,
  fn: () => Promise<{ pullRequest: number; detail: string; url?: string }>,
): Promise<CallToolResult> {
  const at = new Date().toISOString();
  try {
    const done = await fn();
    o.record({ tool, at, pullRequest: done.pullRequest, detail: done.detail, ...(done.url ? { url: done.url } : {}) });
    o.log.info({ tool, pullRequest: done.pullRequest, detail: done.detail }, "Did a GitHub action for the agent");
    return { content: [{ type: "text", text: `${done.detail}${done.url ? ` (${done.url})` : ""}` }] };
  } catch (err) {
    const refused = err instanceof OutOfScope;
    const message = refused ? err.message : `GitHub refused or failed: ${(err as Error).message}`;
    o.record({ tool, at, detail: message, refused: true });
    o.log.warn({ tool, err: message }, refused ? "Refused an out-of-scope GitHub action" : "A GitHub action failed");
    return { isError: true, content: [{ type: "text", text: message }] };
  }
}

function registerTools(server: McpServer, o: GitHubToolsOptions): void {
  server.registerTool(
    GitHubTools.comment,
    { description: "Comment on this run's pull request.", inputSchema: { ...target, body: z.string().min(1).max(65_536) } },
    async (args) =>
      act(o, GitHubTools.comment, async () => {
        const pull = await resolvePull(o, args);
        const url = await o.github.createComment(pull.number, args.body);
        return { pullRequest: pull.number, detail: `Commented on pull request #${pull.number}.`, url };
      }),
  );
  for (const [tool, verb] of [
    [GitHubTools.addLabel, "add"],
    [GitHubTools.removeLabel, "remove"],
  ] as const) {
    server.registerTool(
      tool,
      {
        description: `${verb === "add" ? "Add a stage label to" : "Remove a stage label from"} this run's pull request (allowed: ${o.scope.labels.join(", ") || "none"}).`,
        inputSchema: { ...target, label: z.string().min(1).max(100) },
      },
      async (args) =>
        act(o, tool, async () => {
          const label = checkLabel(o.scope, args.label);
          const pull = await resolvePull(o, args);
          if (verb === "add") await o.github.addLabels(pull.number, [label]);
          else await o.github.removeLabel(pull.number, label);
          return {
            pullRequest: pull.number,
            detail: `${verb === "add" ? "Added" : "Removed"} label "${label}" on pull request #${pull.number}.`,
          };
        }),
    );
  }
  server.registerTool(
    GitHubTools.review,
    {
      description: "Submit a review on this run's pull request: APPROVE, REQUEST_CHANGES (say what and why) or COMMENT.",
      inputSchema: { ...target, event: z.enum(["APPROVE", "REQUEST_CHANGES", "COMMENT"]), body: z.string().max(65_536).default("") },
    },
    async (args) =>
      act(o, GitHubTools.review, async () => {
        if (args.event !== "APPROVE" && !args.body.trim())
          throw new OutOfScope(`Refused: a ${args.event} review needs a body saying what and why.`);
        const pull = await resolvePull(o, args);
        const url = await o.github.submitReview(pull.number, { event: args.event as ReviewEvent, body: args.body });
        return { pullRequest: pull.number, detail: `Submitted a ${args.event} review on pull request #${pull.number}.`, url };
      }),
  );
}

/** Answers one POST /mcp: a fresh stateless server and transport per request. */
export async function handleGitHubTools(
  o: GitHubToolsOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: unknown,
): Promise<void> {
  const server = new McpServer({ name: GITHUB_TOOLS_SERVER, version: o.version });
  registerTools(server, o);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}
