/** Parsing and checking of run.json (RunParameters), so a malformed file fails before any work. */
import path from "node:path";
// zod/mini: the channel parses run.json at start, and zod's full build is 0.7 MB of JavaScript to load first.
import * as z from "zod/mini";
import type { RunParameters } from "../api/runner-contract.js";
import { githubUrlProblem } from "../api/github-host.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";

const relativeDir = z.string().check(
  z.minLength(1),
  z.refine((d) => !path.posix.isAbsolute(d) && !d.split("/").includes(".."), {
    message: "must be a relative path inside the repository (no leading / and no ..)",
  }),
);
const branchName = z.string().check(z.minLength(1), z.regex(/^(?!-)(?!.*\.\.)[^\s~^:?*[\\]+$/, "must be a valid git branch name"));

/** Credentials only ever go to these URLs, so they are checked as the controller checks its config. */
const githubUrl = z.string().check(
  z.superRefine((url, ctx) => {
    const problem = githubUrlProblem(url);
    if (problem) ctx.addIssue({ code: "custom", message: `${problem} (the controller renders it from github.apiUrl / github.url)` });
  }),
);
const nonEmpty = () => z.string().check(z.minLength(1));
const positiveInt = () => z.number().check(z.int(), z.minimum(1));
const positive = () => z.number().check(z.positive());

const schema = z
  .object({
    kind: z.enum(["code", "docs"]),
    runName: nonEmpty(),
    namespace: z.string(),
    attempt: positiveInt(),
    model: nonEmpty(),
    repositoryUrl: nonEmpty(),
    workingDirectory: relativeDir,
    baseBranch: branchName,
    branch: branchName,
    githubUser: z.optional(z.string()),
    githubApp: z.optional(z.string()),
    continueSession: z.boolean(),
    overwriteMemory: z.boolean(),
    maxTurns: positiveInt(),
    timeBudgetSeconds: positive(),
    maxCostUsd: z.optional(positive()),
    githubApiUrl: githubUrl,
    githubUrl: githubUrl,
    prLabels: z.array(z.string()),
    stageLabels: z.optional(z.array(nonEmpty())),
    taskId: z.optional(z.number().check(z.int(), z.minimum(0))),
    service: z.optional(z.string()),
    docsRepositoryUrl: z.optional(z.string()),
    docsBranch: z.optional(branchName),
    docsProjectDirectory: z.optional(relativeDir),
    localTools: z.optional(z.string()),
    remoteTools: z.optional(z.string()),
    includeCodebase: z.optional(z.boolean()),
  })
  .check(
    z.superRefine((p, ctx) => {
      if (p.kind === "code") {
        if (p.taskId === undefined) ctx.addIssue({ code: "custom", path: ["taskId"], message: "is required for code runs" });
        if (!p.docsRepositoryUrl) ctx.addIssue({ code: "custom", path: ["docsRepositoryUrl"], message: "is required for code runs" });
      }
      if (p.branch === p.baseBranch) ctx.addIssue({ code: "custom", path: ["branch"], message: "must differ from baseBranch" });
    }),
  );

/** RunParameters from run.json's text; RunnerError(AgentFilesInvalid) naming the bad fields. */
export function parseRunParameters(text: string, source: string): RunParameters {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RunnerError(
      Reasons.AgentFilesInvalid,
      `${source} is not valid JSON (${(err as Error).message}); the controller renders it into the run's ConfigMap`,
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ");
    throw new RunnerError(Reasons.AgentFilesInvalid, `${source} is invalid: ${issues}`);
  }
  const p = parsed.data as RunParameters;
  // Normalise "./x/" to "x" and "" to ".", so paths built from it are stable.
  return {
    ...p,
    workingDirectory: path.posix.normalize(p.workingDirectory).replace(/\/+$/, "") || ".",
    ...(p.docsProjectDirectory !== undefined
      ? { docsProjectDirectory: path.posix.normalize(p.docsProjectDirectory).replace(/\/+$/, "") || "." }
      : {}),
  };
}
