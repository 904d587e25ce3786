/**
 * The real Claude Code CLI as an MCP client of `orchestrator mcp`: its (scripted) model calls the
 * `task` tool, Claude Code runs it through the MCP server over stdio, the server submits through
 * the REST API, and a CodeRun with the right spec appears in the real API server.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, VERSION } from "../../src/api/constants.js";
import type { CodeRun } from "../../src/api/types.js";
import { startApiServer, SERVICE_TOKEN, type ApiServer } from "../support/api-server.js";
import { gitCheckout } from "../support/cli-harness.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { requestText, startModelServer, type ModelServer } from "../support/model-server.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });
const CLAUDE = path.join(process.cwd(), "node_modules/.bin/claude");
const TOOL = "mcp__orchestrator__task";

let api: ApiServer;
let model: ModelServer;
let ns: string;

beforeAll(async () => {
  ns = await newNamespace("mcp-claude");
  api = await startApiServer(cluster().kubeConfig, ns);
  model = await startModelServer();
});
/** Temporary directories of the tests, removed at the end. */
const removals: (() => void)[] = [];
afterAll(async () => {
  await api?.close();
  await model?.close();
  for (const remove of removals) remove();
});

describe("Claude Code as an MCP client of orchestrator mcp", () => {
  it("the model calls the task tool and a CodeRun with the requested spec appears", async () => {
    const repo = await gitCheckout();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "mcp-claude-home-"));
    removals.push(repo.remove, () => fs.rmSync(home, { recursive: true, force: true }));
    const mcpConfig = path.join(home, "mcp.json");
    fs.writeFileSync(
      mcpConfig,
      JSON.stringify({
        mcpServers: {
          orchestrator: {
            command: process.execPath,
            args: [path.join(process.cwd(), "bin/orchestrator.js"), "mcp"],
            env: { PATH: process.env.PATH ?? "", HOME: home, ORCHESTRATOR_API_URL: api.url, ORCHESTRATOR_TOKEN: SERVICE_TOKEN },
          },
        },
      }),
    );
    model.setScript([
      {
        text: "Submitting the task.",
        tool: TOOL,
        input: {
          task_id: 21,
          service: "checkout",
          github_user: "alice",
          model: "claude-opus-4-20250514",
          prompt_modification: "Add retries to the payment client.",
        },
      },
      { text: "The task is submitted." },
    ]);
    const r = await execa(
      CLAUDE,
      [
        "-p",
        "Submit task 21 of the checkout service to the orchestrator.",
        "--output-format",
        "stream-json",
        "--verbose",
        "--mcp-config",
        mcpConfig,
        "--strict-mcp-config",
        "--allowedTools",
        TOOL,
      ],
      {
        cwd: repo.dir,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: home,
          // Claude Code's own temporary files (its /tmp/claude-<uid>), removed with the home.
          TMPDIR: home,
          ANTHROPIC_BASE_URL: model.url,
          ANTHROPIC_API_KEY: "sk-ant-test",
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_AUTOUPDATER: "1",
        },
        extendEnv: false,
        stdin: "ignore",
        reject: false,
        timeout: 90_000,
      },
    );
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const events = String(r.stdout)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const init = events.find((e) => e.type === "system" && e.subtype === "init") as
      { tools?: string[]; mcp_servers?: { name: string; status: string }[] } | undefined;
    expect(init?.mcp_servers).toContainEqual(expect.objectContaining({ name: "orchestrator", status: "connected" }));
    expect(init?.tools).toContain(TOOL);
    expect(events.at(-1)).toMatchObject({ type: "result", subtype: "success" });

    const items = (
      (await cluster()
        .kubeConfig.makeApiClient(CustomObjectsApi)
        .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns" })) as { items: CodeRun[] }
    ).items;
    expect(items).toHaveLength(1);
    expect(items[0]!.spec).toMatchObject({
      taskId: 21,
      service: "checkout",
      repositoryUrl: repo.origin,
      docsRepositoryUrl: repo.origin,
      githubUser: "alice",
      model: "claude-opus-4-20250514",
      promptModification: "Add retries to the payment client.",
      docsBranch: "main",
      contextVersion: 1,
    });
    // The tool's answer went back to the model.
    const second = model.mainRequests()[1];
    expect(second && requestText(second)).toContain(`CodeRun ${items[0]!.metadata.name} submitted in namespace ${ns}.`);
  });
});
