/**
 * Pure builders from validated API requests to the custom resources the intake creates. No I/O;
 * the time and the random suffix come in through the context, so tests get byte-identical output.
 */
import { createHash } from "node:crypto";
import { API_VERSION, APP_LABEL_VALUE, Annotations, Kinds, Labels } from "../api/constants.js";
import type { AnyRun, CodeRun, CodeRunSpec, DocsRun, DocsRunSpec } from "../api/types.js";
import type { Play, PlaySpec } from "../api/play.js";
import { codeRunLabels, labelValue } from "../intake/labels.js";
import { canonicalJson } from "../util/json.js";
import type { CodeRequest, DocsRequest, PlayRequest } from "./schemas.js";

/** The value of the idempotency-key-hash label for one Idempotency-Key. */
export function idempotencyLabelValue(key: string): string {
  return sha256Hex(key).slice(0, 40);
}

function keyLabel(ctx: IntentContext): Record<string, string> {
  return ctx.idempotencyKey === undefined ? {} : { [Labels.idempotencyKeyHash]: idempotencyLabelValue(ctx.idempotencyKey) };
}

export interface IntentContext {
  namespace: string;
  defaultCodeModel: string;
  defaultDocsModel: string;
  /** Who asked (authenticated principal); recorded in an annotation. */
  requestedBy: string;
  /** The client's Idempotency-Key, if any. */
  idempotencyKey?: string;
  /** requestDigest() of the request, recorded with the key. */
  requestDigest?: string;
  /** Used for names only when there is no Idempotency-Key. */
  now: Date;
  /** Random hex, used with `now` when there is no Idempotency-Key. */
  randomHex: string;
}

/** The fingerprint of a request (the Idempotency-Key draft's "request payload fingerprint"). */
export function requestDigest(route: string, principal: string, body: unknown): string {
  return sha256Hex(`${route}\n${principal}\n${canonicalJson(body)}`);
}

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Name suffix: from the Idempotency-Key when there is one (a repeated request maps to the same
 * name, so the API server itself rejects the duplicate, across restarts and replicas), else from
 * the time and randomness.
 */
function suffix(ctx: IntentContext, scope: string): string {
  if (ctx.idempotencyKey !== undefined) return "k" + sha256Hex(`${scope}\0${ctx.idempotencyKey}`).slice(0, 10);
  return Math.floor(ctx.now.getTime() / 1000).toString(36) + ctx.randomHex.slice(0, 6);
}

function annotations(ctx: IntentContext, extra: Record<string, string> = {}): Record<string, string> {
  return compact({
    [Annotations.requestedBy]: ctx.requestedBy,
    [Annotations.idempotencyKey]: ctx.idempotencyKey,
    [Annotations.requestDigest]: ctx.idempotencyKey === undefined ? undefined : ctx.requestDigest,
    [Annotations.source]: "api",
    ...extra,
  }) as Record<string, string>;
}

export function buildCodeRunFromRequest(req: CodeRequest, ctx: IntentContext): CodeRun {
  const spec: CodeRunSpec = compact({
    taskId: req.task_id,
    service: req.service,
    repositoryUrl: req.repository_url,
    docsRepositoryUrl: req.docs_repository_url,
    docsProjectDirectory: req.docs_project_directory,
    docsBranch: req.docs_branch,
    workingDirectory: req.working_directory,
    model: req.model ?? ctx.defaultCodeModel,
    githubUser: req.github_user,
    githubApp: req.github_app,
    localTools: req.local_tools,
    remoteTools: req.remote_tools,
    contextVersion: req.context_version,
    promptModification: req.prompt_modification,
    continueSession: req.continue_session,
    overwriteMemory: req.overwrite_memory,
    env: Object.keys(req.env).length ? req.env : undefined,
    envFromSecrets: req.env_from_secrets.length ? req.env_from_secrets : undefined,
    timeoutSeconds: req.timeout_seconds,
    maxRetries: req.max_retries,
    maxTurns: req.max_turns,
    maxCostUsd: req.max_cost_usd,
    cluster: req.cluster,
  });
  return {
    apiVersion: API_VERSION,
    kind: Kinds.CodeRun,
    metadata: {
      name: `code-${req.task_id}-${suffix(ctx, "code")}`,
      namespace: ctx.namespace,
      labels: { ...codeRunLabels(spec), ...keyLabel(ctx) },
      annotations: annotations(ctx),
    },
    spec,
  };
}

export function buildDocsRunFromRequest(req: DocsRequest, ctx: IntentContext): DocsRun {
  const spec: DocsRunSpec = compact({
    repositoryUrl: req.repository_url,
    workingDirectory: req.working_directory,
    sourceBranch: req.source_branch,
    model: req.model ?? ctx.defaultDocsModel,
    githubUser: req.github_user,
    githubApp: req.github_app,
    includeCodebase: req.include_codebase,
    timeoutSeconds: req.timeout_seconds,
    maxRetries: req.max_retries,
    maxTurns: req.max_turns,
    maxCostUsd: req.max_cost_usd,
    cluster: req.cluster,
  });
  return {
    apiVersion: API_VERSION,
    kind: Kinds.DocsRun,
    metadata: {
      name: `docs-gen-${suffix(ctx, "docs")}`,
      namespace: ctx.namespace,
      labels: {
        ...(compact({
          [Labels.app]: APP_LABEL_VALUE,
          type: "docs",
          [Labels.githubUser]: labelValue(spec.githubUser ?? spec.githubApp),
        }) as Record<string, string>),
        ...keyLabel(ctx),
      },
      annotations: annotations(ctx),
    },
    spec,
  };
}

/**
 * A new run from a finished one. CodeRun: the next context version, continueSession (the agent
 * resumes its conversation in the same workspace), optionally a new promptModification. The name
 * derives from the source and the new version, so a double-clicked retry is rejected by the API
 * server as AlreadyExists instead of starting two runs.
 */
export function buildRetryRun(source: AnyRun, opts: { contextVersion: number; promptModification?: string }, ctx: IntentContext): AnyRun {
  const retryOf = { [Annotations.retryOf]: source.metadata.name ?? "" };
  if (source.kind === Kinds.CodeRun) {
    const rest = { ...source.spec };
    delete rest.cancel;
    const spec: CodeRunSpec = compact({
      ...rest,
      contextVersion: opts.contextVersion,
      continueSession: true,
      promptModification: opts.promptModification ?? source.spec.promptModification,
    });
    const key = ctx.idempotencyKey ?? `${source.metadata.uid ?? source.metadata.name}/v${opts.contextVersion}`;
    return {
      apiVersion: API_VERSION,
      kind: Kinds.CodeRun,
      metadata: {
        name: `code-${spec.taskId}-v${opts.contextVersion}-${sha256Hex(`retry\0${key}`).slice(0, 8)}`,
        namespace: ctx.namespace,
        labels: { ...codeRunLabels(spec), ...keyLabel(ctx) },
        annotations: annotations(ctx, retryOf),
      },
      spec,
    };
  }
  const rest = { ...source.spec };
  delete rest.cancel;
  const attempt = `${source.metadata.uid ?? source.metadata.name}/${ctx.idempotencyKey ?? ctx.now.getTime()}`;
  return {
    apiVersion: API_VERSION,
    kind: Kinds.DocsRun,
    metadata: {
      name: `docs-gen-r${sha256Hex(`retry\0${attempt}`).slice(0, 10)}`,
      namespace: ctx.namespace,
      labels: {
        ...Object.fromEntries(Object.entries(source.metadata.labels ?? {}).filter(([k]) => k !== Labels.idempotencyKeyHash)),
        ...keyLabel(ctx),
      },
      annotations: annotations(ctx, retryOf),
    },
    spec: rest,
  };
}

/** A Play from a validated POST /api/v1/plays request. */
export function buildPlayFromRequest(req: PlayRequest, ctx: IntentContext): Play {
  const spec: PlaySpec = compact({
    service: req.service,
    repositoryUrl: req.repository_url,
    docsRepositoryUrl: req.docs_repository_url,
    docsProjectDirectory: req.docs_project_directory,
    docsBranch: req.docs_branch,
    workingDirectory: req.working_directory,
    tasks: req.tasks,
    agents: req.agents,
    models: req.models,
    maxRemediationIterations: req.max_remediation_iterations,
    env: req.env,
    cluster: req.cluster,
  });
  return {
    apiVersion: API_VERSION,
    kind: Kinds.Play,
    metadata: {
      name: req.name ?? `play-${req.service.slice(0, 30)}-t${req.tasks[0]}-${suffix(ctx, "play")}`,
      namespace: ctx.namespace,
      labels: {
        ...(compact({ [Labels.app]: APP_LABEL_VALUE, [Labels.service]: req.service }) as Record<string, string>),
        ...keyLabel(ctx),
      },
      annotations: annotations(ctx),
    },
    spec,
  };
}
