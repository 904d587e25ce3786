/**
 * Submission bodies from what a person (CLI flags) or an editor's agent (MCP tool arguments)
 * gave, completed the way upstream's CLI did from the git checkout: repository URLs default to
 * the origin remote, the docs working directory to the current directory relative to the
 * repository root, the source branch to the current branch, and the GitHub identity to
 * `git config user.name` (when it is a valid login), then `claude-agent-1`. Pure functions: the
 * git facts come in as data (detectGit()).
 */
import type { Body } from "./api.js";
import type { GitInfo } from "./git.js";

/** Upstream's last-resort GitHub identity. */
export const DEFAULT_GITHUB_USER = "claude-agent-1";

/** A user input problem that names the flag (or tool parameter) to fix. */
export class InputError extends Error {
  override readonly name = "InputError";
}

function compact(o: Record<string, unknown>): Body {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ""));
}

/** The identity fields, plus a note saying where an implied one came from. */
export function identity(input: { github_user?: string; github_app?: string }, git: GitInfo): { fields: Body; note?: string } {
  if (input.github_user || input.github_app) return { fields: compact({ github_user: input.github_user, github_app: input.github_app }) };
  if (git.userName && /^[A-Za-z0-9-]{1,39}$/.test(git.userName)) {
    return {
      fields: { github_user: git.userName },
      note: `Using GitHub user ${git.userName} (from git config user.name); pass --github-user or --github-app to choose.`,
    };
  }
  return {
    fields: { github_user: DEFAULT_GITHUB_USER },
    note: `Using GitHub user ${DEFAULT_GITHUB_USER} (the default); pass --github-user or --github-app to choose.`,
  };
}

function originOrThrow(git: GitInfo, what: "repository URL"): string {
  if (git.origin) return git.origin;
  throw new InputError(
    `No ${what}: pass repository_url (CLI: --repository-url), or run the CLI or MCP server inside a git checkout that has an origin remote.`,
  );
}

export interface Completed {
  body: Body;
  notes: string[];
}

/** POST /api/v1/pm/tasks body. `input` uses the API's field names. */
export function completeCodeRequest(input: Body & { task_id: number; service: string }, git: GitInfo): Completed {
  const id = identity(input as { github_user?: string; github_app?: string }, git);
  const repository = (input.repository_url as string | undefined) ?? originOrThrow(git, "repository URL");
  const body = compact({
    ...input,
    repository_url: repository,
    docs_repository_url: (input.docs_repository_url as string | undefined) ?? git.origin ?? repository,
    github_user: undefined,
    github_app: undefined,
    ...id.fields,
  });
  return { body, notes: id.note ? [id.note] : [] };
}

/** POST /api/v1/pm/docs/generate body. */
export function completeDocsRequest(input: Body, git: GitInfo): Completed {
  const id = identity(input as { github_user?: string; github_app?: string }, git);
  const body = compact({
    ...input,
    repository_url: (input.repository_url as string | undefined) ?? originOrThrow(git, "repository URL"),
    working_directory: (input.working_directory as string | undefined) ?? git.relativeDir,
    source_branch: (input.source_branch as string | undefined) ?? git.branch,
    github_user: undefined,
    github_app: undefined,
    ...id.fields,
  });
  return { body, notes: id.note ? [id.note] : [] };
}

/** POST /api/v1/plays body: repositories default to the origin remote. */
export function completePlayRequest(input: Body & { service: string; tasks: number[] }, git: GitInfo): Completed {
  const repository = (input.repository_url as string | undefined) ?? originOrThrow(git, "repository URL");
  return {
    body: compact({
      ...input,
      repository_url: repository,
      docs_repository_url: (input.docs_repository_url as string | undefined) ?? repository,
    }),
    notes: [],
  };
}

/**
 * `--env K=V,K2=V2` (upstream) and repeated `--env K=V`: a comma starts a new pair only when
 * `NAME=` follows it, so values may contain commas.
 */
export function parseEnvPairs(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    for (const pair of v.split(/,(?=[A-Za-z_][A-Za-z0-9_]*=)/)) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new InputError(`--env ${pair}: expected NAME=VALUE (several as NAME=VALUE,NAME2=VALUE2).`);
      out[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
    }
  }
  return out;
}

/** `--env-from-secrets name:secretName:secretKey,…` (upstream's format). */
export function parseEnvFromSecrets(values: string[]): { name: string; secretName: string; secretKey: string }[] {
  return values
    .flatMap((v) => v.split(","))
    .filter((s) => s.trim())
    .map((item) => {
      const parts = item.trim().split(":");
      if (parts.length !== 3 || parts.some((p) => !p))
        throw new InputError(`--env-from-secrets ${item}: expected name:secretName:secretKey (several separated by commas).`);
      const [name, secretName, secretKey] = parts as [string, string, string];
      return { name, secretName, secretKey };
    });
}

/** `1,2,3` or `1 2 3` → [1, 2, 3]. */
export function parseTaskList(v: string): number[] {
  const ids = v
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => {
      if (!/^[1-9][0-9]{0,9}$/.test(s))
        throw new InputError(`--tasks ${v}: "${s}" is not a task id (positive integers, separated by commas).`);
      return Number(s);
    });
  if (ids.length === 0) throw new InputError("--tasks needs at least one task id, e.g. --tasks 7,8,9.");
  return ids;
}
