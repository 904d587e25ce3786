// Calls to the orchestrator's REST API. Paths are relative to the page, so the dashboard works
// under whatever prefix it is served at; the session cookie authenticates every call.
import type { AnyRun } from "../../src/api/types.js";
import type { EventSummary, JobSummary, PodSummary } from "../../src/dashboard/ports.js";
import type { ServiceView } from "../../src/dashboard/services.js";
import type { LogContainer } from "../../src/api/runner-contract.js";

export type { EventSummary, JobSummary, PodSummary, ServiceView };

export interface FieldError {
  field: string;
  pointer: string;
  message: string;
}

/** An RFC 9457 problem as the API sends it. */
export interface Problem {
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail || problem.title);
  }
}

/** Header the API requires on writes authenticated by the session cookie (CSRF defence). */
const CSRF_HEADER = "x-orchestrator-dashboard";

async function toProblem(res: Response): Promise<Problem> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    return { title: body.title ?? res.statusText, status: res.status, detail: body.detail ?? text, errors: body.errors };
  } catch {
    return { title: res.statusText, status: res.status, detail: text || `HTTP ${res.status}` };
  }
}

/** One JSON request; a non-2xx answer throws ApiError with the problem. */
export async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: {
      accept: "application/json",
      [CSRF_HEADER]: "1",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new ApiError(res.status, await toProblem(res));
  return ((await res.json()) as { data: T }).data;
}

export interface Session {
  principal: { name: string; method: string };
  namespace: string;
  playsEnabled: boolean;
  slotsPerService: number;
}

export type RunKind = AnyRun["kind"];

const runPath = (kind: RunKind, name: string) => `api/v1/runs/${kind.toLowerCase()}/${encodeURIComponent(name)}`;

export const api = {
  session: () => request<Session>("GET", "api/v1/dashboard/session"),
  login: (token: string) => request<{ principal: Session["principal"] }>("POST", "dashboard/login", { token }),
  logout: () => request<unknown>("POST", "dashboard/logout", {}),
  cancel: (kind: RunKind, name: string) => request<{ phase: string }>("POST", `${runPath(kind, name)}/cancel`, {}),
  retry: (kind: RunKind, name: string) =>
    request<Record<string, string>>("POST", `${runPath(kind, name)}/retry`, {}, { "idempotency-key": crypto.randomUUID() }),
  timeline: (kind: RunKind, name: string) =>
    request<Timeline>("GET", `api/v1/dashboard/runs/${kind.toLowerCase()}/${encodeURIComponent(name)}/timeline`),
  services: () => request<{ services: ServiceView[] }>("GET", "api/v1/dashboard/services"),
  submitCode: (body: Record<string, unknown>, key: string) =>
    request<{ coderun_name: string }>("POST", "api/v1/pm/tasks", body, { "idempotency-key": key }),
  submitDocs: (body: Record<string, unknown>, key: string) =>
    request<{ docsrun_name: string }>("POST", "api/v1/pm/docs/generate", body, { "idempotency-key": key }),
  logsUrl: (kind: RunKind, name: string, container: LogContainer) =>
    `${runPath(kind, name)}/logs?follow=true&tail_lines=2000&container=${container}`,
};

export interface Timeline {
  jobs: JobSummary[];
  pods: PodSummary[];
  events: EventSummary[];
}
