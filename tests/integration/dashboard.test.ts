/**
 * The web dashboard in a real browser (Debian's Chromium, driven by playwright-core) against the
 * running system: a kwok-backed control plane, the orchestrator process as `npm start` runs it
 * (src/cmd/main.ts: controller, Play controller, HTTP service, dashboard), and the GitHub test
 * server. Every page renders cluster data; changes arrive by server push; Cancel, Retry and Submit
 * work end to end; axe-core finds no serious violations. The screenshots in docs/screenshots are
 * written by this test.
 */
import { mkdirSync } from "node:fs";
import { Watch } from "@kubernetes/client-node";
import { execa } from "execa";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, VERSION, type AnyRun, type CodeRun, type DocsRun } from "../../src/api/index.js";
import { launchBrowser, seriousAxeViolations } from "../support/browser.js";
import { newNamespace, useControlPlane } from "../support/cluster.js";
import { codeRun, createAgentSecrets, runsApi, startControllerProcess, waitFor } from "../support/controller-harness.js";
import { startGitHubServer, type GitHubServer } from "../support/github-server.js";
import { GitHubSim } from "../support/play-github.js";
import { startPrefixProxy } from "../support/prefix-proxy.js";
import {
  AGENT_USERS,
  CONTROLLER_LOGIN,
  CONTROLLER_TOKEN,
  createPlayAgentSecrets,
  newPlay,
  playConfigYaml,
  playsApi,
} from "../support/play-harness.js";
import { signedDelivery, WEBHOOK_SECRET } from "../support/webhook-fixtures.js";

const cluster = useControlPlane("full", { crdPaths: ["infra/charts/orchestrator/crds"] });
const TOKEN = "test-token";
const SHOTS = "docs/screenshots";
/** How long a page may take to show what the cluster already has (the machine may be busy). */
const PATIENT = { timeout: 15_000 };

let ns: string;
let base: string;
let github: GitHubServer;
let orchestrator: Awaited<ReturnType<typeof startControllerProcess>>;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;
/** When the test's own watch first saw each `name:phase`, to time the page against the API server. */
const seen = new Map<string, number>();
let stopWatch: (() => void) | undefined;

const runs = () => runsApi(cluster().kubeConfig);

async function screenshot(name: string, p: Page = page): Promise<void> {
  await p.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true, animations: "disabled" });
}

async function expectAccessible(p: Page = page): Promise<void> {
  expect(await seriousAxeViolations(p)).toEqual([]);
}

async function watchRuns(): Promise<void> {
  const req = await new Watch(cluster().kubeConfig).watch(
    `/apis/${GROUP}/${VERSION}/namespaces/${ns}/coderuns`,
    {},
    (_type: string, obj: AnyRun) => {
      const key = `${obj.metadata.name}:${obj.status?.phase ?? "Pending"}`;
      if (!seen.has(key)) seen.set(key, Date.now());
    },
    () => undefined,
  );
  stopWatch = () => req.abort();
}

beforeAll(async () => {
  const cp = cluster();
  ns = await newNamespace("dash");
  await createPlayAgentSecrets(cp.kubeConfig, ns);
  await createAgentSecrets(cp.kubeConfig, ns);
  github = await startGitHubServer({ users: { [CONTROLLER_TOKEN]: CONTROLLER_LOGIN } });
  // The front end as `npm run build` builds it (the process serves dist/web).
  await execa(process.execPath, ["node_modules/vite/bin/vite.js", "build", "--config", "web/vite.config.ts", "--logLevel", "warn"]);
  const config = `${playConfigYaml(github.url, "play: {resyncSeconds: 600}")}\nconcurrency: {perService: 1}\n`;
  orchestrator = await startControllerProcess(cp.kubeconfigPath, ns, config, {
    GITHUB_TOKEN: CONTROLLER_TOKEN,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
  await orchestrator.ready(60_000).catch(async (e) => {
    orchestrator.child.kill("SIGKILL");
    throw new Error(`${(e as Error).message}\n${(await orchestrator.child).all}`);
  });
  base = `http://127.0.0.1:${orchestrator.port}/`;
  await watchRuns();
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
  page = await browser.context.newPage();
}, 240_000);

afterAll(async () => {
  stopWatch?.();
  await browser?.close();
  orchestrator?.child.kill("SIGTERM");
  await orchestrator?.child;
  orchestrator?.cleanup();
  await github?.close();
});

describe("dashboard", () => {
  it("shows the login to an unauthenticated visitor and refuses a bad token", async () => {
    await page.goto(base);
    await expect.poll(() => page.getByRole("heading", { name: "Sign in to orchestrator" }).isVisible(), PATIENT).toBe(true);
    // Without the cookie the API refuses the page's calls.
    expect((await page.request.get(`${base}api/v1/dashboard/session`)).status()).toBe(401);
    await expectAccessible();
    await screenshot("login");

    await page.getByLabel("API token").fill("not-a-token");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByRole("alert").textContent(), PATIENT).toContain("This token was refused");
    expect((await browser.context.cookies()).filter((c) => c.name === "orchestrator_session")).toEqual([]);

    await page.getByLabel("API token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Runs" }).waitFor();
    const cookie = (await browser.context.cookies()).find((c) => c.name === "orchestrator_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    // Page scripts cannot read the token.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).not.toContain(TOKEN);
  });

  it("lists runs from the cluster with filters, and a status change shows within 1 s", async () => {
    await runs().create(codeRun(ns, "alpha", { service: "svc-a", taskId: 11, env: { KWOK_RUN_DURATION: "600s" } }));
    await waitFor(async () => (await runs().get("CodeRun", ns, "alpha")).status?.phase === "Running", 60_000, "alpha Running");
    await runs().create(codeRun(ns, "beta", { service: "svc-a", taskId: 12, env: { KWOK_RUN_DURATION: "600s" } }));
    await page.locator('tr[data-run="alpha"] .phase-running').waitFor();
    await page.locator('tr[data-run="beta"] .phase-pending').waitFor();

    // Pending → Running → Succeeded of a fresh run, each on the page within 1 s of the API server.
    // The page notes when each phase badge appeared in its DOM (same clock as the test's watch).
    await page.evaluate(() => {
      const w = globalThis as unknown as {
        phaseShown: Record<string, number>;
        document: { body: unknown; querySelectorAll(s: string): Iterable<{ textContent: string | null }> };
        MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void };
      };
      w.phaseShown = {};
      new w.MutationObserver(() => {
        for (const b of w.document.querySelectorAll('tr[data-run="gamma"] .badge')) w.phaseShown[b.textContent ?? ""] ??= Date.now();
      }).observe(w.document.body, { subtree: true, childList: true, characterData: true });
    });
    await runs().create(codeRun(ns, "gamma", { service: "svc-b", taskId: 13, env: { KWOK_RUN_DURATION: "4s" } }));
    for (const phase of ["Running", "Succeeded"]) {
      await page.locator(`tr[data-run="gamma"] .phase-${phase.toLowerCase()}`).waitFor({ timeout: 60_000 });
      const shown = await page.evaluate((p) => (globalThis as unknown as { phaseShown: Record<string, number> }).phaseShown[p], phase);
      expect(shown, `the page saw gamma ${phase}`).toBeDefined();
      // The page and the test hold separate watches; the page's may deliver first.
      await expect.poll(() => seen.get(`gamma:${phase}`), { ...PATIENT, message: `the test's watch saw gamma ${phase}` }).toBeDefined();
      const atServer = seen.get(`gamma:${phase}`);
      console.log(`[dashboard] gamma ${phase}: on the page ${shown! - atServer!} ms after the API server`);
      expect(shown! - atServer!).toBeLessThan(1000);
    }

    await page.getByLabel("Service").selectOption("svc-a");
    await expect.poll(() => page.locator("tbody tr").count(), PATIENT).toBe(2);
    await page.getByLabel("Phase").selectOption("Running");
    await expect
      .poll(
        () =>
          page
            .locator("tbody tr[data-run]")
            .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { run: string } }).dataset.run)),
        PATIENT,
      )
      .toEqual(["alpha"]);
    expect(page.url()).toContain("service=svc-a");
    await page.getByLabel("Phase").selectOption("");
    await page.getByLabel("Service").selectOption("");
    await expect.poll(() => page.locator("tbody tr").count(), PATIENT).toBe(3);
    await expectAccessible();
    await screenshot("runs");
    await page.emulateMedia({ colorScheme: "dark" });
    await expectAccessible();
    await screenshot("runs-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("shows a run's timeline, attempts, Events and log", async () => {
    await page.locator('tr[data-run="gamma"] a').click();
    await page.getByRole("heading", { name: /gamma/ }).waitFor();
    const timeline = page.locator(".timeline");
    // The controller's Events and the attempt's Job, from the cluster.
    await expect.poll(() => timeline.textContent(), { timeout: 15_000 }).toContain("JobCreated");
    await expect.poll(() => timeline.textContent(), PATIENT).toContain("Attempt 1: Job");
    await expect.poll(() => timeline.textContent(), PATIENT).toContain("Finished: Succeeded");
    const gamma = (await runs().get("CodeRun", ns, "gamma")) as CodeRun;
    await expect.poll(() => page.getByRole("region", { name: "Attempts" }).textContent(), PATIENT).toContain(gamma.status!.jobName!);
    expect(await page.getByRole("region", { name: "Summary" }).textContent()).toContain("svc-b");
    // kwok's pods have no containers to log from: the log section says so instead of hanging.
    const log = page.getByRole("region", { name: "Log" });
    await expect.poll(() => log.textContent(), { timeout: 15_000 }).not.toContain("Waiting for output");
    // The channel's log: the API server is asked for the pod's `channel` container (and, on kwok, cannot serve it either).
    await log.getByRole("radio", { name: /Channel/ }).check();
    await expect.poll(() => log.textContent(), { timeout: 15_000 }).toMatch(/containerLogs\/[^ ]+\/channel\b/);
    await log.getByRole("radio", { name: /Agent/ }).check();
    await expect.poll(() => log.textContent(), { timeout: 15_000 }).toMatch(/containerLogs\/[^ ]+\/claude-code\b/);
    await expect.poll(() => page.getByRole("button", { name: "Retry" }).isEnabled(), PATIENT).toBe(true);
    expect(await page.getByRole("button", { name: "Cancel run" }).isDisabled()).toBe(true);
    await expectAccessible();
    await screenshot("run");
  });

  it("cancels a running run and retries it, end to end", async () => {
    await page.goto(`${base}#/runs/CodeRun/alpha`);
    await page.getByRole("heading", { name: /alpha/ }).waitFor();
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.locator("h1 .phase-cancelled").waitFor({ timeout: 30_000 });
    const alpha = await runs().get("CodeRun", ns, "alpha");
    expect(alpha.spec.cancel).toBe(true);
    expect(alpha.status?.phase).toBe("Cancelled");
    // The freed slot goes to the run that waited for it.
    await waitFor(async () => (await runs().get("CodeRun", ns, "beta")).status?.phase === "Running", 30_000, "beta Running");

    await page.getByRole("button", { name: "Retry" }).click();
    const note = page.getByText(/Retry submitted as/);
    await note.waitFor();
    const retried = /Retry submitted as (\S+)\./.exec((await note.textContent()) ?? "")?.[1];
    expect(retried).toBeTruthy();
    const copy = (await runs().get("CodeRun", ns, retried!)) as CodeRun;
    expect(copy.spec).toMatchObject({ service: "svc-a", taskId: 11, contextVersion: 2 });
    expect(copy.metadata.annotations?.["orchestrator.platform/requested-by"]).toBe("api-token-1");
  });

  it("shows each service's workspace, slots in use and queue", async () => {
    await page.getByRole("link", { name: "Services" }).click();
    const svcA = page.getByRole("region", { name: "Service svc-a" });
    await svcA.waitFor();
    await expect.poll(() => svcA.textContent(), { timeout: 15_000 }).toContain("workspace-svc-a");
    await expect.poll(() => svcA.textContent(), PATIENT).toContain("Slots: 1 of 1 in use");
    // beta holds the slot; alpha's retry waits for it.
    const text = (await svcA.textContent()) ?? "";
    expect(text).toMatch(/beta \(attempt 1/);
    expect(text).toContain("Queue (1)");
    expect(text).toContain("WaitingForSlot");
    expect(await page.getByRole("region", { name: "Service svc-b" }).textContent()).toContain("Slots: 0 of 1 in use");
    await expectAccessible();
    await screenshot("services");
  });

  it("submits code and docs tasks, showing the API's validation errors at their fields", async () => {
    await page.getByRole("link", { name: "Submit" }).click();
    await page.getByLabel("Task id").fill("x");
    await page.getByLabel("Service").fill("Not_A_Label");
    await page.getByRole("button", { name: "Submit code task" }).click();
    const service = page.getByLabel("Service");
    await expect.poll(() => service.getAttribute("aria-invalid"), PATIENT).toBe("true");
    // The message the API gave for a field, found through the field's aria-describedby.
    const errorOf = async (field: string) => {
      const id = (await page.locator(`#code-form-${field}`).getAttribute("aria-describedby"))?.split(" ").find((x) => x.endsWith("-error"));
      return id ? page.locator(`[id="${id}"]`).textContent() : null;
    };
    expect(await errorOf("service")).toContain("DNS label");
    expect(await errorOf("task_id")).toBeTruthy();
    expect(await errorOf("repository_url")).toBeTruthy();
    expect(await errorOf("model")).toBeNull();
    expect(await page.getByRole("alert").textContent()).toContain("Request validation failed");
    await expectAccessible();
    await screenshot("submit");

    await page.getByLabel("Task id").fill("21");
    await service.fill("svc-c");
    await page.locator("#code-form-repository_url").fill("https://github.com/acme/api.git");
    await page.getByLabel("Docs repository URL").fill("https://github.com/acme/docs.git");
    await page.getByLabel("GitHub user").fill(AGENT_USERS.rex);
    await page.getByRole("button", { name: "Submit code task" }).click();
    const created = page.locator(".note.success a");
    await created.waitFor();
    const name = (await created.textContent())!;
    const run = (await runs().get("CodeRun", ns, name)) as CodeRun;
    expect(run.spec).toMatchObject({ taskId: 21, service: "svc-c", githubUser: AGENT_USERS.rex });
    await created.click();
    await page.getByRole("heading", { name: new RegExp(name) }).waitFor();

    await page.goto(`${base}#/submit?kind=docs`);
    await page.getByLabel("Repository URL").fill("https://github.com/acme/docs.git");
    await page.getByLabel("Working directory").fill(".");
    await page.getByLabel("Source branch").fill("main");
    await page.getByLabel("GitHub user").fill(AGENT_USERS.rex);
    await page.getByRole("button", { name: "Submit docs task" }).click();
    const docsLink = page.locator(".note.success a");
    await docsLink.waitFor();
    const docs = (await runs().get("DocsRun", ns, (await docsLink.textContent())!)) as DocsRun;
    expect(docs.spec).toMatchObject({ workingDirectory: ".", sourceBranch: "main" });
  });

  it("shows a Play's stages, agents, PR, check runs and history", async () => {
    const plays = playsApi(cluster().kubeConfig);
    await plays.create(newPlay(ns, "demo", { service: "svc-p", tasks: [1, 2], agents: { implementation: "rex" } }));
    const implRun = await waitFor(
      async () => (await plays.runs(ns)).find((r) => r.metadata.labels?.["orchestrator.platform/play-stage"] === "implementation"),
      60_000,
      "implementation run",
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${orchestrator.output().slice(-4000)}`);
    });
    await page.getByRole("link", { name: "Plays" }).click();
    await page.getByRole("link", { name: "demo" }).click();
    const stages = page.getByRole("list", { name: "Stages of task 1" });
    await expect.poll(() => stages.locator('[aria-current="step"]').textContent(), { timeout: 15_000 }).toContain("Implementation");
    expect(await stages.locator('[aria-current="step"]').textContent()).toContain("agent: rex");

    // The implementation agent opens the PR (a signed webhook delivery); the Play moves to quality review.
    await waitFor(
      async () => (await runs().get("CodeRun", ns, implRun.metadata.name!)).status?.phase === "Succeeded",
      60_000,
      "implementation run Succeeded",
    );
    const sim = new GitHubSim(github, "acme", "api");
    const { pull, delivery } = sim.openTaskPull(1, AGENT_USERS.rex);
    const d = await signedDelivery(delivery.event, delivery.payload);
    expect((await fetch(`${base}webhooks/github`, { method: "POST", headers: d.headers, body: d.payload })).status).toBeLessThan(300);
    await expect.poll(() => stages.locator('[aria-current="step"]').textContent(), { timeout: 30_000 }).toContain("Quality review");
    expect(await stages.locator('[aria-current="step"]').textContent()).toContain("agent: cleo");
    expect(await stages.locator(".stage-done").first().textContent()).toContain("Implementation");
    const summary = page.getByRole("region", { name: "Summary" });
    await expect.poll(() => summary.textContent(), PATIENT).toContain(`#${pull.number}`);
    await expect.poll(() => page.getByRole("region", { name: "Check runs" }).textContent(), { timeout: 30_000 }).toMatch(/in_progress/);
    await expect.poll(() => page.getByRole("region", { name: "History" }).textContent(), PATIENT).toContain(implRun.metadata.name!);
    expect(await page.getByRole("region", { name: "Stage runs" }).textContent()).toContain(implRun.metadata.name!);
    await expectAccessible();
    await screenshot("play");
    await page.getByRole("link", { name: "Plays" }).first().click();
    await page.getByRole("heading", { name: "Plays" }).waitFor();
    await expect.poll(() => page.locator("tbody").textContent(), PATIENT).toContain("cleo");
    await expectAccessible();
  });

  it("keeps keyboard users oriented: skip link first, focus on each page's heading", async () => {
    await page.goto(`${base}#/runs`);
    await page.reload();
    await page.getByRole("heading", { name: "Runs" }).waitFor();
    await page.keyboard.press("Tab");
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent,
      ),
    ).toContain("Skip to content");
    await page.getByRole("link", { name: "Services" }).press("Enter");
    await page.getByRole("heading", { name: "Services" }).waitFor();
    expect(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { activeElement: { tagName: string; textContent: string } } }).document.activeElement
            .tagName,
      ),
    ).toBe("H1");
  });

  it("works under a path prefix behind a proxy that strips it, like the chart's Ingress with a rewrite", async () => {
    const proxy = await startPrefixProxy(base, "/orchestrator");
    const other = await browser.context.newPage();
    try {
      await other.goto(proxy.url);
      await other.getByLabel("API token").fill(TOKEN);
      await other.keyboard.press("Enter");
      await other.getByRole("heading", { name: "Runs" }).waitFor();
      const cookie = (await browser.context.cookies(proxy.url)).find(
        (c) => c.name === "orchestrator_session" && c.path === "/orchestrator",
      );
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
      // The stream and the API calls go through the prefix too.
      await expect.poll(() => other.locator(".conn").textContent(), PATIENT).toBe("Live");
      await other.locator('tr[data-run="gamma"]').waitFor();
      await other.locator('tr[data-run="gamma"] a').click();
      await other.getByRole("heading", { name: /gamma/ }).waitFor();
      await expect.poll(() => other.locator(".timeline").textContent(), { timeout: 15_000 }).toContain("JobCreated");
    } finally {
      await other.close();
      await proxy.close();
    }
  });

  it("signs out: the cookie is gone and the API refuses the browser again", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to orchestrator" }).waitFor();
    expect((await browser.context.cookies(base)).filter((c) => c.name === "orchestrator_session" && c.value)).toEqual([]);
    expect((await page.request.get(`${base}api/v1/dashboard/session`)).status()).toBe(401);
  });
});
