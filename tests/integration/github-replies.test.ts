/**
 * Replies on GitHub for deliveries that start runs, against the OpenAPI-checked GitHub test
 * server and a real kube-apiserver: the webhook intake creates the CodeRun (intent only), the run
 * reporter acknowledges it (👀 reaction, tracking comment, check run on the PR head) and keeps the
 * comment up to date as the run's status changes (written here as the CodeRun controller would),
 * exactly once across a restart; refused deliveries get one short reply.
 */
import { CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GROUP, VERSION } from "../../src/api/constants.js";
import type { CodeRun, RunStatus } from "../../src/api/types.js";
import { parseConfig } from "../../src/config/config.js";
import { RunReporter, type RunReporterKube } from "../../src/controller/run-reporter.js";
import { createPlayGitHub } from "../../src/github/octokit.js";
import { buildApp, createAuthenticator } from "../../src/http/app.js";
import { Manager } from "../../src/controller/manager.js";
import { makeClients } from "../../src/kube/clients.js";
import { createInformerSource } from "../../src/kube/informer.js";
import { createRunReporterKube } from "../../src/kube/run-reporter-kube.js";
import { createKubeRunStore } from "../../src/kube/run-store.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics } from "../../src/observability/metrics.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { waitFor } from "../support/controller-harness.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { commentPayload, deliver, signedDelivery, WEBHOOK_SECRET, withNewDeliveryId } from "../support/webhook-fixtures.js";
import { signedBodyDigest } from "../../src/webhook/rules.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });
const TOKEN = "ghp_reporter_0000000000000000000000000000";
const BOT = "orchestrator-bot";
const OWNER = "acme";
const REPO = "api";
const HEAD = "a".repeat(40);
const PUBLIC = "https://orchestrator.example.com";

let gh: GitHubServer;
let ns: string;
let idSeq = 5000;
const reporters: Array<{ stop(): Promise<void> }> = [];

function config() {
  return parseConfig(
    [
      `namespace: ${ns}`,
      // The web host the payloads name; the API is the test server.
      `github: {apiUrl: "${gh.url}", url: "https://github.com"}`,
      `play: {publicUrl: "${PUBLIC}"}`,
      "webhook:",
      "  defaults: {githubUser: alice, service: api}",
      "  rules:",
      "    - {name: agent-run, event: issue_comment, commentPattern: '^/agent run\\b(?<prompt>.*)'}",
    ].join("\n"),
    { GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET, GITHUB_TOKEN: TOKEN },
  );
}

/** The reporter registered with its own manager, as src/cmd/main.ts wires it (stop() stops the manager). */
async function startReporter(wrap?: (k: RunReporterKube) => RunReporterKube): Promise<RunReporter & { stop(): Promise<void> }> {
  const cfg = config();
  const clients = makeClients(cluster().kubeConfig);
  const kube = createRunReporterKube(clients);
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const manager = new Manager({ source: createInformerSource(clients, logger), namespace: ns, logger, metrics: createMetrics() });
  const r = new RunReporter({
    manager,
    kube: wrap ? wrap(kube) : kube,
    github: createPlayGitHub({ apiUrl: gh.url, auth: { token: TOKEN } }),
    config: cfg,
    logger,
  });
  await manager.start();
  const started = Object.assign(r, { stop: () => manager.stop() });
  reporters.push(started);
  return started;
}

function intake(onRefusal: RunReporter["enqueueRefusal"]) {
  const cfg = config();
  return buildApp({
    config: cfg,
    runs: createKubeRunStore({ kubeConfig: cluster().kubeConfig, namespace: ns }),
    auth: createAuthenticator({ tokens: [] }),
    readiness: async () => ({ ready: true, checks: {} }),
    metrics: createMetrics(),
    logger: createLogger({ level: "silent" }),
    onRefusal: (r) => onRefusal(r),
  });
}

/** "/agent run …" on issue (or PR) `issue` of acme/api, written by `login`. */
function comment(issue: number, body: string, o: { pr?: boolean; association?: string; login?: string } = {}) {
  const p = commentPayload(body, { association: o.association ?? "COLLABORATOR", login: o.login ?? "octo-dev" }) as Record<
    string,
    Record<string, unknown>
  >;
  p.repository = { ...p.repository, name: REPO, full_name: `${OWNER}/${REPO}`, clone_url: `https://github.com/${OWNER}/${REPO}.git` };
  p.issue = { ...p.issue, number: issue };
  delete p.issue.pull_request;
  if (o.pr) p.issue.pull_request = { url: `${gh.url}/repos/${OWNER}/${REPO}/pulls/${issue}` };
  p.comment = { ...p.comment, id: ++idSeq, html_url: `https://github.com/${OWNER}/${REPO}/issues/${issue}#issuecomment-${idSeq}` };
  return { payload: p, commentId: idSeq };
}

const custom = () => cluster().kubeConfig.makeApiClient(CustomObjectsApi);
const setStatus = (name: string, status: RunStatus) =>
  custom().patchNamespacedCustomObjectStatus({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "coderuns",
    name,
    body: [{ op: "add", path: "/status", value: status }],
  });
const getRun = async (name: string) =>
  (await custom().getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "coderuns", name })) as CodeRun;
const commentsOn = (issue: number) => gh.state.comments.filter((c) => c.issueNumber === issue);
const writes = (operationId: string) => gh.state.requests.filter((r) => r.operationId === operationId && r.status < 300).length;

beforeAll(async () => {
  ns = await newNamespace("replies");
  gh = await startGitHubServer({ users: { [TOKEN]: BOT } });
  gh.state.pulls.push({
    owner: OWNER,
    repo: REPO,
    number: 5,
    title: "Fix it",
    body: null,
    head: "feature/x",
    base: "main",
    state: "open",
    draft: false,
    labels: [],
    html_url: `https://github.com/${OWNER}/${REPO}/pull/5`,
    createdBy: "octo-dev",
    headSha: HEAD,
  });
});
afterEach(async () => {
  for (const r of reporters.splice(0)) await r.stop();
});
afterAll(async () => gh?.close());

describe("replies on GitHub for webhook-started runs", () => {
  it("acknowledges within seconds (👀 + tracking comment + check run on the PR head) and keeps the comment up to date", async () => {
    const reporter = await startReporter();
    const app = intake(reporter.enqueueRefusal);
    const { payload, commentId } = comment(5, "/agent run fix the flaky test", { pr: true });
    const t0 = performance.now();
    const res = await deliver(app, await signedDelivery("issue_comment", payload));
    expect(res.statusCode, res.body).toBe(201);
    const name = (JSON.parse(res.body) as { data: { coderun_name: string } }).data.coderun_name;
    await waitFor(
      async () => commentsOn(5).length === 1 && gh.state.checkRuns.length === 1 && gh.state.reactions.length === 1,
      10_000,
      "acknowledgement",
      50,
    );
    const ackMs = performance.now() - t0;
    console.log(`[replies] delivery → reaction, tracking comment and check run: ${ackMs.toFixed(0)} ms`);
    expect(ackMs).toBeLessThan(5000);
    expect(gh.state.reactions[0]).toMatchObject({ commentId, content: "eyes", user: BOT });
    const tracking = commentsOn(5)[0]!;
    expect(tracking.body.split("\n")[0]).toBe(`<!-- orchestrator-run:${ns}/${name} -->`);
    expect(tracking.body).toContain(`👀 On it: task 5 of \`api\` runs as CodeRun \`${name}\``);
    expect(tracking.body).toContain("| Phase | ⏳ Pending |");
    expect(gh.state.checkRuns[0]).toMatchObject({
      headSha: HEAD,
      status: "in_progress",
      externalId: `run:${ns}/${name}`,
      name: "orchestrator: agent run",
    });

    await setStatus(name, { phase: "Running", reason: "AgentRunning", attempts: 1, jobName: `${name}-1` });
    await waitFor(async () => tracking.body.includes("🔄 Running"), 10_000, "Running in the comment", 50);
    expect(tracking.body).toContain(`| Logs | [${name}](${PUBLIC}/api/v1/runs/CodeRun/${name}/logs) |`);
    await setStatus(name, {
      phase: "Succeeded",
      reason: "Succeeded",
      attempts: 1,
      jobName: `${name}-1`,
      pullRequestUrl: "https://github.com/acme/api/pull/6",
      result: { outcome: "succeeded", turns: 3, toolCalls: 5, costUsd: 0.0123 },
    });
    await waitFor(
      async () => tracking.body.includes("✅ Succeeded") && gh.state.checkRuns[0]!.status === "completed",
      10_000,
      "Succeeded",
      50,
    );
    expect(tracking.body).toContain("**Pull request:** https://github.com/acme/api/pull/6");
    expect(tracking.body).toContain("| Turns | 3 |");
    expect(tracking.body).toContain("| Tools used | 5 |");
    expect(tracking.body).toContain("| Cost | $0.0123 |");
    expect(gh.state.checkRuns[0]).toMatchObject({ conclusion: "success", detailsUrl: `${PUBLIC}/api/v1/runs/CodeRun/${name}/logs` });
    expect(commentsOn(5)).toHaveLength(1);
    expect(gh.state.checkRuns).toHaveLength(1);
    // The record is written after GitHub answers, so it may trail GitHub's state by one write.
    const report = async () =>
      JSON.parse((await getRun(name)).metadata.annotations?.["orchestrator.platform/github-report"] ?? "{}") as {
        checkRun?: { state?: string };
      };
    await waitFor(async () => (await report()).checkRun?.state === "completed:success", 10_000, "record of the completed check run", 50);
    expect(await report()).toMatchObject({
      reacted: true,
      comment: { id: tracking.id },
      checkRun: { id: gh.state.checkRuns[0]!.id, state: "completed:success" },
    });
    expect(gh.state.violations).toEqual([]);
  });

  it("a failed run shows the reason and what to do; an issue that is not a PR gets no check run", async () => {
    const reporter = await startReporter();
    const app = intake(reporter.enqueueRefusal);
    const checksBefore = gh.state.checkRuns.length;
    const res = await deliver(app, await signedDelivery("issue_comment", comment(11, "/agent run add a README").payload));
    const name = (JSON.parse(res.body) as { data: { coderun_name: string } }).data.coderun_name;
    await waitFor(async () => commentsOn(11).length === 1, 10_000, "tracking comment", 50);
    await setStatus(name, {
      phase: "Failed",
      reason: "SecretMissing",
      message: "Secret github-token-alice not found: run infra/scripts/setup-agent-secrets.sh --user alice",
    });
    await waitFor(async () => commentsOn(11)[0]!.body.includes("❌ Failed"), 10_000, "Failed in the comment", 50);
    const body = commentsOn(11)[0]!.body;
    expect(body).toContain("**Failed:** Secret github-token-alice not found: run infra/scripts/setup-agent-secrets.sh --user alice");
    expect(body).toContain(
      `**What to do:** an operator must create the missing Secret (see the message above); comment again to start a new run, or retry this one: \`orchestrator runs retry coderun/${name}\`.`,
    );
    expect(gh.state.checkRuns.length).toBe(checksBefore);
  });

  it("writes each state exactly once across a restart that lost the record (crash between the GitHub write and the annotation)", async () => {
    gh.state.pulls.push({
      owner: OWNER,
      repo: REPO,
      number: 12,
      title: "Other",
      body: null,
      head: "feature/y",
      base: "main",
      state: "open",
      draft: false,
      labels: [],
      html_url: `https://github.com/${OWNER}/${REPO}/pull/12`,
      createdBy: "octo-dev",
      headSha: "b".repeat(40),
    });
    const before = { comments: writes("issues/create-comment"), checks: writes("checks/create"), updates: writes("issues/update-comment") };
    // First process: every GitHub write happens, but the record never reaches the run.
    let lost = 0;
    const first = await startReporter(() => ({
      annotateRun: async () => {
        lost++;
        throw new Error("connection reset");
      },
    }));
    const app = intake(first.enqueueRefusal);
    const asked = comment(12, "/agent run", { pr: true });
    const res = await deliver(app, await signedDelivery("issue_comment", asked.payload));
    const name = (JSON.parse(res.body) as { data: { coderun_name: string } }).data.coderun_name;
    await waitFor(
      async () => lost > 0 && commentsOn(12).length === 1 && gh.state.checkRuns.some((c) => c.headSha === "b".repeat(40)),
      10_000,
      "first writes",
      50,
    );
    await first.stop();
    reporters.splice(reporters.indexOf(first), 1);
    expect((await getRun(name)).metadata.annotations?.["orchestrator.platform/github-report"]).toBeUndefined();

    // Restarted process: finds the comment by its marker and the check run by external_id.
    await startReporter();
    await waitFor(
      async () => (await getRun(name)).metadata.annotations?.["orchestrator.platform/github-report"],
      10_000,
      "record adopted",
      100,
    );
    expect(writes("issues/create-comment") - before.comments).toBe(1);
    expect(writes("checks/create") - before.checks).toBe(1);
    expect(writes("issues/update-comment") - before.updates).toBe(0);
    await setStatus(name, { phase: "Cancelled", reason: "Cancelled" });
    await waitFor(async () => commentsOn(12)[0]!.body.includes("⏹️ Cancelled"), 10_000, "Cancelled", 50);
    await waitFor(
      async () => gh.state.checkRuns.find((c) => c.headSha === "b".repeat(40))?.conclusion === "cancelled",
      10_000,
      "check run cancelled",
      50,
    );
    expect(writes("issues/create-comment") - before.comments).toBe(1);
    expect(writes("issues/update-comment") - before.updates).toBe(1);
    expect(commentsOn(12)).toHaveLength(1);
    expect(gh.state.reactions.filter((r) => r.commentId === asked.commentId)).toHaveLength(1);
  });

  it("replies once to a refused request: the sender may not start agents, or the task already runs", async () => {
    const reporter = await startReporter();
    const app = intake(reporter.enqueueRefusal);
    const stranger = await signedDelivery(
      "issue_comment",
      comment(20, "/agent run please", { association: "NONE", login: "drive-by" }).payload,
    );
    expect((await deliver(app, stranger)).statusCode).toBe(202);
    await waitFor(async () => commentsOn(20).length === 1, 10_000, "refusal reply", 50);
    expect(commentsOn(20)[0]!.body).toBe(
      `<!-- orchestrator-refusal:${signedBodyDigest(stranger.payload).slice(0, 32)} -->\n@drive-by I did not start an agent: drive-by has author_association NONE (allowed: OWNER, MEMBER, COLLABORATOR). Ask a maintainer to run it, or to add you to the orchestrator's \`webhook.allowUsers\`.`,
    );
    // GitHub redelivers the same delivery, or someone replays it under a new delivery id: still one reply.
    expect((await deliver(app, stranger)).statusCode).toBe(202);
    expect((await deliver(app, withNewDeliveryId(stranger))).statusCode).toBe(202);
    await new Promise((r) => setTimeout(r, 1500));
    expect(commentsOn(20)).toHaveLength(1);

    const first = await deliver(app, await signedDelivery("issue_comment", comment(21, "/agent run one").payload));
    expect(first.statusCode).toBe(201);
    const active = (JSON.parse(first.body) as { data: { coderun_name: string } }).data.coderun_name;
    const second = await deliver(app, await signedDelivery("issue_comment", comment(21, "/agent run two").payload));
    expect(second.statusCode).toBe(202);
    expect(JSON.parse(second.body)).toMatchObject({ data: { outcome: "busy", coderun_name: active } });
    await waitFor(async () => commentsOn(21).some((c) => c.body.includes("I did not start an agent")), 10_000, "busy reply", 50);
    expect(commentsOn(21).find((c) => c.body.includes("I did not start an agent"))!.body).toContain(
      `@octo-dev I did not start an agent: this task already has an active run (CodeRun \`${active}\`). Wait for it to finish, or cancel it (\`orchestrator runs cancel coderun/${active}\`) and ask again.`,
    );
    const runs = (
      (await custom().listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: "coderuns",
        labelSelector: "task-id=21",
      })) as { items: CodeRun[] }
    ).items;
    expect(runs).toHaveLength(1);
    expect(gh.state.violations).toEqual([]);
  });
});
