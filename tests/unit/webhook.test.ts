import { sign } from "@octokit/webhooks-methods";
import { afterEach, describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/types.js";
import { buildRefusalReply, type Refusal } from "../../src/reporter/run-report.js";
import {
  DEFAULT_CONFIG_YAML,
  WEBHOOK_SECRET,
  WEBHOOK_SECRET_PREVIOUS,
  buildTestApp,
  commentPayload,
  counterValue,
  deliver,
  examplePayload,
  runNameOf,
  signedDelivery,
  testConfig,
  withNewDeliveryId,
  type TestApp,
} from "../support/webhook-fixtures.js";
import { signedBodyDigest } from "../../src/webhook/rules.js";
import { computeSpecDigest, requesterOf } from "../../src/authz/authorize.js";

/** The identity of a delivery the intake hands to listeners and reporters: a digest of its signed body. */
const deliveryKey = (d: { payload: string }) => signedBodyDigest(d.payload).slice(0, 32);

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const deliveries = (outcome: string, event = "issue_comment") =>
  counterValue(t.metrics, "orchestrator_webhook_deliveries_total", { event, outcome });

describe("POST /webhooks/github: signature", () => {
  it("creates a CodeRun for a signed /agent run comment from a collaborator (real example payload)", async () => {
    t = buildTestApp();
    const payload = commentPayload("/agent run fix the flaky login test\nIt fails on Safari.", {
      association: "COLLABORATOR",
      login: "octo-dev",
    });
    const d = await signedDelivery("issue_comment", payload);
    const res = await deliver(t.app, d);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      success: true,
      message: "CodeRun created",
      data: { delivery: d.id, event: "issue_comment", outcome: "created", coderun_name: runNameOf(d), namespace: "orchestrator" },
    });
    const runs = t.runs.all() as CodeRun[];
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    const issue = (payload.issue as { number: number }).number;
    const repo = payload.repository as { clone_url: string; full_name: string };
    expect(run.metadata.name).toMatch(/^gh-[0-9a-f]{16}$/);
    expect(run.spec).toMatchObject({
      taskId: issue,
      service: "hello-world",
      repositoryUrl: repo.clone_url,
      docsRepositoryUrl: repo.clone_url,
      docsProjectDirectory: "docs",
      githubApp: "5DLabs-Rex",
      model: "claude-sonnet-4-20250514",
      contextVersion: 1,
    });
    expect(run.spec.githubUser).toBeUndefined();
    expect(run.spec.promptModification).toContain("untrusted user input");
    expect(run.spec.promptModification).toContain(
      "<untrusted-github-content>\nfix the flaky login test\nIt fails on Safari.\n</untrusted-github-content>",
    );
    expect(run.spec.promptModification).toContain("@octo-dev (author association COLLABORATOR)");
    expect(run.metadata.labels).toMatchObject({ app: "orchestrator", service: "hello-world", "task-id": String(issue) });
    expect(run.metadata.annotations).toMatchObject({
      "orchestrator.platform/github-delivery": d.id,
      "orchestrator.platform/requested-by": "octo-dev",
      "orchestrator.platform/github-event": "issue_comment.created",
      "orchestrator.platform/github-repository": repo.full_name,
      "orchestrator.platform/github-issue": String(issue),
      "orchestrator.platform/webhook-rule": "agent-run",
    });
    expect(await deliveries("created")).toBe(1);
  });

  it("accepts the previous secret during rotation, and the /webhook alias", async () => {
    t = buildTestApp();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run rotate"), { secret: WEBHOOK_SECRET_PREVIOUS });
    expect((await deliver(t.app, d, "/webhook")).statusCode).toBe(201);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers 401 and creates nothing for a forged, missing, malformed or wrong-algorithm signature", async () => {
    t = buildTestApp();
    const payload = commentPayload("/agent run do evil");
    const d = await signedDelivery("issue_comment", payload);
    const variants: Record<string, string | undefined>[] = [
      { "x-hub-signature-256": await sign("not-the-secret", d.payload) },
      { "x-hub-signature-256": undefined },
      { "x-hub-signature-256": "sha256=zz" },
      { "x-hub-signature-256": d.headers["x-hub-signature-256"]!.replace("sha256=", "sha1=") },
      { "x-hub-signature-256": d.headers["x-hub-signature-256"]!.slice(0, -2) + "00" },
      { "x-hub-signature-256": "" },
    ];
    for (const v of variants) {
      const headers = { ...d.headers, ...v } as Record<string, string>;
      for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
      const res = await t.app.inject({ method: "POST", url: "/webhooks/github", payload: d.payload, headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers["content-type"]).toMatch(/problem\+json/);
      expect(res.json()).toMatchObject({ success: false, status: 401 });
    }
    // A valid signature over a different body (tampered payload) is also rejected.
    const tampered = d.payload.replace("do evil", "do worse");
    expect((await t.app.inject({ method: "POST", url: "/webhooks/github", payload: tampered, headers: d.headers })).statusCode).toBe(401);
    expect(t.runs.createCalls).toBe(0);
    expect(await deliveries("unauthorized", "unverified")).toBe(variants.length + 1);
  });

  it("verifies the raw bytes: re-serializing the JSON would break the signature", async () => {
    t = buildTestApp();
    // Unusual but valid JSON spacing and unicode escapes: the HMAC covers exactly these bytes.
    const text = JSON.stringify(commentPayload("/agent run caf\u00e9 \u2603"), null, 3).replace("\u2603", "\\u2603");
    const d = await signedDelivery("issue_comment", text);
    expect((await deliver(t.app, d)).statusCode).toBe(201);
    expect((t.runs.all()[0] as CodeRun).spec.promptModification).toContain("café ☃");
  });

  it("answers 503 when no webhook secret is configured (never accepts unsigned deliveries)", async () => {
    t = buildTestApp({ config: testConfig(undefined, { GITHUB_WEBHOOK_SECRET: "", GITHUB_WEBHOOK_SECRET_PREVIOUS: "" }) });
    const d = await signedDelivery("issue_comment", commentPayload("/agent run x"));
    const res = await deliver(t.app, d);
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toMatch(/GITHUB_WEBHOOK_SECRET/);
    expect(t.runs.all()).toHaveLength(0);
  });
});

describe("POST /webhooks/github: parsing and limits", () => {
  it("answers 413 over webhook.maxBodyBytes", async () => {
    t = buildTestApp({ config: testConfig(DEFAULT_WITH_LIMIT) });
    const d = await signedDelivery("issue_comment", commentPayload("/agent run " + "x".repeat(5000)));
    const res = await deliver(t.app, d);
    expect(res.statusCode).toBe(413);
    expect(res.headers["content-type"]).toMatch(/problem\+json/);
    expect(t.runs.all()).toHaveLength(0);
  });

  it("answers 400 for a signed but unparsable or non-object payload, and for missing GitHub headers", async () => {
    t = buildTestApp();
    for (const text of ["{not json", "[1,2,3]", '"str"', "null"]) {
      const res = await deliver(t.app, await signedDelivery("issue_comment", text));
      expect(res.statusCode, text).toBe(400);
    }
    const d = await signedDelivery("issue_comment", commentPayload("/agent run x"));
    const { "x-github-delivery": _, ...noDelivery } = d.headers;
    expect((await t.app.inject({ method: "POST", url: "/webhooks/github", payload: d.payload, headers: noDelivery })).statusCode).toBe(400);
    expect(
      (
        await t.app.inject({
          method: "POST",
          url: "/webhooks/github",
          payload: d.payload,
          headers: { ...d.headers, "x-github-event": "Bad Event!" },
        })
      ).statusCode,
    ).toBe(400);
    expect(t.runs.all()).toHaveLength(0);
  });

  it("accepts form-encoded deliveries (payload=...) and rejects other content types with 415", async () => {
    t = buildTestApp();
    const json = JSON.stringify(commentPayload("/agent run form"));
    const form = "payload=" + encodeURIComponent(json);
    const d = await signedDelivery("issue_comment", form);
    const res = await t.app.inject({
      method: "POST",
      url: "/webhooks/github",
      payload: form,
      headers: { ...d.headers, "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.statusCode).toBe(201);
    const xml = await signedDelivery("issue_comment", "<xml/>");
    expect(
      (
        await t.app.inject({
          method: "POST",
          url: "/webhooks/github",
          payload: xml.payload,
          headers: { ...xml.headers, "content-type": "application/xml" },
        })
      ).statusCode,
    ).toBe(415);
  });
});

describe("POST /webhooks/github: events and rules", () => {
  it("answers ping with 200 pong", async () => {
    t = buildTestApp();
    const res = await deliver(t.app, await signedDelivery("ping", examplePayload("ping")));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ success: true, message: "pong", data: { zen: expect.any(String) } });
    expect(t.runs.all()).toHaveLength(0);
  });

  it("answers 202 ignored for events no rule matches (push, a plain comment, issues.opened) and counts them", async () => {
    t = buildTestApp();
    for (const [event, payload] of [
      ["push", examplePayload("push")],
      ["issue_comment", examplePayload("issue_comment", "created")],
      ["issues", examplePayload("issues", "opened")],
      ["pull_request", examplePayload("pull_request", "opened")],
      ["star", examplePayload("star")],
    ] as const) {
      const res = await deliver(t.app, await signedDelivery(event, payload));
      expect(res.statusCode, event).toBe(202);
      expect(res.json()).toMatchObject({ success: true, data: { outcome: "ignored" } });
    }
    expect(t.runs.all()).toHaveLength(0);
    expect(await deliveries("ignored", "push")).toBe(1);
    expect(t.logs()).toContain("Ignored delivery: no rule matches");
  });

  it("accepts real event names with digits (projects_v2_item, projects_v2) and counts them under their name", async () => {
    t = buildTestApp();
    for (const [event, payload] of [
      ["projects_v2_item", examplePayload("projects_v2_item")],
      ["projects_v2", { action: "edited", projects_v2: { id: 1, title: "Roadmap" } }],
    ] as const) {
      const res = await deliver(t.app, await signedDelivery(event, payload));
      expect(res.statusCode, event).toBe(202);
      expect(res.json().data).toMatchObject({ event, outcome: "ignored" });
      expect(await deliveries("ignored", event)).toBe(1);
    }
  });

  it("answers events no rule names from the headers alone, without parsing the payload", async () => {
    t = buildTestApp();
    const res = await deliver(t.app, await signedDelivery("workflow_job", "{this is not json"));
    expect(res.statusCode).toBe(202);
    expect(res.json().data).toMatchObject({ event: "workflow_job", outcome: "ignored" });
    // A rule's event is parsed, so the same body is rejected there.
    expect((await deliver(t.app, await signedDelivery("issue_comment", "{this is not json"))).statusCode).toBe(400);
  });

  it("ignores an edited or deleted comment even if it matches (comment rules default to action created)", async () => {
    t = buildTestApp();
    const edited = commentPayload("/agent run again");
    edited.action = "edited";
    expect((await deliver(t.app, await signedDelivery("issue_comment", edited))).statusCode).toBe(202);
    expect(t.runs.all()).toHaveLength(0);
  });

  it("ignores a matching comment from a user without write access (202, nothing created)", async () => {
    t = buildTestApp();
    for (const association of ["NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN"]) {
      const res = await deliver(
        t.app,
        await signedDelivery("issue_comment", commentPayload("/agent run rm -rf /", { association, login: "stranger" })),
      );
      expect(res.statusCode).toBe(202);
      expect(res.json().data.outcome).toBe("forbidden");
      expect(res.json().message).toMatch(/author_association/);
    }
    expect(t.runs.createCalls).toBe(0);
    expect(await deliveries("forbidden")).toBe(5);
    expect(t.logs()).toContain("Ignored delivery: sender may not trigger agents");
  });

  it("ignores bots unless allowlisted, even with an OWNER association", async () => {
    t = buildTestApp();
    const bot = commentPayload("/agent run loop forever", { login: "some-app[bot]", type: "Bot", association: "OWNER" });
    const res = await deliver(t.app, await signedDelivery("issue_comment", bot));
    expect(res.statusCode).toBe(202);
    expect(res.json().message).toMatch(/bot some-app\[bot\] is not in webhook.allowUsers/);
    const disguised = commentPayload("/agent run", { login: "renovate[bot]", type: "User", association: "MEMBER" });
    expect((await deliver(t.app, await signedDelivery("issue_comment", disguised))).json().data.outcome).toBe("forbidden");
    expect(t.runs.all()).toHaveLength(0);

    await t.close();
    t = buildTestApp({ config: testConfig(DEFAULT_WITH_ALLOW) });
    expect((await deliver(t.app, await signedDelivery("issue_comment", bot))).statusCode).toBe(201);
    // An allowlisted human triggers regardless of association.
    const human = commentPayload("/agent run please", { login: "trusted-outsider", association: "NONE" });
    // Another issue: the bot's run of issue 1 is still active, and a task has one active run at a time.
    (human.issue as { number: number }).number = 2;
    expect((await deliver(t.app, await signedDelivery("issue_comment", human))).statusCode).toBe(201);
    expect(t.runs.all()).toHaveLength(2);
  });

  it("creates a CodeRun for @rex mentions with the agent's identity and model", async () => {
    t = buildTestApp();
    const res = await deliver(
      t.app,
      await signedDelivery("issue_comment", commentPayload("Hey @rex please add retries", { association: "MEMBER" })),
    );
    expect(res.statusCode).toBe(201);
    const run = t.runs.all()[0] as CodeRun;
    expect(run.spec).toMatchObject({ githubApp: "5DLabs-Rex", model: "claude-rex-model" });
    expect(run.metadata.annotations?.["orchestrator.platform/webhook-rule"]).toBe("mention-rex");
    expect(run.spec.promptModification).toContain("please add retries");
  });

  it("creates a CodeRun for issues labeled with the configured label (real issues.labeled payload)", async () => {
    t = buildTestApp();
    const payload = examplePayload("issues", "labeled") as {
      label: { name: string };
      issue: { number: number; title: string; labels: { name: string }[] };
    };
    payload.label.name = "Agent";
    payload.issue.labels = [...payload.issue.labels, { name: "task-17" } as never];
    const res = await deliver(t.app, await signedDelivery("issues", payload));
    expect(res.statusCode).toBe(201);
    const run = t.runs.all()[0] as CodeRun;
    // A task-N label on the issue names the task; otherwise the issue number would.
    expect(run.spec.taskId).toBe(17);
    expect(run.spec.promptModification).toContain(payload.issue.title);
    expect(run.metadata.annotations?.["orchestrator.platform/github-event"]).toBe("issues.labeled");
    // The original label "bug" does not trigger.
    const other = examplePayload("issues", "labeled");
    expect((await deliver(t.app, await signedDelivery("issues", other))).statusCode).toBe(202);
  });

  it("does not let an issue template's label (author labels own issue) bypass the association check", async () => {
    t = buildTestApp();
    const payload = examplePayload("issues", "labeled") as Record<string, unknown> & {
      label: { name: string };
      issue: Record<string, unknown>;
      sender: { login: string };
    };
    payload.label.name = "agent";
    payload.sender = { ...payload.sender, login: "drive-by" };
    payload.issue.user = { login: "drive-by" };
    payload.issue.author_association = "NONE";
    const res = await deliver(t.app, await signedDelivery("issues", payload));
    expect(res.statusCode).toBe(202);
    expect(res.json().data.outcome).toBe("forbidden");
    expect(t.runs.all()).toHaveLength(0);
  });

  it("uses the PermissionChecker when wired: real write permission decides", async () => {
    const perms: Record<string, string> = { writer: "write", reader: "read" };
    t = buildTestApp({ permissions: { permission: async (_repo, login) => perms[login] ?? "none" } });
    // COLLABORATOR with read-only access is refused; NONE-association writer (e.g. via team) is accepted.
    const reader = await deliver(
      t.app,
      await signedDelivery("issue_comment", commentPayload("/agent run a", { login: "reader", association: "COLLABORATOR" })),
    );
    expect(reader.json().data.outcome).toBe("forbidden");
    const writer = await deliver(
      t.app,
      await signedDelivery("issue_comment", commentPayload("/agent run b", { login: "writer", association: "NONE" })),
    );
    expect(writer.statusCode).toBe(201);
  });
});

describe("POST /webhooks/github: refusals", () => {
  it("creates nothing while the task has an active run (202 busy), and hands both kinds of refusal to onRefusal", async () => {
    const refusals: Refusal[] = [];
    t = buildTestApp({ onRefusal: (r) => refusals.push(r) });
    const first = await signedDelivery("issue_comment", commentPayload("/agent run one", { association: "MEMBER", login: "octo-dev" }));
    expect((await deliver(t.app, first)).statusCode).toBe(201);
    const second = await signedDelivery("issue_comment", commentPayload("/agent run two", { association: "MEMBER", login: "octo-dev" }));
    const res = await deliver(t.app, second);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ data: { outcome: "busy", coderun_name: runNameOf(first) } });
    expect(t.runs.all()).toHaveLength(1);
    expect(await deliveries("busy")).toBe(1);
    // The first run finished: the task may run again.
    t.runs.setStatus("CodeRun", runNameOf(first), { phase: "Succeeded" });
    expect(
      (await deliver(t.app, await signedDelivery("issue_comment", commentPayload("/agent run three", { association: "MEMBER" }))))
        .statusCode,
    ).toBe(201);
    const stranger = await signedDelivery("issue_comment", commentPayload("/agent run", { association: "NONE", login: "drive-by" }));
    expect((await deliver(t.app, stranger)).json().data.outcome).toBe("forbidden");
    expect(refusals).toEqual([
      {
        delivery: deliveryKey(second),
        repo: { owner: "Codertocat", repo: "Hello-World" },
        issue: 1,
        login: "octo-dev",
        reason: "already-running",
        detail: `CodeRun ${runNameOf(first)} is still Pending`,
        run: runNameOf(first),
      },
      {
        delivery: deliveryKey(stranger),
        repo: { owner: "Codertocat", repo: "Hello-World" },
        issue: 1,
        login: "drive-by",
        reason: "not-allowed",
        detail: "drive-by has author_association NONE (allowed: OWNER, MEMBER, COLLABORATOR)",
      },
    ]);
  });
});

describe("POST /webhooks/github: the rule is the requester", () => {
  const withRules = (rules: string) => testConfig(`${DEFAULT_CONFIG_YAML}\nauthorization:\n  rules:\n${rules}`);

  it("stamps webhook:<rule> and a digest of the spec it authorized, which the reconciler trusts", async () => {
    t = buildTestApp({
      config: withRules(
        `    - requesters: ["webhook:agent-run"]\n      identities: ["app:5DLabs-Rex"]\n      repositories: ["codertocat/*"]\n`,
      ),
    });
    const d = await signedDelivery("issue_comment", commentPayload("/agent run x"));
    expect((await deliver(t.app, d)).statusCode).toBe(201);
    const run = t.runs.all()[0]!;
    expect(run.metadata.annotations).toMatchObject({
      "orchestrator.platform/requester": "webhook:agent-run",
      "orchestrator.platform/authorized-spec": computeSpecDigest(run.spec),
    });
    expect(requesterOf(run)).toBe("webhook:agent-run");
  });

  it("creates nothing when no rule lets the webhook rule use the repository or identity, and says why", async () => {
    const refusals: Refusal[] = [];
    t = buildTestApp({
      config: withRules(
        `    - requesters: ["webhook:agent-run"]\n      repositories: ["acme/*"]\n    - requesters: ["webhook:mention-rex"]\n      identities: ["user:*"]\n`,
      ),
      onRefusal: (r) => refusals.push(r),
    });
    const other = await signedDelivery("issue_comment", commentPayload("/agent run x"));
    const res = await deliver(t.app, other);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({
      message: expect.stringContaining("webhook:agent-run may not use repository codertocat/hello-world (authorization.rules)"),
      data: { outcome: "forbidden" },
    });
    const mention = await signedDelivery("issue_comment", commentPayload("@rex fix it"));
    expect((await deliver(t.app, mention)).json().message).toContain("webhook:mention-rex may not use GitHub identity app:5DLabs-Rex");
    expect(t.runs.all()).toEqual([]);
    expect(await deliveries("forbidden")).toBe(2);
    expect(refusals.map((r) => r.reason)).toEqual(["not-authorized", "not-authorized"]);
    expect(buildRefusalReply(refusals[0]!)).toContain("ask its administrator");
  });
});

describe("POST /webhooks/github: the rule's active-run quota", () => {
  it("creates nothing past authorization.quotas.maxActiveRuns for the rule, replies once, and counts only unfinished runs", async () => {
    const refusals: Refusal[] = [];
    t = buildTestApp({
      config: testConfig(`${DEFAULT_CONFIG_YAML}\nauthorization:\n  quotas: {maxActiveRuns: 2}\n`),
      onRefusal: (r) => refusals.push(r),
    });
    const on = (issue: number) => {
      const p = commentPayload(`/agent run issue ${issue}`) as { issue: Record<string, unknown> };
      p.issue = { ...p.issue, number: issue };
      return signedDelivery("issue_comment", p);
    };
    const first = await on(11);
    expect((await deliver(t.app, first)).statusCode).toBe(201);
    expect((await deliver(t.app, await on(12))).statusCode).toBe(201);
    const third = await deliver(t.app, await on(13));
    expect(third.statusCode).toBe(202);
    expect(third.json()).toMatchObject({
      message: "ignored: this trigger already has 2 runs that have not finished (authorization.quotas.maxActiveRuns allows 2)",
      data: { outcome: "quota" },
    });
    expect(t.runs.all()).toHaveLength(2);
    expect(refusals.map((r) => [r.reason, r.issue])).toEqual([["over-quota", 13]]);
    expect(buildRefusalReply(refusals[0]!)).toContain("Wait for one of them to finish, then ask again.");
    t.runs.setStatus("CodeRun", runNameOf(first), { phase: "Succeeded" });
    expect((await deliver(t.app, await on(13))).statusCode).toBe(201);
  });
});

describe("POST /webhooks/github: duplicates and the Kubernetes API", () => {
  it("creates one CodeRun for a delivery sent twice, also after a restart (AlreadyExists)", async () => {
    t = buildTestApp();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run once"));
    expect((await deliver(t.app, d)).statusCode).toBe(201);
    const again = await deliver(t.app, d);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({
      message: "duplicate delivery",
      data: { outcome: "duplicate", coderun_name: runNameOf(d) },
    });
    expect(t.runs.createCalls).toBe(1); // answered from the in-memory LRU
    // A new process has an empty LRU: the deterministic name makes the API server reject it.
    const store = t.runs;
    await t.close();
    t = buildTestApp({ runs: store });
    const afterRestart = await deliver(t.app, d);
    expect(afterRestart.statusCode).toBe(200);
    expect(afterRestart.json().data.outcome).toBe("duplicate");
    expect(store.all()).toHaveLength(1);
    expect(await deliveries("duplicate")).toBe(1);
  });

  it("creates one CodeRun for a captured signed body replayed under new delivery ids, also after a restart", async () => {
    t = buildTestApp();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run replayed"));
    const first = await deliver(t.app, d);
    expect(first.statusCode).toBe(201);
    for (const replay of [withNewDeliveryId(d), withNewDeliveryId(d)]) {
      const res = await deliver(t.app, replay);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ data: { outcome: "duplicate", delivery: replay.id, coderun_name: runNameOf(d) } });
    }
    const store = t.runs;
    await t.close();
    t = buildTestApp({ runs: store });
    expect((await deliver(t.app, withNewDeliveryId(d))).json().data).toMatchObject({ outcome: "duplicate", coderun_name: runNameOf(d) });
    expect(store.all().map((r) => r.metadata.name)).toEqual([runNameOf(d)]);
    // The run records the delivery that created it.
    expect(store.all()[0]!.metadata.annotations?.["orchestrator.platform/github-delivery"]).toBe(d.id);
  });

  it("creates one CodeRun for the same delivery arriving concurrently", async () => {
    t = buildTestApp();
    t.runs.delayMs = 20;
    const d = await signedDelivery("issue_comment", commentPayload("/agent run concurrently"));
    const results = await Promise.all(Array.from({ length: 6 }, () => deliver(t.app, d)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(t.runs.all()).toHaveLength(1);
  });

  it("answers 503 when the Kubernetes API is unreachable, and a redelivery then succeeds", async () => {
    t = buildTestApp();
    const d = await signedDelivery("issue_comment", commentPayload("/agent run later"));
    t.runs.failWith("Unavailable", "connect ECONNREFUSED");
    const res = await deliver(t.app, d);
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toMatch(/Redeliver/);
    expect(await deliveries("error")).toBe(1);
    t.runs.failWith(undefined);
    expect((await deliver(t.app, d)).statusCode).toBe(201);
  });

  it("acknowledges with 202 when the API server is slower than webhook.ackTimeoutMs and finishes in the background", async () => {
    t = buildTestApp({ config: testConfig(DEFAULT_WITH_FAST_ACK) });
    // Each API call takes 1.5 s, far beyond the 100 ms acknowledgement timeout.
    t.runs.delayMs = 1_500;
    const d = await signedDelivery("issue_comment", commentPayload("/agent run slowly"));
    const res = await deliver(t.app, d);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ data: { outcome: "accepted", coderun_name: runNameOf(d) } });
    // Acknowledged before the run existed: two slow API calls go on in the background (the active-run check, then the create).
    expect(t.runs.all()).toHaveLength(0);
    await expect.poll(() => t.runs.all().length, { timeout: 10_000, interval: 50 }).toBe(1);
    expect(await deliveries("created")).toBe(1);
    expect(t.logs()).toContain("Created CodeRun after acknowledging delivery");
    // A redelivery meanwhile is a duplicate.
    t.runs.delayMs = 0;
    expect((await deliver(t.app, d)).statusCode).toBe(200);
  });
});

describe("delivery listener (onDelivery, e.g. Play wakeups)", () => {
  it("is told about verified deliveries of the events it wants, before rules, and never about forged ones", async () => {
    const seenBy: [string, string][] = [];
    t = buildTestApp({
      onDelivery: (event, _payload, delivery) => void seenBy.push([event, delivery]),
      deliveryEvents: ["pull_request", "issue_comment"],
    });
    const pr = await signedDelivery("pull_request", examplePayload("pull_request", "opened"));
    // pull_request has no rule: it is parsed for the listener, then ignored.
    expect((await deliver(t.app, pr)).statusCode).toBe(202);
    const comment = await signedDelivery("issue_comment", commentPayload("/agent run x"));
    expect((await deliver(t.app, comment)).statusCode).toBe(201);
    expect((await deliver(t.app, comment)).statusCode).toBe(200); // duplicate: not told again
    expect((await deliver(t.app, await signedDelivery("push", examplePayload("push")))).statusCode).toBe(202); // not wanted
    expect(
      (await deliver(t.app, await signedDelivery("pull_request", examplePayload("pull_request", "opened"), { secret: "forged" })))
        .statusCode,
    ).toBe(401);
    // A replay of the pull_request body under a new delivery id is the same delivery to the listener.
    expect((await deliver(t.app, withNewDeliveryId(pr))).statusCode).toBe(202);
    expect(seenBy).toEqual([
      ["pull_request", deliveryKey(pr)],
      ["issue_comment", deliveryKey(comment)],
      ["pull_request", deliveryKey(pr)],
    ]);
  });

  it("does not fail or delay the delivery when the listener throws or hangs", async () => {
    t = buildTestApp({
      config: testConfig(DEFAULT_WITH_FAST_ACK),
      onDelivery: (event) => {
        if (event === "issues") throw new Error("listener broke");
        return new Promise(() => undefined);
      },
    });
    expect((await deliver(t.app, await signedDelivery("issues", examplePayload("issues", "opened")))).statusCode).toBe(202);
    expect(t.logs()).toContain("Delivery listener failed");
    const started = Date.now();
    expect((await deliver(t.app, await signedDelivery("issue_comment", commentPayload("/agent run y")))).statusCode).toBe(201);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("logging", () => {
  it("logs one child logger per delivery and never a secret, signature or token", async () => {
    t = buildTestApp();
    const good = await signedDelivery("issue_comment", commentPayload("/agent run logged"));
    await deliver(t.app, good);
    const forged = await signedDelivery("issue_comment", commentPayload("/agent run forged"), { secret: "attacker-secret" });
    await deliver(t.app, forged);
    await deliver(t.app, await signedDelivery("issue_comment", commentPayload("/agent run no", { association: "NONE" })));
    await t.app.inject({ method: "GET", url: "/api/v1/runs", headers: { authorization: "Bearer some-guess" } });
    const logs = t.logs();
    const created = t.records().find((r) => r.msg === "Created CodeRun from webhook delivery");
    expect(created).toMatchObject({ delivery: good.id, event: "issue_comment", action: "created", coderun: runNameOf(good) });
    expect(logs).toContain("Rejected webhook delivery with a missing or invalid signature");
    for (const secret of [WEBHOOK_SECRET, WEBHOOK_SECRET_PREVIOUS, "attacker-secret", "some-guess"]) expect(logs).not.toContain(secret);
    for (const d of [good, forged]) {
      const sig = d.headers["x-hub-signature-256"]!;
      expect(logs).not.toContain(sig);
      expect(logs).not.toContain(sig.slice("sha256=".length));
    }
  });
});

const withWebhook = (extra: string) => `
namespace: orchestrator
webhook:
${extra}
  defaults:
    githubApp: 5DLabs-Rex
  rules:
    - name: agent-run
      event: issue_comment
      commentPattern: '^/agent run\\b(?<prompt>.*)'
`;
const DEFAULT_WITH_LIMIT = withWebhook("  maxBodyBytes: 4096");
const DEFAULT_WITH_ALLOW = withWebhook('  allowUsers: ["some-app[bot]", "Trusted-Outsider"]');
const DEFAULT_WITH_FAST_ACK = withWebhook("  ackTimeoutMs: 100");
