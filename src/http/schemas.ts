/**
 * Request and response schemas of the REST API. The same zod schemas validate requests and
 * generate /openapi.json (src/http/openapi.ts), so the document cannot drift from the code.
 * Submission bodies keep the original service's snake_case field names (CodeRequest,
 * DocsRequest); inner env_from_secrets items are camelCase, as they were there.
 */
import { z } from "zod";
import { LOG_CONTAINERS } from "../api/runner-contract.js";

const dnsLabel = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  );
const noWhitespace = /^\S+$/;
/** A path inside a repository: relative, no '..' segment (the agent must stay in its checkout). */
const repoPath = z
  .string()
  .min(1)
  .max(512)
  .refine((p) => !p.startsWith("/") && !p.split(/[\\/]/).includes(".."), {
    message: "must be a relative path inside the repository without '..' segments",
  });
const repoUrl = z
  .string()
  .min(1)
  .max(2048)
  .regex(noWhitespace, "must be a git URL (https://..., git@host:org/repo.git) or org/repo, without spaces");
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name (letters, digits, '_', not starting with a digit)")
  .max(256);
const identity = z.string().min(1).max(100).regex(noWhitespace, "must not contain spaces");

export const envFromSecretSchema = z.strictObject({
  name: envName.describe("Environment variable in the agent container."),
  secretName: z.string().min(1).max(253).describe("Secret in the controller's namespace."),
  secretKey: z.string().min(1).max(253).describe("Key in that Secret."),
});

const oneIdentity = (v: { github_user?: string | undefined; github_app?: string | undefined }) =>
  Boolean(v.github_user) !== Boolean(v.github_app);
const oneIdentityIssue = { message: "set exactly one of github_user or github_app", path: ["github_user"] };

const maxCostUsd = z
  .number()
  .min(0)
  .max(100_000)
  .optional()
  .describe("Dollar budget of one attempt (model tokens at list prices); 0 = none; default from the controller config.");

const cluster = dnsLabel
  .max(63)
  .optional()
  .describe(
    "Execution cluster of the run's Jobs (a registered cluster's name; 'home' = the controller's own). Default: the service's in controller.clusters.serviceDefaults, else home.",
  );

/** POST /api/v1/pm/tasks: the original service's CodeRequest, plus optional run limits. */
export const codeRequestSchema = z
  .strictObject({
    task_id: z.number().int().min(1).max(4_294_967_295).describe("Task Master task id."),
    service: dnsLabel.max(53).describe("Target service; selects the workspace volume workspace-{service}."),
    repository_url: repoUrl.describe("Repository the agent writes code to."),
    docs_repository_url: repoUrl.describe("Repository holding the Task Master docs."),
    docs_project_directory: repoPath.optional().describe("Project directory in the docs repository ('.' = root)."),
    working_directory: repoPath.optional().describe("Subdirectory of the target repository; default the service name."),
    model: z.string().min(1).max(200).optional().describe("Claude model; default from the controller config (models.defaultCodeModel)."),
    github_user: identity
      .optional()
      .describe("GitHub user (secrets github-ssh-{user}, github-token-{user}). Exactly one of github_user, github_app."),
    github_app: identity.optional().describe("GitHub App identity (secret github-app-{app}). Exactly one of github_user, github_app."),
    local_tools: z.string().max(4096).optional().describe("Comma-separated local MCP tools."),
    remote_tools: z.string().max(4096).optional().describe("Comma-separated remote MCP tools."),
    context_version: z.number().int().min(1).max(1_000_000).default(1),
    prompt_modification: z.string().max(65_536).optional().describe("Extra context added to the agent's CLAUDE.md."),
    docs_branch: z.string().min(1).max(255).regex(noWhitespace, "must be a branch name without spaces").default("main"),
    continue_session: z.boolean().default(false),
    overwrite_memory: z.boolean().default(false),
    env: z.record(envName, z.string().max(32_768)).default({}).describe("Extra environment variables for the agent container."),
    env_from_secrets: z.array(envFromSecretSchema).max(100).default([]),
    timeout_seconds: z
      .number()
      .int()
      .min(60)
      .max(604_800)
      .optional()
      .describe("Wall-clock limit of one attempt; default from the controller config."),
    max_retries: z.number().int().min(0).max(20).optional(),
    max_turns: z.number().int().min(1).max(100_000).optional(),
    max_cost_usd: maxCostUsd,
    cluster,
  })
  .refine(oneIdentity, oneIdentityIssue)
  .describe("A coding task (creates a CodeRun). Exactly one of github_user or github_app.");
export type CodeRequest = z.infer<typeof codeRequestSchema>;

/** POST /api/v1/pm/docs/generate: the original service's DocsRequest. */
export const docsRequestSchema = z
  .strictObject({
    repository_url: repoUrl.describe("Repository containing the Task Master project."),
    working_directory: z
      .string()
      .min(1)
      .max(512)
      .refine((p) => p === "." || (!p.startsWith("/") && !p.split(/[\\/]/).includes("..")), {
        message: "must be '.' or a relative path inside the repository without '..' segments",
      })
      .describe("Directory containing .taskmaster/ ('.' = root)."),
    source_branch: z
      .string()
      .min(1)
      .max(255)
      .regex(noWhitespace, "must be a branch name without spaces")
      .describe("Branch cloned; the docs PR targets it."),
    model: z.string().min(1).max(200).optional().describe("Claude model; default from the controller config (models.defaultDocsModel)."),
    github_user: identity.optional(),
    github_app: identity.optional(),
    include_codebase: z.boolean().optional(),
    timeout_seconds: z.number().int().min(60).max(604_800).optional(),
    max_retries: z.number().int().min(0).max(20).optional(),
    max_turns: z.number().int().min(1).max(100_000).optional(),
    max_cost_usd: maxCostUsd,
    cluster,
  })
  .refine(oneIdentity, oneIdentityIssue)
  .describe("A documentation run (creates a DocsRun). Exactly one of github_user or github_app.");
export type DocsRequest = z.infer<typeof docsRequestSchema>;

/** POST /api/v1/runs/{kind}/{name}/retry. */
export const retryRequestSchema = z
  .strictObject({
    prompt_modification: z
      .string()
      .max(65_536)
      .optional()
      .describe("Replaces the run's promptModification for the new attempt (CodeRun only)."),
  })
  .describe("Retry of a finished run.");
export type RetryRequest = z.infer<typeof retryRequestSchema>;

/** Accepted spellings of a kind in paths and queries. */
export const kindParam = z.string().transform((k, ctx) => {
  const v = k.toLowerCase();
  if (["coderun", "coderuns", "code", "cr"].includes(v)) return "CodeRun" as const;
  if (["docsrun", "docsruns", "docs", "dr"].includes(v)) return "DocsRun" as const;
  ctx.addIssue({ code: "custom", message: "must be coderun or docsrun" });
  return z.NEVER;
});

/** A Kubernetes object name (DNS subdomain). */
export const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a Kubernetes object name (lowercase letters, digits, '-', '.')");

export const runParamsSchema = z.strictObject({ kind: kindParam, name: objectName });

export const listQuerySchema = z.strictObject({
  kind: z
    .union([kindParam, z.literal("")])
    .optional()
    .describe("coderun or docsrun; default both."),
  service: dnsLabel.max(63).optional(),
  task: z
    .string()
    .regex(/^[1-9][0-9]{0,9}$/, "must be a positive integer")
    .optional()
    .describe("Task id (label task-id)."),
  phase: z.enum(["Pending", "Running", "Succeeded", "Failed", "Cancelled"]).optional().describe("Runs without a status count as Pending."),
});

export const logsQuerySchema = z.strictObject({
  follow: z.enum(["true", "false", "1", "0"]).optional().describe("Keep streaming until the container ends."),
  tail_lines: z
    .string()
    .regex(/^[0-9]{1,7}$/, "must be a non-negative integer")
    .optional(),
  container: z
    .enum(LOG_CONTAINERS, {
      error: `must be agent (the agent's log, the default) or channel (the channel container's: preparation, model proxy, GitHub tools, delivery)`,
    })
    .optional()
    .describe("Whose log: agent (default) or channel."),
});

// ---- Response shapes (documentation only; the handlers build them) ----

export const apiResponseSchema = z
  .object({
    success: z.boolean(),
    message: z.string(),
    data: z.unknown().optional(),
  })
  .describe("The original service's ApiResponse.");

export const codeSubmitResponseSchema = z.object({
  success: z.literal(true),
  message: z.string(),
  data: z.object({
    coderun_name: z.string(),
    namespace: z.string(),
    task_id: z.number().int(),
    service: z.string(),
    context_version: z.number().int(),
    model: z.string(),
  }),
});

export const docsSubmitResponseSchema = z.object({
  success: z.literal(true),
  message: z.string(),
  data: z.object({ docsrun_name: z.string(), namespace: z.string(), repository_url: z.string(), model: z.string() }),
});

export const problemSchema = z
  .object({
    success: z.literal(false),
    message: z.string().describe("Same as detail (the original ApiResponse field)."),
    type: z.string().describe("urn:orchestrator:problem:<slug>"),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), pointer: z.string(), message: z.string() })).optional(),
  })
  .describe("RFC 9457 problem details merged with the original ApiResponse; served as application/problem+json.");

export const healthResponseSchema = z.object({ status: z.literal("healthy"), version: z.string(), timestamp: z.string() });
export const readyResponseSchema = z.object({ status: z.enum(["ready", "not ready"]) });
export const readinessDetailSchema = z.object({
  status: z.enum(["ready", "not ready"]),
  checks: z.record(z.string(), z.union([z.boolean(), z.string()])),
});

const roleValues = <T extends z.ZodType>(v: T) =>
  z.strictObject({ implementation: v.optional(), quality: v.optional(), testing: v.optional() });

/** POST /api/v1/plays: a Play (docs/play.md) in the submission API's snake_case. */
export const playRequestSchema = z
  .strictObject({
    name: objectName.max(63).optional().describe("Play name; default play-{service}-t{first task}-{random}."),
    service: dnsLabel.max(53).describe("Target service; its stage CodeRuns share workspace-{service}."),
    repository_url: repoUrl.describe("GitHub repository the agents change and open the task PRs in."),
    docs_repository_url: repoUrl.describe("Repository holding the Task Master docs."),
    docs_project_directory: repoPath.optional(),
    docs_branch: z.string().min(1).max(255).regex(noWhitespace, "must be a branch name without spaces").optional(),
    working_directory: repoPath.optional(),
    tasks: z
      .array(z.number().int().min(1).max(4_294_967_295))
      .min(1)
      .max(500)
      .refine((t) => new Set(t).size === t.length, { message: "must not repeat a task id" })
      .describe("Task ids, walked in order."),
    agents: roleValues(z.string().min(1).max(100)).optional().describe("Roster agent per role; default from config play.*Agent."),
    models: roleValues(z.string().min(1).max(200)).optional().describe("Model per role, over the roster agent's model."),
    max_remediation_iterations: z.number().int().min(0).max(50).optional(),
    env: z.record(envName, z.string().max(32_768)).optional().describe("Extra environment variables for every stage CodeRun."),
    cluster,
  })
  .describe("A multi-agent Play (creates a Play).");
export type PlayRequest = z.infer<typeof playRequestSchema>;

export const playParamsSchema = z.strictObject({ name: objectName });

export const playListQuerySchema = z.strictObject({
  service: dnsLabel.max(63).optional(),
  phase: z.enum(["Pending", "Running", "Succeeded", "Failed", "Cancelled"]).optional().describe("Plays without a status count as Pending."),
});
