/**
 * The MCP server through the official SDK's client, over stdio (`orchestrator mcp`, the package
 * bin, in a git checkout) and over streamable HTTP (`/mcp` on the service, bearer auth), with the
 * REST API over a real kube-apiserver: what the tools create is checked in the cluster.
 */
import { join } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, VERSION } from "../../src/api/constants.js";
import type { Play } from "../../src/api/play.js";
import type { CodeRun, DocsRun } from "../../src/api/types.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { startApiServer, SERVICE_TOKEN, type ApiServer } from "../support/api-server.js";
import { gitCheckout } from "../support/cli-harness.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });

let api: ApiServer;
let ns: string;
let repo: Awaited<ReturnType<typeof gitCheckout>>;

beforeAll(async () => {
  ns = await newNamespace("mcp");
  api = await startApiServer(cluster().kubeConfig, ns);
  repo = await gitCheckout();
});
afterAll(async () => {
  await api?.close();
  repo.remove();
});

const custom = () => cluster().kubeConfig.makeApiClient(CustomObjectsApi);
const getObject = async <T>(plural: string, name: string) =>
  (await custom().getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, name })) as T;
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;
const json = (r: unknown) => JSON.parse(text(r).slice(text(r).indexOf("\n\n") + 2)) as Record<string, unknown>;

async function stdioClient(): Promise<Client> {
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(process.cwd(), "bin/orchestrator.js"), "mcp"],
    cwd: repo.dir,
    env: { PATH: process.env.PATH ?? "", HOME: repo.dir, ORCHESTRATOR_API_URL: api.url, ORCHESTRATOR_TOKEN: SERVICE_TOKEN },
    stderr: "pipe",
  });
  await client.connect(transport);
  return client;
}

async function httpClient(token: string | undefined = SERVICE_TOKEN): Promise<Client> {
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${api.url}/mcp`), {
      requestInit: { headers: token ? { authorization: `Bearer ${token}` } : {} },
    }),
  );
  return client;
}

describe("MCP server over stdio (orchestrator mcp)", () => {
  it("lists the tools with schemas from the REST API's zod schemas, and submits a task with the repository taken from git", async () => {
    const client = await stdioClient();
    try {
      expect(client.getServerVersion()?.name).toBe("orchestrator-mcp");
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        "cancel_run",
        "docs",
        "get_play",
        "get_run",
        "list_plays",
        "list_runs",
        "play",
        "run_logs",
        "task",
      ]);
      const task = tools.find((t) => t.name === "task")!;
      const props = task.inputSchema.properties as Record<
        string,
        { description?: string; pattern?: string; maximum?: number; default?: unknown }
      >;
      // Same constraints and descriptions as POST /api/v1/pm/tasks.
      expect(props.service).toMatchObject({
        pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description: "Target service; selects the workspace volume workspace-{service}.",
      });
      expect(props.docs_branch?.default).toBe("main");
      expect(props.context_version?.default).toBe(1);
      expect(task.inputSchema.required).toEqual(["task_id", "service"]);

      const r = await client.callTool({
        name: "task",
        arguments: { task_id: 12, service: "billing", github_user: "alice", prompt_modification: "Keep it small." },
      });
      expect(r.isError, text(r)).toBeFalsy();
      const name = String(json(r).coderun_name);
      const cr = await getObject<CodeRun>("coderuns", name);
      expect(cr.spec).toMatchObject({
        taskId: 12,
        service: "billing",
        repositoryUrl: repo.origin,
        docsRepositoryUrl: repo.origin,
        githubUser: "alice",
        promptModification: "Keep it small.",
        docsBranch: "main",
        contextVersion: 1,
      });

      const d = await client.callTool({ name: "docs", arguments: { working_directory: "docs", github_user: "alice" } });
      expect(d.isError, text(d)).toBeFalsy();
      const dr = await getObject<DocsRun>("docsruns", String(json(d).docsrun_name));
      expect(dr.spec).toMatchObject({ repositoryUrl: repo.origin, workingDirectory: "docs", sourceBranch: "main", githubUser: "alice" });
    } finally {
      await client.close();
    }
  });

  it("lists, inspects and cancels runs; logs of a run without a Job are a readable tool error; resources show run status", async () => {
    const client = await stdioClient();
    try {
      const list = await client.callTool({ name: "list_runs", arguments: { kind: "coderun" } });
      const rows = json(list) as unknown as { name: string; phase: string }[];
      expect(rows.length).toBeGreaterThanOrEqual(1);
      const name = rows[0]!.name;
      const got = await client.callTool({ name: "get_run", arguments: { name } });
      expect(text(got)).toMatch(new RegExp(`^CodeRun ${name} is Pending\\.`));
      const logs = await client.callTool({ name: "run_logs", arguments: { name } });
      expect(logs.isError).toBe(true);
      expect(text(logs)).toMatch(
        /has no Job yet \(phase Pending\); logs are available once the controller has started its Job\. Retry in a few seconds\. \(HTTP 404\)/,
      );

      const { resources } = await client.listResources();
      expect(resources.map((x) => x.uri)).toContain(`orchestrator://runs/coderun/${name}`);
      const read = await client.readResource({ uri: `orchestrator://runs/coderun/${name}` });
      expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({
        kind: "CodeRun",
        name,
        status: { phase: "Pending" },
      });
      const templates = await client.listResourceTemplates();
      expect(templates.resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
        "orchestrator://plays/{name}",
        "orchestrator://runs/{kind}/{name}",
      ]);

      const c = await client.callTool({ name: "cancel_run", arguments: { name } });
      expect(c.isError, text(c)).toBeFalsy();
      expect((await getObject<CodeRun>("coderuns", name)).spec.cancel).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe("MCP server over streamable HTTP (/mcp)", () => {
  it("requires the API's bearer token", async () => {
    const res = await fetch(`${api.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
    await expect(httpClient("wrong-token")).rejects.toThrow(/401|nauthorized/);
  });

  it("starts and inspects a Play, submits a task, and names the missing repository when none is given", async () => {
    const client = await httpClient();
    try {
      const p = await client.callTool({
        name: "play",
        arguments: {
          service: "api",
          tasks: [3, 4],
          repository_url: "https://github.com/acme/api",
          name: "mcp-play",
          agents: { implementation: "rex" },
        },
      });
      expect(p.isError, text(p)).toBeFalsy();
      const play = await getObject<Play>("plays", "mcp-play");
      expect(play.spec).toMatchObject({
        service: "api",
        tasks: [3, 4],
        repositoryUrl: "https://github.com/acme/api",
        docsRepositoryUrl: "https://github.com/acme/api",
        agents: { implementation: "rex" },
      });
      const plays = json(await client.callTool({ name: "list_plays", arguments: {} })) as unknown as { name: string }[];
      expect(plays.map((x) => x.name)).toContain("mcp-play");
      expect(text(await client.callTool({ name: "get_play", arguments: { name: "mcp-play" } }))).toMatch(/^Play mcp-play is Pending\./);
      const read = await client.readResource({ uri: "orchestrator://plays/mcp-play" });
      expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({ name: "mcp-play", spec: { tasks: [3, 4] } });

      const noRepo = await client.callTool({ name: "task", arguments: { task_id: 5, service: "web", github_user: "bob" } });
      expect(noRepo.isError).toBe(true);
      expect(text(noRepo)).toBe(
        "No repository URL: pass repository_url (CLI: --repository-url), or run the CLI or MCP server inside a git checkout that has an origin remote.",
      );
      const bad = await client.callTool({
        name: "task",
        arguments: { task_id: 5, service: "web", repository_url: "https://github.com/acme/web", github_user: "bob", github_app: "rex" },
      });
      expect(bad.isError).toBe(true);
      expect(text(bad)).toBe("Invalid CodeRequest: github_user: set exactly one of github_user or github_app (HTTP 422)");
      const ok = await client.callTool({
        name: "task",
        arguments: { task_id: 5, service: "web", repository_url: "https://github.com/acme/web", github_app: "rex" },
      });
      expect(ok.isError, text(ok)).toBeFalsy();
      const cr = await getObject<CodeRun>("coderuns", String(json(ok).coderun_name));
      expect(cr.spec).toMatchObject({
        taskId: 5,
        service: "web",
        repositoryUrl: "https://github.com/acme/web",
        docsRepositoryUrl: "https://github.com/acme/web",
        githubApp: "rex",
      });
      expect(cr.metadata.annotations?.["orchestrator.platform/requested-by"]).toBe("api-token-1");
    } finally {
      await client.close();
    }
  });
});
