/**
 * A local GitHub REST API for tests (node:http on 127.0.0.1). It implements a small route table
 * (repositories, pull requests and their commits/reviews/review comments, labels and label
 * events, issue comments, check runs, GitHub App installation tokens) and checks
 * EVERY request against GitHub's published OpenAPI description (@octokit/openapi,
 * api.github.com.json): the operation must exist, path and query parameters must match their
 * schemas, required parameters must be present, and the JSON body must satisfy the request body
 * schema. Invalid requests are answered like GitHub (404 / 422) and recorded in `violations`, so
 * tests can assert that a client speaks the real API. Recorded state (pulls, labels, comments,
 * tokens, requests) is public for assertions; `route()` adds or replaces handlers.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import type http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { createTestServer, type TlsFiles } from "./tls.js";

// ---- OpenAPI description -----------------------------------------------------------------------

type Schema = Record<string, unknown>;
interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  paramNames: string[];
  operationId: string;
  parameters: Schema[];
  requestBody: Schema | undefined;
}
interface Spec {
  root: Schema;
  operations: Operation[];
}

let cachedSpec: Spec | undefined;

/** Loads (once per process) GitHub's OpenAPI description and indexes its operations. */
export function loadGitHubSpec(): Spec {
  if (cachedSpec) return cachedSpec;
  const require = createRequire(import.meta.url);
  const file = require.resolve("@octokit/openapi/generated/api.github.com.json");
  const root = JSON.parse(fs.readFileSync(file, "utf8")) as Schema;
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries(root.paths as Record<string, Record<string, Schema>>)) {
    const paramNames: string[] = [];
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{([^}]+)\\?\}/g, (_m, name: string) => {
      paramNames.push(name);
      return "([^/]+)";
    });
    for (const method of ["get", "post", "put", "patch", "delete", "head"]) {
      const op = item[method];
      if (!op) continue;
      operations.push({
        method: method.toUpperCase(),
        template,
        regex: new RegExp(`^${pattern}$`),
        paramNames,
        operationId: String(op.operationId ?? `${method} ${template}`),
        parameters: [...((item.parameters as unknown as Schema[]) ?? []), ...((op.parameters as unknown as Schema[]) ?? [])],
        requestBody: op.requestBody as Schema | undefined,
      });
    }
  }
  // Literal segments win over parameters (/repos/{o}/{r}/pulls/comments vs /pulls/{pull_number}).
  operations.sort((a, b) => a.template.split("{").length - b.template.split("{").length);
  cachedSpec = { root, operations };
  return cachedSpec;
}

function deref(root: Schema, schema: Schema | undefined): Schema | undefined {
  let s = schema;
  for (let i = 0; s && typeof s.$ref === "string" && i < 32; i++) {
    const ref: string = s.$ref;
    s = ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>((node, key) => (node as Schema)?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], root) as Schema;
  }
  return s;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** A small JSON Schema (OpenAPI 3.0 dialect) validator: enough for GitHub's request schemas. */
export function validateSchema(root: Schema, schemaIn: Schema | undefined, value: unknown, at: string, errors: string[]): void {
  const schema = deref(root, schemaIn);
  if (!schema) return;
  if (value === null && schema.nullable === true) return;
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf as Schema[]) validateSchema(root, s, value, at, errors);
  for (const key of ["oneOf", "anyOf"] as const) {
    const alternatives = schema[key] as Schema[] | undefined;
    if (!Array.isArray(alternatives)) continue;
    const passing = alternatives.filter((s) => {
      const e: string[] = [];
      validateSchema(root, s, value, at, e);
      return e.length === 0;
    }).length;
    if (passing === 0 || (key === "oneOf" && passing > 1))
      errors.push(
        `${at}: must match ${key === "oneOf" ? "exactly one" : "at least one"} of ${alternatives.length} schemas (matched ${passing})`,
      );
  }
  const actual = typeOf(value);
  const type = schema.type as string | string[] | undefined;
  if (type !== undefined) {
    const allowed = Array.isArray(type) ? type : [type];
    const ok = allowed.some((t) => t === actual || (t === "number" && actual === "integer"));
    if (!ok) {
      errors.push(`${at}: must be ${allowed.join(" or ")}, got ${actual}`);
      return;
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${at}: must be one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: below ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errors.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => validateSchema(root, schema.items as Schema, v, `${at}[${i}]`, errors));
  }
  if (actual === "object") {
    const obj = value as Record<string, unknown>;
    const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const name of (schema.required as string[] | undefined) ?? []) {
      if (!(name in obj)) errors.push(`${at}: missing required property "${name}"`);
    }
    for (const [name, v] of Object.entries(obj)) {
      if (properties[name]) validateSchema(root, properties[name], v, `${at}.${name}`, errors);
      else if (schema.additionalProperties === false) errors.push(`${at}: unknown property "${name}"`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === "object")
        validateSchema(root, schema.additionalProperties as Schema, v, `${at}.${name}`, errors);
    }
  }
}

function coerceParam(raw: string, schema: Schema | undefined): unknown {
  const type = schema?.type;
  if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (type === "boolean" && (raw === "true" || raw === "false")) return raw === "true";
  return raw;
}

export interface MatchedOperation {
  operation: Operation;
  pathParams: Record<string, string>;
}

export function matchOperation(method: string, pathname: string): MatchedOperation | null {
  const spec = loadGitHubSpec();
  for (const operation of spec.operations) {
    if (operation.method !== method) continue;
    const m = operation.regex.exec(pathname);
    if (!m) continue;
    const pathParams: Record<string, string> = {};
    operation.paramNames.forEach((n, i) => (pathParams[n] = decodeURIComponent(m[i + 1]!)));
    return { operation, pathParams };
  }
  return null;
}

/** Everything wrong with a request according to the OpenAPI description. */
export function checkRequest(matched: MatchedOperation, query: URLSearchParams, body: unknown, hasBody: boolean): string[] {
  const { root } = loadGitHubSpec();
  const errors: string[] = [];
  const declared = new Set<string>();
  for (const p of matched.operation.parameters.map((x) => deref(root, x)!)) {
    const name = String(p.name);
    const where = String(p.in);
    const schema = p.schema as Schema | undefined;
    if (where === "path") {
      const raw = matched.pathParams[name];
      if (raw === undefined) errors.push(`path parameter ${name} missing`);
      else validateSchema(root, schema, coerceParam(raw, deref(root, schema)), `path.${name}`, errors);
    } else if (where === "query") {
      declared.add(name);
      const raw = query.get(name);
      if (raw === null) {
        if (p.required === true) errors.push(`query parameter ${name} is required`);
      } else {
        validateSchema(root, schema, coerceParam(raw, deref(root, schema)), `query.${name}`, errors);
      }
    }
  }
  for (const name of new Set(query.keys()))
    if (!declared.has(name)) errors.push(`query parameter ${name} is not part of ${matched.operation.operationId}`);
  const requestBody = deref(root, matched.operation.requestBody);
  if (requestBody) {
    const schema = (requestBody.content as Record<string, Schema> | undefined)?.["application/json"]?.schema as Schema | undefined;
    if (!hasBody) {
      if (requestBody.required === true) errors.push("request body is required");
    } else if (schema) {
      validateSchema(root, schema, body, "body", errors);
    }
  } else if (hasBody && body !== undefined && !(typeof body === "object" && body !== null && Object.keys(body).length === 0)) {
    errors.push(`${matched.operation.operationId} takes no request body`);
  }
  return errors;
}

// ---- state and routes --------------------------------------------------------------------------

export interface PullRecord {
  owner: string;
  repo: string;
  number: number;
  title: string;
  body: string | null;
  head: string;
  base: string;
  state: "open" | "closed";
  draft: boolean;
  labels: string[];
  html_url: string;
  createdBy: string;
  /** Head commit (default 40 zeros) and the PR's commits, oldest first. */
  headSha?: string;
  commits?: CommitRecord[];
  merged?: boolean;
  mergedAt?: string;
}

export interface CommitRecord {
  sha: string;
  /** Logins linked to the commit's author and committer (null = unlinked email). */
  author: string | null;
  committer: string | null;
  message?: string;
}

export interface CommentRecord {
  owner: string;
  repo: string;
  issueNumber: number;
  id: number;
  body: string;
  /** Author login (the caller's login from `users`, else "unknown"). */
  user?: string;
  association?: string;
}

export interface ReviewRecord {
  owner: string;
  repo: string;
  pullNumber: number;
  id: number;
  user: string;
  /** APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED */
  state: string;
  body: string;
  commitId: string;
  association?: string;
  submittedAt: string;
}

export interface ReviewCommentRecord {
  owner: string;
  repo: string;
  pullNumber: number;
  id: number;
  reviewId: number | null;
  user: string;
  body: string;
  path: string;
  line: number | null;
  commitId: string;
  association?: string;
}

export interface IssueEventRecord {
  owner: string;
  repo: string;
  issueNumber: number;
  id: number;
  event: "labeled" | "unlabeled" | "merged" | "closed";
  label?: string;
  actor: string;
  createdAt: string;
}

export interface CheckRunRecord {
  owner: string;
  repo: string;
  id: number;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  externalId: string | null;
  /** Slug of the App that owns it (the caller's login for token callers). */
  app: string;
  detailsUrl: string | null;
  output: { title?: string; summary?: string; text?: string };
  actions: unknown[];
  startedAt: string | null;
  completedAt: string | null;
}

export interface ReactionRecord {
  owner: string;
  repo: string;
  /** The comment reacted to, or undefined for a reaction on the issue / pull request itself. */
  commentId?: number;
  issueNumber?: number;
  id: number;
  content: string;
  user: string;
}

export interface Violation {
  method: string;
  path: string;
  operationId: string | null;
  errors: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  operationId: string | null;
  status: number;
  /** Who called: the token, "jwt:<appId>", or null when anonymous. */
  caller: string | null;
}

export interface AppRegistration {
  appId: string;
  /** PEM public key the App's JWTs must verify against. */
  publicKey: string;
  installationId: number;
  /** Account the App is installed on; repos of this owner resolve to the installation. */
  account: string;
}

export interface GitHubState {
  pulls: PullRecord[];
  comments: CommentRecord[];
  violations: Violation[];
  requests: RecordedRequest[];
  /** Installation tokens minted, by installation id, with the repositories the request scoped them to (undefined = all). */
  installationTokens: { installationId: number; token: string; repositories?: string[] }[];
  /** Valid tokens (user PATs and minted installation tokens). */
  tokens: Set<string>;
  /** Existing repositories ("owner/repo"); empty = every repository exists. */
  repos: Set<string>;
  apps: AppRegistration[];
  nextNumber: Map<string, number>;
  reviews: ReviewRecord[];
  reviewComments: ReviewCommentRecord[];
  issueEvents: IssueEventRecord[];
  checkRuns: CheckRunRecord[];
  /** Reactions; GitHub keeps one per user, content and subject (a repeated POST answers 200). */
  reactions: ReactionRecord[];
  /** Logins of token callers (token → login), for authorship of what they write. */
  users: Map<string, string>;
  /** Last id handed out by nextId(): ids of comments, reviews, events and check runs rise together, like GitHub's. */
  lastId: number;
}

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  caller: { kind: "token"; token: string } | { kind: "app"; app: AppRegistration } | null;
  state: GitHubState;
  server: GitHubServer;
}

export interface RouteResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type RouteHandler = (ctx: RouteContext) => RouteResponse | Promise<RouteResponse>;

export interface GitHubServerOptions {
  /** Accepted user tokens. */
  tokens?: string[];
  repos?: string[];
  apps?: AppRegistration[];
  /** Base of html_url links (default https://github.com). */
  htmlBaseUrl?: string;
  /** Whether a branch exists (for creating pull requests); default: every branch exists. */
  branchExists?: (owner: string, repo: string, branch: string) => boolean;
  /** Logins of token callers (token → login); a token listed here is also accepted. */
  users?: Record<string, string>;
  /** Address to listen on (default 127.0.0.1; pods on a real node reach the host's IP). */
  host?: string;
  /** Serve HTTPS with this certificate (the real node's pods send credentials only over HTTPS). */
  tls?: TlsFiles;
}

export interface GitHubServer {
  url: string;
  state: GitHubState;
  /** Adds or replaces the handler of an OpenAPI path template, e.g. ("GET", "/repos/{owner}/{repo}/pulls"). */
  route(method: string, template: string, handler: RouteHandler): void;
  /**
   * The next `count` requests matching method+template fail with `status` (default 502), and
   * optionally GitHub's rate-limit message and headers (retry-after, x-ratelimit-*).
   */
  failNext(
    method: string,
    template: string,
    count: number,
    status?: number,
    response?: { message?: string; headers?: Record<string, string> },
  ): void;
  pullsFor(owner: string, repo: string): PullRecord[];
  /** A fresh id, larger than every id handed out before (for state added by tests). */
  nextId(): number;
  close(): Promise<void>;
}

const DOCS = "https://docs.github.com/rest";
const notFound = (): RouteResponse => ({ status: 404, body: { message: "Not Found", documentation_url: DOCS, status: "404" } });
const validationFailed = (errors: unknown[], message = "Validation Failed"): RouteResponse => ({
  status: 422,
  body: { message, errors, documentation_url: DOCS, status: "422" },
});

function repoKey(owner: string, repo: string): string {
  return `${owner}/${repo}`.toLowerCase();
}

const ZERO_SHA = "0".repeat(40);

function labelJson(name: string, i: number) {
  return { id: i + 1, node_id: `L${i}`, url: "", name, description: null, color: "ededed", default: false };
}

function userJson(login: string) {
  return { login, id: 1, type: login.endsWith("[bot]") ? "Bot" : "User" };
}

function pullJson(p: PullRecord, apiUrl: string): unknown {
  return {
    url: `${apiUrl}/repos/${p.owner}/${p.repo}/pulls/${p.number}`,
    id: 1000 + p.number,
    number: p.number,
    state: p.state,
    title: p.title,
    body: p.body,
    draft: p.draft,
    html_url: p.html_url,
    labels: p.labels.map(labelJson),
    head: {
      ref: p.head,
      label: `${p.owner}:${p.head}`,
      sha: p.headSha ?? ZERO_SHA,
      repo: { name: p.repo, full_name: `${p.owner}/${p.repo}` },
    },
    base: { ref: p.base, label: `${p.owner}:${p.base}`, sha: ZERO_SHA, repo: { name: p.repo, full_name: `${p.owner}/${p.repo}` } },
    user: { login: p.createdBy },
    merged: p.merged ?? false,
    merged_at: p.mergedAt ?? null,
  };
}

function issueJson(p: PullRecord, apiUrl: string): unknown {
  return {
    id: 1000 + p.number,
    number: p.number,
    state: p.state,
    title: p.title,
    body: p.body,
    html_url: p.html_url,
    labels: p.labels.map(labelJson),
    user: userJson(p.createdBy),
    pull_request: { url: `${apiUrl}/repos/${p.owner}/${p.repo}/pulls/${p.number}`, html_url: p.html_url, merged_at: p.mergedAt ?? null },
  };
}

function checkRunJson(c: CheckRunRecord, htmlBase: string): unknown {
  return {
    id: c.id,
    name: c.name,
    head_sha: c.headSha,
    status: c.status,
    conclusion: c.conclusion,
    external_id: c.externalId,
    details_url: c.detailsUrl,
    html_url: `${htmlBase}/${c.owner}/${c.repo}/runs/${c.id}`,
    started_at: c.startedAt,
    completed_at: c.completedAt,
    output: { title: c.output.title ?? null, summary: c.output.summary ?? null, text: c.output.text ?? null, annotations_count: 0 },
    app: { slug: c.app, name: c.app },
    pull_requests: [],
  };
}

function verifyJwt(token: string, apps: AppRegistration[]): AppRegistration | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  let payload: { iss?: unknown; exp?: unknown; iat?: unknown };
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as typeof payload;
  } catch {
    return null;
  }
  const app = apps.find((a) => String(a.appId) === String(payload.iss));
  if (!app) return null;
  const ok = crypto.verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), app.publicKey, Buffer.from(parts[2]!, "base64url"));
  const now = Math.floor(Date.now() / 1000);
  if (!ok || typeof payload.exp !== "number" || payload.exp < now || payload.exp - now > 660) return null;
  return app;
}

function defaultRoutes(options: GitHubServerOptions, htmlBase: string): [string, string, RouteHandler][] {
  const repoExists = (s: GitHubState, owner: string, repo: string) => s.repos.size === 0 || s.repos.has(repoKey(owner, repo));
  const callerLogin = (ctx: RouteContext): string =>
    ctx.caller?.kind === "token"
      ? (ctx.state.users.get(ctx.caller.token) ?? "unknown")
      : ctx.caller?.kind === "app"
        ? `app-${ctx.caller.app.appId}[bot]`
        : "unknown";
  const sameRepo = (x: { owner: string; repo: string }, ctx: RouteContext) =>
    repoKey(x.owner, x.repo) === repoKey(ctx.params.owner!, ctx.params.repo!);
  const commentJson = (c: CommentRecord) => ({
    id: c.id,
    node_id: `C${c.id}`,
    url: "",
    body: c.body,
    user: userJson(c.user ?? "unknown"),
    author_association: c.association ?? "NONE",
    html_url: `${htmlBase}/${c.owner}/${c.repo}/issues/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: "",
    created_at: new Date(0).toISOString(),
    updated_at: new Date(0).toISOString(),
  });
  const react = (ctx: RouteContext, subject: { commentId?: number; issueNumber?: number }): RouteResponse => {
    const denied = requireToken(ctx);
    if (denied) return denied;
    const content = (ctx.body as { content: string }).content;
    const user = callerLogin(ctx);
    const same = (r: ReactionRecord) =>
      sameRepo(r, ctx) &&
      r.commentId === subject.commentId &&
      r.issueNumber === subject.issueNumber &&
      r.content === content &&
      r.user === user;
    const existing = ctx.state.reactions.find(same);
    const record = existing ?? { owner: ctx.params.owner!, repo: ctx.params.repo!, ...subject, id: ctx.server.nextId(), content, user };
    if (!existing) ctx.state.reactions.push(record);
    return {
      status: existing ? 200 : 201,
      body: { id: record.id, node_id: `R${record.id}`, user: userJson(user), content, created_at: new Date(0).toISOString() },
    };
  };
  const requireToken = (ctx: RouteContext): RouteResponse | null =>
    ctx.caller?.kind === "token"
      ? null
      : { status: 401, body: { message: "Requires authentication", documentation_url: DOCS, status: "401" } };
  return [
    [
      "GET",
      "/repos/{owner}/{repo}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const { owner, repo } = ctx.params as { owner: string; repo: string };
        if (!repoExists(ctx.state, owner, repo)) return notFound();
        return {
          status: 200,
          body: {
            id: 1,
            name: repo,
            full_name: `${owner}/${repo}`,
            owner: { login: owner },
            private: true,
            default_branch: "main",
            html_url: `${htmlBase}/${owner}/${repo}`,
            permissions: { admin: false, push: true, pull: true },
          },
        };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/pulls",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const { owner, repo } = ctx.params as { owner: string; repo: string };
        if (!repoExists(ctx.state, owner, repo)) return notFound();
        const state = ctx.query.get("state") ?? "open";
        const head = ctx.query.get("head");
        const base = ctx.query.get("base");
        const list = ctx.server
          .pullsFor(owner, repo)
          .filter(
            (p) =>
              (state === "all" || p.state === state) &&
              (!head || `${p.owner}:${p.head}`.toLowerCase() === head.toLowerCase() || (!head.includes(":") && p.head === head)) &&
              (!base || p.base === base),
          );
        return { status: 200, body: list.map((p) => pullJson(p, ctx.server.url)) };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/pulls/{pull_number}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.pull_number));
        return p ? { status: 200, body: pullJson(p, ctx.server.url) } : notFound();
      },
    ],
    [
      "PATCH",
      "/repos/{owner}/{repo}/pulls/{pull_number}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.pull_number));
        if (!p) return notFound();
        const body = ctx.body as { title?: string; body?: string; state?: "open" | "closed"; base?: string };
        if (body.title !== undefined) p.title = body.title;
        if (body.body !== undefined) p.body = body.body;
        if (body.state !== undefined) p.state = body.state;
        if (body.base !== undefined) p.base = body.base;
        return { status: 200, body: pullJson(p, ctx.server.url) };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/pulls",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const { owner, repo } = ctx.params as { owner: string; repo: string };
        if (!repoExists(ctx.state, owner, repo)) return notFound();
        const body = ctx.body as { title?: string; head: string; base: string; body?: string; draft?: boolean };
        const head = body.head.includes(":") ? body.head.split(":")[1]! : body.head;
        const branchExists = options.branchExists ?? (() => true);
        if (!branchExists(owner, repo, head)) return validationFailed([{ resource: "PullRequest", field: "head", code: "invalid" }]);
        if (!branchExists(owner, repo, body.base)) return validationFailed([{ resource: "PullRequest", field: "base", code: "invalid" }]);
        if (ctx.server.pullsFor(owner, repo).some((p) => p.state === "open" && p.head === head && p.base === body.base)) {
          return validationFailed([
            { resource: "PullRequest", code: "custom", message: `A pull request already exists for ${owner}:${head}.` },
          ]);
        }
        const key = repoKey(owner, repo);
        const number = ctx.state.nextNumber.get(key) ?? 1;
        ctx.state.nextNumber.set(key, number + 1);
        const pull: PullRecord = {
          owner,
          repo,
          number,
          title: body.title ?? "",
          body: body.body ?? null,
          head,
          base: body.base,
          state: "open",
          draft: body.draft ?? false,
          labels: [],
          html_url: `${htmlBase}/${owner}/${repo}/pull/${number}`,
          createdBy: callerLogin(ctx),
        };
        ctx.state.pulls.push(pull);
        return { status: 201, body: pullJson(pull, ctx.server.url) };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/issues/{issue_number}/labels",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.issue_number));
        if (!p) return notFound();
        const raw = ctx.body as { labels?: unknown[] } | unknown[] | string;
        const items = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw : (raw.labels ?? []);
        for (const item of items) {
          const name = typeof item === "string" ? item : String((item as { name: string }).name);
          if (!p.labels.includes(name)) {
            p.labels.push(name);
            ctx.state.issueEvents.push({
              owner: p.owner,
              repo: p.repo,
              issueNumber: p.number,
              id: ctx.server.nextId(),
              event: "labeled",
              label: name,
              actor: callerLogin(ctx),
              createdAt: new Date().toISOString(),
            });
          }
        }
        return { status: 200, body: p.labels.map(labelJson) };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/issues/{issue_number}/comments",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const id = ctx.server.nextId();
        const comment: CommentRecord = {
          owner: ctx.params.owner!,
          repo: ctx.params.repo!,
          issueNumber: Number(ctx.params.issue_number),
          id,
          body: (ctx.body as { body: string }).body,
          user: callerLogin(ctx),
          association: "NONE",
        };
        ctx.state.comments.push(comment);
        return { status: 201, body: commentJson(comment) };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/issues/{issue_number}/comments",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const list = ctx.state.comments
          .filter((c) => sameRepo(c, ctx) && c.issueNumber === Number(ctx.params.issue_number))
          .sort((a, b) => a.id - b.id);
        return { status: 200, body: list.map(commentJson) };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
      (ctx) => react(ctx, { commentId: Number(ctx.params.comment_id) }),
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
      (ctx) => react(ctx, { issueNumber: Number(ctx.params.issue_number) }),
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/issues/comments/{comment_id}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const c = ctx.state.comments.find((x) => sameRepo(x, ctx) && x.id === Number(ctx.params.comment_id));
        return c ? { status: 200, body: commentJson(c) } : notFound();
      },
    ],
    [
      "PATCH",
      "/repos/{owner}/{repo}/issues/comments/{comment_id}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const c = ctx.state.comments.find((x) => sameRepo(x, ctx) && x.id === Number(ctx.params.comment_id));
        if (!c) return notFound();
        c.body = (ctx.body as { body: string }).body;
        return { status: 200, body: commentJson(c) };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/issues",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const { owner, repo } = ctx.params as { owner: string; repo: string };
        if (!repoExists(ctx.state, owner, repo)) return notFound();
        const state = ctx.query.get("state") ?? "open";
        const wanted = (ctx.query.get("labels") ?? "")
          .split(",")
          .map((l) => l.trim().toLowerCase())
          .filter(Boolean);
        const list = ctx.server
          .pullsFor(owner, repo)
          .filter((p) => (state === "all" || p.state === state) && wanted.every((w) => p.labels.some((l) => l.toLowerCase() === w)))
          .sort((a, b) => b.number - a.number);
        return { status: 200, body: list.map((p) => issueJson(p, ctx.server.url)) };
      },
    ],
    [
      "DELETE",
      "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.issue_number));
        const name = ctx.params.name!;
        const i = p ? p.labels.findIndex((l) => l.toLowerCase() === name.toLowerCase()) : -1;
        if (!p || i < 0) return { status: 404, body: { message: "Label does not exist", documentation_url: DOCS, status: "404" } };
        p.labels.splice(i, 1);
        ctx.state.issueEvents.push({
          owner: p.owner,
          repo: p.repo,
          issueNumber: p.number,
          id: ctx.server.nextId(),
          event: "unlabeled",
          label: name,
          actor: callerLogin(ctx),
          createdAt: new Date().toISOString(),
        });
        return { status: 200, body: p.labels.map(labelJson) };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/issues/{issue_number}/events",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const list = ctx.state.issueEvents
          .filter((e) => sameRepo(e, ctx) && e.issueNumber === Number(ctx.params.issue_number))
          .sort((a, b) => a.id - b.id);
        return {
          status: 200,
          body: list.map((e) => ({
            id: e.id,
            node_id: `E${e.id}`,
            url: "",
            event: e.event,
            actor: userJson(e.actor),
            created_at: e.createdAt,
            commit_id: null,
            commit_url: null,
            ...(e.label ? { label: { name: e.label, color: "ededed" } } : {}),
          })),
        };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.pull_number));
        if (!p) return notFound();
        return {
          status: 200,
          body: (p.commits ?? []).map((c) => ({
            sha: c.sha,
            commit: {
              message: c.message ?? "",
              author: { name: c.author ?? "someone", email: "someone@example.com", date: new Date(0).toISOString() },
              committer: { name: c.committer ?? "someone", email: "someone@example.com", date: new Date(0).toISOString() },
            },
            author: c.author ? userJson(c.author) : null,
            committer: c.committer ? userJson(c.committer) : null,
            parents: [],
          })),
        };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const list = ctx.state.reviews
          .filter((r) => sameRepo(r, ctx) && r.pullNumber === Number(ctx.params.pull_number))
          .sort((a, b) => a.id - b.id);
        return {
          status: 200,
          body: list.map((r) => ({
            id: r.id,
            node_id: `R${r.id}`,
            user: userJson(r.user),
            body: r.body,
            state: r.state,
            commit_id: r.commitId,
            submitted_at: r.submittedAt,
            author_association: r.association ?? "NONE",
            html_url: `${htmlBase}/${r.owner}/${r.repo}/pull/${r.pullNumber}#pullrequestreview-${r.id}`,
            pull_request_url: "",
          })),
        };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const p = ctx.server.pullsFor(ctx.params.owner!, ctx.params.repo!).find((x) => x.number === Number(ctx.params.pull_number));
        if (!p) return notFound();
        const body = ctx.body as { event?: string; body?: string };
        const states: Record<string, string> = { APPROVE: "APPROVED", REQUEST_CHANGES: "CHANGES_REQUESTED", COMMENT: "COMMENTED" };
        const state = states[body.event ?? ""];
        if (!state) return validationFailed([{ resource: "PullRequestReview", field: "event", code: "missing_field" }]);
        const review: ReviewRecord = {
          owner: p.owner,
          repo: p.repo,
          pullNumber: p.number,
          id: ctx.server.nextId(),
          user: callerLogin(ctx),
          state,
          body: body.body ?? "",
          commitId: p.headSha ?? ZERO_SHA,
          submittedAt: new Date().toISOString(),
        };
        ctx.state.reviews.push(review);
        return {
          status: 200,
          body: {
            id: review.id,
            node_id: `R${review.id}`,
            user: userJson(review.user),
            body: review.body,
            state: review.state,
            commit_id: review.commitId,
            submitted_at: review.submittedAt,
            author_association: "NONE",
            html_url: `${htmlBase}/${p.owner}/${p.repo}/pull/${p.number}#pullrequestreview-${review.id}`,
            pull_request_url: "",
            _links: { html: { href: "" }, pull_request: { href: "" } },
          },
        };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/pulls/{pull_number}/comments",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const list = ctx.state.reviewComments
          .filter((c) => sameRepo(c, ctx) && c.pullNumber === Number(ctx.params.pull_number))
          .sort((a, b) => a.id - b.id);
        return {
          status: 200,
          body: list.map((c) => ({
            id: c.id,
            pull_request_review_id: c.reviewId,
            user: userJson(c.user),
            body: c.body,
            path: c.path,
            line: c.line,
            commit_id: c.commitId,
            author_association: c.association ?? "NONE",
            html_url: `${htmlBase}/${c.owner}/${c.repo}/pull/${c.pullNumber}#discussion_r${c.id}`,
          })),
        };
      },
    ],
    [
      "POST",
      "/repos/{owner}/{repo}/check-runs",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const b = ctx.body as {
          name: string;
          head_sha: string;
          status?: string;
          conclusion?: string;
          external_id?: string;
          details_url?: string;
          output?: CheckRunRecord["output"];
          actions?: unknown[];
          started_at?: string;
          completed_at?: string;
        };
        const conclusion = b.conclusion ?? null;
        const status = conclusion ? "completed" : (b.status ?? "queued");
        const run: CheckRunRecord = {
          owner: ctx.params.owner!,
          repo: ctx.params.repo!,
          id: ctx.server.nextId(),
          name: b.name,
          headSha: b.head_sha,
          status,
          conclusion,
          externalId: b.external_id ?? null,
          app: callerLogin(ctx),
          detailsUrl: b.details_url ?? null,
          output: b.output ?? {},
          actions: b.actions ?? [],
          startedAt: b.started_at ?? new Date().toISOString(),
          completedAt: status === "completed" ? (b.completed_at ?? new Date().toISOString()) : null,
        };
        ctx.state.checkRuns.push(run);
        return { status: 201, body: checkRunJson(run, htmlBase) };
      },
    ],
    [
      "PATCH",
      "/repos/{owner}/{repo}/check-runs/{check_run_id}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const run = ctx.state.checkRuns.find((c) => sameRepo(c, ctx) && c.id === Number(ctx.params.check_run_id));
        if (!run) return notFound();
        const b = ctx.body as Partial<{
          name: string;
          status: string;
          conclusion: string;
          external_id: string;
          details_url: string;
          output: CheckRunRecord["output"];
          actions: unknown[];
          completed_at: string;
        }>;
        if (b.name) run.name = b.name;
        if (b.external_id) run.externalId = b.external_id;
        if (b.details_url) run.detailsUrl = b.details_url;
        if (b.output) run.output = b.output;
        if (b.actions) run.actions = b.actions;
        if (b.conclusion) {
          run.conclusion = b.conclusion;
          run.status = "completed";
          run.completedAt = b.completed_at ?? new Date().toISOString();
        } else if (b.status) {
          run.status = b.status;
        }
        return { status: 200, body: checkRunJson(run, htmlBase) };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/check-runs/{check_run_id}",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const run = ctx.state.checkRuns.find((c) => sameRepo(c, ctx) && c.id === Number(ctx.params.check_run_id));
        return run ? { status: 200, body: checkRunJson(run, htmlBase) } : notFound();
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/commits/{ref}/check-runs",
      (ctx) => {
        const denied = requireToken(ctx);
        if (denied) return denied;
        const name = ctx.query.get("check_name");
        const status = ctx.query.get("status");
        let list = ctx.state.checkRuns.filter(
          (c) => sameRepo(c, ctx) && c.headSha === ctx.params.ref && (!name || c.name === name) && (!status || c.status === status),
        );
        if ((ctx.query.get("filter") ?? "latest") === "latest") {
          const newest = new Map<string, CheckRunRecord>();
          for (const c of list) if ((newest.get(c.name)?.id ?? -1) < c.id) newest.set(c.name, c);
          list = [...newest.values()];
        }
        list.sort((a, b) => a.id - b.id);
        return { status: 200, body: { total_count: list.length, check_runs: list.map((c) => checkRunJson(c, htmlBase)) } };
      },
    ],
    [
      "GET",
      "/repos/{owner}/{repo}/installation",
      (ctx) => {
        if (ctx.caller?.kind !== "app")
          return { status: 401, body: { message: "A JSON web token could not be decoded", documentation_url: DOCS, status: "401" } };
        const app = ctx.caller.app;
        if (ctx.params.owner!.toLowerCase() !== app.account.toLowerCase()) return notFound();
        return {
          status: 200,
          body: {
            id: app.installationId,
            app_id: Number(app.appId),
            account: { login: app.account },
            repository_selection: "all",
            permissions: { contents: "write", pull_requests: "write" },
          },
        };
      },
    ],
    [
      "POST",
      "/app/installations/{installation_id}/access_tokens",
      (ctx) => {
        if (ctx.caller?.kind !== "app")
          return { status: 401, body: { message: "A JSON web token could not be decoded", documentation_url: DOCS, status: "401" } };
        if (Number(ctx.params.installation_id) !== ctx.caller.app.installationId) return notFound();
        const token = `ghs_${crypto.randomBytes(18).toString("hex")}`;
        ctx.state.tokens.add(token);
        const repositories = (ctx.body as { repositories?: string[] } | null)?.repositories;
        ctx.state.installationTokens.push({
          installationId: ctx.caller.app.installationId,
          token,
          ...(repositories ? { repositories } : {}),
        });
        return {
          status: 201,
          body: {
            token,
            expires_at: new Date(Date.now() + 3600_000).toISOString(),
            permissions: { contents: "write", pull_requests: "write" },
            repository_selection: repositories ? "selected" : "all",
          },
        };
      },
    ],
  ];
}

export async function startGitHubServer(options: GitHubServerOptions = {}): Promise<GitHubServer> {
  loadGitHubSpec();
  const htmlBase = (options.htmlBaseUrl ?? "https://github.com").replace(/\/+$/, "");
  const state: GitHubState = {
    pulls: [],
    comments: [],
    violations: [],
    requests: [],
    installationTokens: [],
    tokens: new Set([...(options.tokens ?? []), ...Object.keys(options.users ?? {})]),
    repos: new Set((options.repos ?? []).map((r) => r.toLowerCase())),
    apps: [...(options.apps ?? [])],
    nextNumber: new Map(),
    reviews: [],
    reviewComments: [],
    issueEvents: [],
    checkRuns: [],
    reactions: [],
    users: new Map(Object.entries(options.users ?? {})),
    lastId: 0,
  };
  const routes = new Map<string, RouteHandler>();
  const failures: { key: string; remaining: number; status: number; message?: string; headers?: Record<string, string> }[] = [];
  // eslint-disable-next-line prefer-const -- assigned once the server listens
  let self: GitHubServer;

  const handle = async (
    req: http.IncomingMessage,
    raw: Buffer,
  ): Promise<RouteResponse & { operationId: string | null; caller: string | null }> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const matched = matchOperation(method, url.pathname);
    const record = (errors: string[]) =>
      state.violations.push({ method, path: url.pathname + url.search, operationId: matched?.operation.operationId ?? null, errors });
    if (!matched) {
      record([`${method} ${url.pathname} is not an operation of the GitHub REST API`]);
      return { ...notFound(), operationId: null, caller: null };
    }
    let body: unknown;
    const hasBody = raw.length > 0;
    if (hasBody) {
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        record(["body is not valid JSON"]);
        return {
          status: 400,
          body: { message: "Problems parsing JSON", documentation_url: DOCS, status: "400" },
          operationId: matched.operation.operationId,
          caller: null,
        };
      }
    }
    const authz = req.headers.authorization ?? "";
    const credential = /^(?:token|bearer)\s+(.+)$/i.exec(authz)?.[1]?.trim();
    let caller: RouteContext["caller"] = null;
    if (credential) {
      if (state.tokens.has(credential)) caller = { kind: "token", token: credential };
      else {
        const app = credential.split(".").length === 3 ? verifyJwt(credential, state.apps) : null;
        if (app) caller = { kind: "app", app };
        else
          return {
            status: 401,
            body: { message: "Bad credentials", documentation_url: DOCS, status: "401" },
            operationId: matched.operation.operationId,
            caller: "invalid",
          };
      }
    }
    const callerName = caller === null ? null : caller.kind === "token" ? caller.token : `jwt:${caller.app.appId}`;
    const errors = checkRequest(matched, url.searchParams, body, hasBody);
    if (errors.length > 0) {
      record(errors);
      return {
        ...validationFailed(
          errors.map((message) => ({ code: "invalid", message })),
          "Invalid request.",
        ),
        operationId: matched.operation.operationId,
        caller: callerName,
      };
    }
    const key = `${method} ${matched.operation.template}`;
    const failure = failures.find((f) => f.key === key && f.remaining > 0);
    if (failure) {
      failure.remaining--;
      return {
        status: failure.status,
        body: { message: failure.message ?? "Server Error", documentation_url: DOCS },
        headers: failure.headers,
        operationId: matched.operation.operationId,
        caller: callerName,
      };
    }
    const handler = routes.get(key);
    if (!handler) return { ...notFound(), operationId: matched.operation.operationId, caller: callerName };
    const response = await handler({ params: matched.pathParams, query: url.searchParams, body, caller, state, server: self });
    return { ...response, operationId: matched.operation.operationId, caller: callerName };
  };

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      handle(req, raw).then(
        (r) => {
          const url = new URL(req.url ?? "/", "http://localhost");
          let parsed: unknown;
          try {
            parsed = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
          } catch {
            parsed = raw.toString("utf8");
          }
          state.requests.push({
            method: req.method ?? "GET",
            path: url.pathname,
            query: Object.fromEntries(url.searchParams),
            body: parsed,
            operationId: r.operationId,
            status: r.status,
            caller: r.caller,
          });
          res.writeHead(r.status, {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            ...r.headers,
          });
          res.end(r.body === undefined ? "" : JSON.stringify(r.body));
        },
        (err: unknown) => {
          res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: String(err) }));
        },
      );
    });
  };
  const { server, scheme } = createTestServer(handler, options.tls);
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;

  self = {
    url: `${scheme}://${host}:${port}`,
    state,
    route(method, template, handler) {
      routes.set(`${method.toUpperCase()} ${template}`, handler);
    },
    failNext(method, template, count, status = 502, response = {}) {
      failures.push({ key: `${method.toUpperCase()} ${template}`, remaining: count, status, ...response });
    },
    pullsFor: (owner, repo) => state.pulls.filter((p) => repoKey(p.owner, p.repo) === repoKey(owner, repo)),
    nextId: () => ++state.lastId,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  for (const [method, template, handler] of defaultRoutes(options, htmlBase)) self.route(method, template, handler);
  return self;
}
