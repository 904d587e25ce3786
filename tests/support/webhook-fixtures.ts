/**
 * Test support for the HTTP service and the webhook intake: a test app over the in-memory
 * RunStore with captured logs, real GitHub example payloads (@octokit/webhooks-examples) and
 * signed deliveries (@octokit/webhooks-methods sign()).
 */
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import examples from "@octokit/webhooks-examples/api.github.com/index.json" with { type: "json" };
import { sign } from "@octokit/webhooks-methods";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { parseConfig } from "../../src/config/config.js";
import type { Config } from "../../src/config/schema.js";
import { buildApp, createAuthenticator, type AppDeps, type Authenticator } from "../../src/http/app.js";
import { createLogger } from "../../src/observability/logger.js";
import { createMetrics, type Metrics } from "../../src/observability/metrics.js";
import { signedBodyDigest, webhookRunName } from "../../src/webhook/rules.js";
import { createMemoryRunStore, type MemoryRunStore } from "./memory-run-store.js";

export const API_TOKEN = "test-api-token-0123456789abcdef";
export const WEBHOOK_SECRET = "webhook-secret-current-abcdef";
export const WEBHOOK_SECRET_PREVIOUS = "webhook-secret-previous-123456";

/** A config YAML with the two rules most tests use. */
export const DEFAULT_CONFIG_YAML = `
namespace: orchestrator
webhook:
  defaults:
    githubApp: 5DLabs-Rex
    docsProjectDirectory: docs
  rules:
    - name: agent-run
      event: issue_comment
      actions: [created]
      commentPattern: '^/agent run\\b(?<prompt>.*)'
    - name: mention-rex
      event: issue_comment
      commentPattern: '@rex\\b(?<prompt>.*)'
      run:
        agent: rex
    - name: label
      event: issues
      label: agent
agents:
  rex:
    githubApp: 5DLabs-Rex
    model: claude-rex-model
`;

export function testConfig(yaml = DEFAULT_CONFIG_YAML, env: Record<string, string> = {}): Config {
  return parseConfig(yaml, {
    ORCHESTRATOR_API_TOKENS: API_TOKEN,
    GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITHUB_WEBHOOK_SECRET_PREVIOUS: WEBHOOK_SECRET_PREVIOUS,
    ...env,
  });
}

export interface TestApp {
  app: FastifyInstance;
  runs: MemoryRunStore;
  metrics: Metrics;
  config: Config;
  /** Every log line written so far (raw JSON text). */
  logs: () => string;
  /** Parsed log records. */
  records: () => Record<string, unknown>[];
  close: () => Promise<void>;
}

export interface TestAppOptions {
  config?: Config;
  runs?: MemoryRunStore;
  auth?: Authenticator;
  readiness?: AppDeps["readiness"];
  permissions?: AppDeps["permissions"];
  onDelivery?: AppDeps["onDelivery"];
  deliveryEvents?: AppDeps["deliveryEvents"];
  routes?: AppDeps["routes"];
  onRefusal?: AppDeps["onRefusal"];
  plays?: AppDeps["plays"];
  logLevel?: string;
}

export const FIXED_NOW = new Date("2025-06-01T12:00:00.000Z");

export function buildTestApp(opts: TestAppOptions = {}): TestApp {
  const config = opts.config ?? testConfig();
  const runs = opts.runs ?? createMemoryRunStore(config.namespace, { now: () => FIXED_NOW });
  const metrics = createMetrics();
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const logger = createLogger({ level: opts.logLevel ?? "debug", destination });
  let counter = 0;
  const app = buildApp({
    config,
    runs,
    auth: opts.auth ?? createAuthenticator({ tokens: config.apiTokens }),
    readiness: opts.readiness ?? (async () => ({ ready: true, checks: { informers: true, apiServer: true } })),
    metrics,
    logger,
    clock: { now: () => FIXED_NOW },
    randomHex: () => (counter++).toString(16).padStart(6, "0"),
    version: "1.2.3-test",
    permissions: opts.permissions,
    onDelivery: opts.onDelivery,
    deliveryEvents: opts.deliveryEvents,
    routes: opts.routes,
    onRefusal: opts.onRefusal,
    plays: opts.plays,
  });
  const logs = () => chunks.join("");
  return {
    app,
    runs,
    metrics,
    config,
    logs,
    records: () =>
      logs()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    close: () => app.close(),
  };
}

export const authHeader = { authorization: `Bearer ${API_TOKEN}` };

type Example = { name: string; examples: Record<string, unknown>[] };

/** A real example payload from @octokit/webhooks-examples (deep copy). */
export function examplePayload(event: string, action?: string): Record<string, unknown> {
  const def = (examples as unknown as Example[]).find((e) => e.name === event);
  const ex = def?.examples.find((x) => action === undefined || x.action === action);
  if (!ex) throw new Error(`no example for ${event}${action ? `.${action}` : ""}`);
  return structuredClone(ex);
}

/** issue_comment.created from the examples with the given comment text, author and association. */
export function commentPayload(
  body: string,
  opts: { login?: string; association?: string; type?: "User" | "Bot" } = {},
): Record<string, unknown> {
  const p = examplePayload("issue_comment", "created") as { comment: Record<string, unknown>; sender: Record<string, unknown> };
  const login = opts.login ?? (p.sender.login as string);
  p.comment.body = body;
  p.comment.author_association = opts.association ?? "OWNER";
  p.comment.user = { ...(p.comment.user as object), login, type: opts.type ?? "User" };
  p.sender = { ...p.sender, login, type: opts.type ?? "User" };
  return p;
}

export interface Delivery {
  event: string;
  payload: string;
  headers: Record<string, string>;
  id: string;
}

/** A delivery signed like GitHub signs it (X-Hub-Signature-256 over the exact body). */
export async function signedDelivery(event: string, payload: unknown, opts: { secret?: string; id?: string } = {}): Promise<Delivery> {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  const id = opts.id ?? randomUUID();
  return {
    event,
    payload: text,
    id,
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": id,
      "x-hub-signature-256": await sign(opts.secret ?? WEBHOOK_SECRET, text),
      "user-agent": "GitHub-Hookshot/test",
    },
  };
}

/** The CodeRun name a delivery's signed body maps to (whatever its X-GitHub-Delivery). */
export function runNameOf(d: Delivery): string {
  return webhookRunName(signedBodyDigest(d.payload));
}

/** The same signed body again under a new X-GitHub-Delivery: a replay, or GitHub's redelivery. */
export function withNewDeliveryId(d: Delivery, id = randomUUID()): Delivery {
  return { ...d, id, headers: { ...d.headers, "x-github-delivery": id } };
}

export function deliver(app: FastifyInstance, d: Delivery, url = "/webhooks/github"): Promise<LightMyRequestResponse> {
  return app.inject({ method: "POST", url, payload: d.payload, headers: d.headers });
}

/** The value of one sample of a counter in the registry's text output. */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name) as
    { values: { value: number; labels: Record<string, string | number> }[] } | undefined;
  const sample = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val));
  return sample?.value ?? 0;
}
