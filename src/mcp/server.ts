/**
 * The orchestrator's MCP server (official TypeScript SDK): tools to submit a code task (`task`)
 * and a docs run (`docs`) with upstream's parameters, start a Play, list and inspect runs and
 * Plays, read a run's recent logs and cancel a run; run and Play status also as resources
 * (`orchestrator://runs/{kind}/{name}`, `orchestrator://plays/{name}`).
 *
 * Every tool goes through the REST API (ApiClient), so validation, authentication and
 * authorization are the API's. The tools' input schemas are built from the REST API's zod schemas
 * (src/http/schemas.ts): the same fields, limits and descriptions; only the repository fields are
 * optional here because, over stdio, they default to the git checkout the editor runs in.
 */
import { readFileSync } from "node:fs";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { Play } from "../api/play.js";
import type { ApiClient } from "../client/api.js";
import type { GitInfo } from "../client/git.js";
import { completeCodeRequest, completeDocsRequest, completePlayRequest } from "../client/requests.js";
import { codeRequestSchema, docsRequestSchema, listQuerySchema, playListQuerySchema, playRequestSchema } from "../http/schemas.js";

const code = codeRequestSchema.shape;
const docs = docsRequestSchema.shape;
const play = playRequestSchema.shape;
const fromGit = (s: z.ZodType, what: string) =>
  s.optional().describe(`${what} Default: the origin remote of the git checkout the MCP server runs in (stdio only).`);

/** `task`: upstream's E1 MCP tool (CodeRequest), repository URLs optional. */
export const taskToolSchema = z.strictObject({
  ...code,
  repository_url: fromGit(code.repository_url, "Repository the agent writes code to."),
  docs_repository_url: fromGit(code.docs_repository_url, "Repository holding the Task Master docs."),
  github_user: code.github_user.describe("GitHub user the agent acts as. Default: git config user.name, then claude-agent-1."),
});

/** `docs`: upstream's E1 MCP tool (DocsRequest), everything but the identity detected from git. */
export const docsToolSchema = z.strictObject({
  ...docs,
  repository_url: fromGit(docs.repository_url, "Repository containing the Task Master project."),
  working_directory: docs.working_directory
    .optional()
    .describe("Directory containing .taskmaster/ ('.' = root). Default: the current directory relative to the repository root."),
  source_branch: docs.source_branch.optional().describe("Branch to document. Default: the current git branch."),
});

export const playToolSchema = z.strictObject({
  ...play,
  repository_url: fromGit(play.repository_url, "GitHub repository the agents change."),
  docs_repository_url: play.docs_repository_url.optional().describe("Repository holding the Task Master docs. Default: repository_url."),
});

const runRef = z.strictObject({
  kind: z.enum(["coderun", "docsrun"]).default("coderun").describe("coderun or docsrun."),
  name: z.string().min(1).max(253).describe("The run's name, as returned by task/docs or list_runs."),
});

export interface McpServerOptions {
  client: ApiClient;
  /** The git checkout the server runs in (stdio); undefined over HTTP, where repositories must be given. */
  git?: () => Promise<GitInfo>;
  version: string;
}

/** The package's version, reported as the MCP server's version. */
export function packageVersion(): string {
  try {
    return String(
      (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown }).version ?? "unknown",
    );
  } catch {
    return "unknown";
  }
}

const NO_GIT: GitInfo = { relativeDir: ".", branch: "main" };

function ok(summary: string, data: unknown): CallToolResult {
  return { content: [{ type: "text", text: `${summary}\n\n${JSON.stringify(data, null, 2)}` }] };
}

/** Runs a tool body; API and input errors become a tool error the model can read and act on. */
async function guarded(fn: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await fn();
  } catch (e) {
    return { isError: true, content: [{ type: "text", text: (e as Error).message }] };
  }
}

/** A run without the noise a model does not need (managedFields are already gone). */
function brief(run: { kind: string; metadata: { name?: string; creationTimestamp?: string }; spec: object; status?: object }) {
  return {
    kind: run.kind,
    name: run.metadata.name,
    created: run.metadata.creationTimestamp,
    spec: run.spec,
    status: run.status ?? { phase: "Pending" },
  };
}

export function createMcpServer(o: McpServerOptions): McpServer {
  const server = new McpServer(
    { name: "orchestrator-mcp", title: "Orchestrator MCP Server", version: o.version },
    { capabilities: { tools: { listChanged: true } } },
  );
  const git = () => (o.git ? o.git() : Promise.resolve(NO_GIT));
  registerSubmitTools(server, o.client, git);
  registerRunReadTools(server, o.client);
  registerPlayReadTools(server, o.client);
  registerResources(server, o.client);
  return server;
}

function registerSubmitTools(server: McpServer, client: ApiClient, git: () => Promise<GitInfo>): void {
  server.registerTool(
    "task",
    {
      title: "Submit a coding task",
      description:
        "Creates a CodeRun: a Claude Code agent implements a Task Master task and opens a pull request. Returns the run's name; follow it with get_run.",
      inputSchema: taskToolSchema,
    },
    (args) =>
      guarded(async () => {
        const { body, notes } = completeCodeRequest(args as never, await git());
        const s = await client.submitCode(body);
        return ok([`CodeRun ${s.name} submitted in namespace ${s.namespace}.`, ...notes].join(" "), s.data);
      }),
  );
  server.registerTool(
    "docs",
    {
      title: "Generate documentation",
      description: "Creates a DocsRun: an agent writes the Task Master task documentation and opens a pull request.",
      inputSchema: docsToolSchema,
    },
    (args) =>
      guarded(async () => {
        const { body, notes } = completeDocsRequest(args as never, await git());
        const s = await client.submitDocs(body);
        return ok([`DocsRun ${s.name} submitted in namespace ${s.namespace}.`, ...notes].join(" "), s.data);
      }),
  );
  server.registerTool(
    "play",
    {
      title: "Start a Play",
      description:
        "Starts a multi-agent Play: each task goes through implementation, quality review and testing by roster agents, one PR per task.",
      inputSchema: playToolSchema,
    },
    (args) =>
      guarded(async () => {
        const { body } = completePlayRequest(args as never, await git());
        const s = await client.startPlay(body);
        return ok(`Play ${s.name} started in namespace ${s.namespace}.`, s.data);
      }),
  );
  server.registerTool(
    "cancel_run",
    {
      title: "Cancel a run",
      description: "Stops a run: the controller deletes its Job and marks it Cancelled.",
      inputSchema: runRef,
      annotations: { destructiveHint: true },
    },
    (args) =>
      guarded(async () => {
        const data = await client.cancelRun(args.kind, args.name);
        return ok(`Cancel requested for ${args.kind} ${args.name}.`, data);
      }),
  );
}

function registerRunReadTools(server: McpServer, client: ApiClient): void {
  const listRuns = z.strictObject({
    ...listQuerySchema.shape,
    kind: z.enum(["coderun", "docsrun"]).optional().describe("coderun or docsrun; default both."),
  });
  server.registerTool(
    "list_runs",
    {
      title: "List runs",
      description: "Lists CodeRuns and DocsRuns, newest first, with phase and pull request.",
      inputSchema: listRuns,
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const list = await client.listRuns(args);
        const rows = list.items.map((r) => ({
          kind: r.kind,
          name: r.metadata.name,
          phase: r.status?.phase ?? "Pending",
          pullRequestUrl: r.status?.pullRequestUrl,
          created: r.metadata.creationTimestamp,
        }));
        return ok(`${rows.length} run(s) in namespace ${list.namespace}.`, rows);
      }),
  );
  server.registerTool(
    "get_run",
    {
      title: "Inspect a run",
      description: "A run's spec and status: phase, reason, attempts, turns, cost, pull request.",
      inputSchema: runRef,
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const run = await client.getRun(args.kind, args.name);
        return ok(`${run.kind} ${run.metadata.name} is ${run.status?.phase ?? "Pending"}.`, brief(run));
      }),
  );
  const logsArgs = z.strictObject({
    ...runRef.shape,
    tail_lines: z.number().int().min(1).max(5000).default(200).describe("How many of the last lines."),
  });
  server.registerTool(
    "run_logs",
    {
      title: "Read a run's logs",
      description: "The last lines of the logs of the run's current pod.",
      inputSchema: logsArgs,
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const stream = await client.logs(args.kind, args.name, { tailLines: args.tail_lines });
        const text = await new Response(stream).text();
        return { content: [{ type: "text", text: text || "(no log lines yet)" }] };
      }),
  );
}

function registerPlayReadTools(server: McpServer, client: ApiClient): void {
  server.registerTool(
    "list_plays",
    {
      title: "List Plays",
      description: "Lists Plays, newest first, with task, stage, agent and phase.",
      inputSchema: playListQuerySchema,
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const list = await client.listPlays(args);
        const rows = list.items.map((p) => ({
          name: p.metadata.name,
          service: p.spec.service,
          tasks: p.spec.tasks,
          currentTask: p.status?.currentTask,
          stage: p.status?.stage,
          agent: p.status?.agent,
          pullRequest: p.status?.pullRequest?.url,
          phase: p.status?.phase ?? "Pending",
        }));
        return ok(`${rows.length} Play(s) in namespace ${list.namespace}.`, rows);
      }),
  );
  server.registerTool(
    "get_play",
    {
      title: "Inspect a Play",
      description: "A Play's spec and status: current task, stage, agent, PR, history.",
      inputSchema: z.strictObject({ name: z.string().min(1).max(253) }),
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const p = await client.getPlay(args.name);
        return ok(
          `Play ${p.metadata.name} is ${p.status?.phase ?? "Pending"}${p.status?.stage ? ` (task ${p.status.currentTask}, ${p.status.stage})` : ""}.`,
          { name: p.metadata.name, spec: p.spec, status: p.status ?? { phase: "Pending" } },
        );
      }),
  );
}

function registerResources(server: McpServer, client: ApiClient): void {
  const runs = new ResourceTemplate("orchestrator://runs/{kind}/{name}", {
    list: async () => ({
      resources: (await client.listRuns()).items.map((r) => ({
        uri: `orchestrator://runs/${r.kind.toLowerCase()}/${r.metadata.name}`,
        name: `${r.kind}/${r.metadata.name}`,
        description: `${r.status?.phase ?? "Pending"}`,
        mimeType: "application/json",
      })),
    }),
  });
  server.registerResource(
    "run",
    runs,
    { title: "Run status", description: "A CodeRun or DocsRun: spec and status", mimeType: "application/json" },
    async (uri, vars) => {
      const run = await client.getRun(String(vars.kind), String(vars.name));
      return { contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(brief(run), null, 2) }] };
    },
  );
  const plays = new ResourceTemplate("orchestrator://plays/{name}", {
    list: async () => ({
      // Plays may be disabled on the service: then there are simply no Play resources.
      resources: (await client.listPlays().catch(() => ({ items: [] as Play[] }))).items.map((p) => ({
        uri: `orchestrator://plays/${p.metadata.name}`,
        name: `Play/${p.metadata.name}`,
        description: `${p.status?.phase ?? "Pending"}`,
        mimeType: "application/json",
      })),
    }),
  });
  server.registerResource(
    "play",
    plays,
    { title: "Play status", description: "A Play: spec and status", mimeType: "application/json" },
    async (uri, vars) => {
      const p = await client.getPlay(String(vars.name));
      return {
        contents: [
          {
            uri: uri.href,
            mimeType: "application/json",
            text: JSON.stringify({ name: p.metadata.name, spec: p.spec, status: p.status ?? { phase: "Pending" } }, null, 2),
          },
        ],
      };
    },
  );
}
