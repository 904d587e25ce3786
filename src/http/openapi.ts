/**
 * The OpenAPI 3.1 document served at /openapi.json, generated from the zod schemas that validate
 * the requests (z.toJSONSchema; OpenAPI 3.1 uses JSON Schema 2020-12 as is).
 */
import { z } from "zod";
import {
  apiResponseSchema,
  codeRequestSchema,
  codeSubmitResponseSchema,
  docsRequestSchema,
  docsSubmitResponseSchema,
  healthResponseSchema,
  listQuerySchema,
  logsQuerySchema,
  playListQuerySchema,
  playRequestSchema,
  problemSchema,
  readyResponseSchema,
  readinessDetailSchema,
  retryRequestSchema,
} from "./schemas.js";

type JsonSchema = Record<string, unknown>;

function schema(s: z.ZodType, io: "input" | "output"): JsonSchema {
  const out = z.toJSONSchema(s, { io, unrepresentable: "any" }) as JsonSchema;
  delete out.$schema;
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ "application/json": { schema: ref(name) } });
const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: ref("Problem") } } });

/** Query parameters from a zod object schema (all strings in a query). */
function queryParams(s: z.ZodObject): JsonSchema[] {
  const js = schema(s, "input") as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, p]) => ({
    name,
    in: "query",
    required: js.required?.includes(name) ?? false,
    ...(typeof p.description === "string" ? { description: p.description } : {}),
    schema: { ...p, description: undefined },
  }));
}

const runPath = [
  { name: "kind", in: "path", required: true, schema: { type: "string", enum: ["coderun", "docsrun"] } },
  { name: "name", in: "path", required: true, schema: { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 253 } },
];
const playPath = runPath[1]!;
const idempotencyKey = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Makes the request safe to repeat: a second request with the same key gets the original 201 response (same body and Location) and creates nothing; the same key with a different request is 422 (survives restarts; the key's hash is a label on the created object).",
  schema: { type: "string", minLength: 1, maxLength: 255 },
};
const common = {
  "401": problem("Missing or invalid credentials (see WWW-Authenticate)."),
  "503": problem("The Kubernetes API server is unreachable, or the API has no authentication configured."),
};

/** The intake of new runs. */
function submitPaths(): JsonSchema {
  return {
    "/api/v1/pm/tasks": {
      post: {
        operationId: "submitCodeTask",
        summary: "Submit a coding task (creates a CodeRun)",
        parameters: [idempotencyKey],
        requestBody: { required: true, content: json("CodeRequest") },
        responses: {
          "201": { description: "CodeRun created.", content: json("CodeSubmitResponse") },
          "400": problem("Body is not a JSON object, or a malformed header."),
          "409": problem("The same task/service/context version is still active."),
          "422": problem("Validation failed (errors[] lists the fields), or the Idempotency-Key was used for a different request."),
          ...common,
        },
      },
    },
    "/api/v1/pm/docs/generate": {
      post: {
        operationId: "generateDocs",
        summary: "Submit documentation generation (creates a DocsRun)",
        parameters: [idempotencyKey],
        requestBody: { required: true, content: json("DocsRequest") },
        responses: {
          "201": { description: "DocsRun created.", content: json("DocsSubmitResponse") },
          "400": problem("Body is not a JSON object."),
          "409": problem("Changed concurrently; retry."),
          "422": problem("Validation failed (errors[] lists the fields), or the Idempotency-Key was used for a different request."),
          ...common,
        },
      },
    },
  };
}

/** Listing, reading and cancelling runs. */
function runPaths(): JsonSchema {
  return {
    "/api/v1/runs": {
      get: {
        operationId: "listRuns",
        summary: "List runs (filter by kind, service, task, phase)",
        parameters: queryParams(listQuerySchema),
        responses: {
          "200": { description: "data.items: the runs, newest first.", content: json("ApiResponse") },
          "400": problem("Invalid query."),
          ...common,
        },
      },
    },
    "/api/v1/runs/{kind}/{name}": {
      get: {
        operationId: "getRun",
        summary: "Get one run",
        parameters: runPath,
        responses: { "200": { description: "data: the run.", content: json("ApiResponse") }, "404": problem("No such run."), ...common },
      },
    },
    "/api/v1/runs/{kind}/{name}/cancel": {
      post: {
        operationId: "cancelRun",
        summary: "Cancel a run (sets spec.cancel; the controller stops it)",
        parameters: runPath,
        responses: {
          "202": { description: "Cancel requested.", content: json("ApiResponse") },
          "404": problem("No such run."),
          "409": problem("The run already finished."),
          ...common,
        },
      },
    },
  };
}

/** Retrying a run and reading its logs. */
function runRetryAndLogPaths(): JsonSchema {
  return {
    "/api/v1/runs/{kind}/{name}/retry": {
      post: {
        operationId: "retryRun",
        summary: "Retry a finished run (CodeRun: next context version, continueSession)",
        parameters: [...runPath, idempotencyKey],
        requestBody: { required: false, content: json("RetryRequest") },
        responses: {
          "201": { description: "New run created.", content: json("ApiResponse") },
          "404": problem("No such run."),
          "409": problem("The run has not finished, or another run of the task is active."),
          "422": problem("Validation failed, or the Idempotency-Key was used for a different request."),
          ...common,
        },
      },
    },
    "/api/v1/runs/{kind}/{name}/logs": {
      get: {
        operationId: "runLogs",
        summary:
          "Logs of the run's current Job pod (text; follow=true streams): the agent container's, or with container=channel the channel container's",
        parameters: [...runPath, ...queryParams(logsQuerySchema)],
        responses: {
          "200": { description: "Log text.", content: { "text/plain": { schema: { type: "string" } } } },
          "404": problem("No such run, or no Job/pod yet."),
          "409": problem("The pod's container has not started yet."),
          "502": problem("The API server could not read the log from the pod's node (kubelet unreachable; simulated pods have no logs)."),
          ...common,
        },
      },
    },
  };
}

/** Multi-agent Plays. */
function playPaths(): JsonSchema {
  return {
    "/api/v1/plays": {
      post: {
        operationId: "startPlay",
        summary: "Start a multi-agent Play (creates a Play)",
        parameters: [idempotencyKey],
        requestBody: { required: true, content: json("PlayRequest") },
        responses: {
          "201": { description: "Play created; data.play_name names it.", content: json("ApiResponse") },
          "409": problem("A Play of that name exists already."),
          "422": problem("Validation failed; errors[] lists the fields."),
          ...common,
        },
      },
      get: {
        operationId: "listPlays",
        summary: "List Plays (filter by service, phase)",
        parameters: queryParams(playListQuerySchema),
        responses: {
          "200": { description: "data.items: the Plays, newest first.", content: json("ApiResponse") },
          "400": problem("Invalid query."),
          ...common,
        },
      },
    },
    "/api/v1/plays/{name}": {
      get: {
        operationId: "getPlay",
        summary: "Get one Play",
        parameters: [playPath],
        responses: {
          "200": { description: "data: the Play.", content: json("ApiResponse") },
          "404": problem("No such Play."),
          ...common,
        },
      },
    },
    "/api/v1/plays/{name}/cancel": {
      post: {
        operationId: "cancelPlay",
        summary: "Cancel a Play (sets spec.cancel; its stage runs are cancelled)",
        parameters: [playPath],
        responses: {
          "202": { description: "Cancel requested.", content: json("ApiResponse") },
          "404": problem("No such Play."),
          "409": problem("The Play already finished."),
          ...common,
        },
      },
    },
  };
}

/** The GitHub webhook receiver. */
function webhookPath(): JsonSchema {
  return {
    "/webhooks/github": {
      post: {
        operationId: "githubWebhook",
        summary: "GitHub webhook receiver (alias: POST /webhook)",
        security: [{ githubSignature: [] }],
        parameters: [
          { name: "X-GitHub-Event", in: "header", required: true, schema: { type: "string" } },
          { name: "X-GitHub-Delivery", in: "header", required: true, schema: { type: "string" } },
        ],
        requestBody: {
          required: true,
          content: {
            "application/json": { schema: { type: "object" } },
            "application/x-www-form-urlencoded": { schema: { type: "object", properties: { payload: { type: "string" } } } },
          },
        },
        responses: {
          "200": { description: "ping answered, or a duplicate delivery.", content: json("ApiResponse") },
          "201": { description: "CodeRun created.", content: json("ApiResponse") },
          "202": {
            description: "Ignored (no rule matched, sender not allowed), or accepted with the create still in progress.",
            content: json("ApiResponse"),
          },
          "400": problem("Missing GitHub headers or unparsable payload."),
          "401": problem("Missing or invalid X-Hub-Signature-256."),
          "413": problem("Payload larger than webhook.maxBodyBytes."),
          "503": problem("No webhook secret configured, or the Kubernetes API is unreachable (redeliver from GitHub)."),
        },
      },
    },
  };
}

/** Health, readiness, metrics and this document. */
function systemPaths(): JsonSchema {
  return {
    "/health": {
      get: {
        operationId: "health",
        summary: "Liveness",
        security: [],
        responses: { "200": { description: "Alive.", content: json("Health") } },
      },
    },
    "/ready": {
      get: {
        operationId: "ready",
        summary: "Readiness (informers synced, API server reachable): ready or not, without details",
        security: [],
        responses: {
          "200": { description: "Ready.", content: json("Ready") },
          "503": { description: "Not ready.", content: json("Ready") },
        },
      },
    },
    "/api/v1/readiness": {
      get: {
        operationId: "readinessDetail",
        summary: "The readiness checks behind /ready (authenticated)",
        responses: {
          ...common,
          "200": { description: "Ready.", content: json("ReadinessDetail") },
          "503": { description: "Not ready (or no authentication configured).", content: json("ReadinessDetail") },
        },
      },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        summary: "Prometheus metrics (do not expose publicly)",
        security: [],
        responses: { "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } } },
      },
    },
    "/openapi.json": {
      get: {
        operationId: "openapi",
        summary: "This document",
        security: [],
        responses: { "200": { description: "OpenAPI 3.1 document.", content: { "application/json": { schema: { type: "object" } } } } },
      },
    },
  };
}

function components(): JsonSchema {
  return {
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description: "A token from ORCHESTRATOR_API_TOKENS, or a Kubernetes ServiceAccount token when api.tokenReview is on.",
      },
      githubSignature: {
        type: "apiKey",
        in: "header",
        name: "X-Hub-Signature-256",
        description: "HMAC-SHA256 of the raw body with the webhook secret (GitHub's signature).",
      },
    },
    schemas: {
      CodeRequest: schema(codeRequestSchema, "input"),
      DocsRequest: schema(docsRequestSchema, "input"),
      RetryRequest: schema(retryRequestSchema, "input"),
      PlayRequest: schema(playRequestSchema, "input"),
      CodeSubmitResponse: schema(codeSubmitResponseSchema, "output"),
      DocsSubmitResponse: schema(docsSubmitResponseSchema, "output"),
      ApiResponse: schema(apiResponseSchema, "output"),
      Problem: schema(problemSchema, "output"),
      Health: schema(healthResponseSchema, "output"),
      Ready: schema(readyResponseSchema, "output"),
      ReadinessDetail: schema(readinessDetailSchema, "output"),
    },
  };
}

export function buildOpenApiDocument(version: string): JsonSchema {
  return {
    openapi: "3.1.0",
    info: {
      title: "Orchestrator API",
      version,
      description:
        "Submits CodeRun and DocsRun custom resources (intent) that the orchestrator controller turns into agent Jobs. Errors are application/problem+json (RFC 9457) and also carry the original {success:false, message}.",
    },
    security: [{ bearer: [] }],
    components: components(),
    paths: { ...submitPaths(), ...runPaths(), ...runRetryAndLogPaths(), ...playPaths(), ...webhookPath(), ...systemPaths() },
  };
}
