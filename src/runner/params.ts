/** Parsing and checking of run.json (RunParameters), so a malformed file fails before any work. */
import path from "node:path";
import { z } from "zod";
import type { RunParameters } from "../api/runner-contract.js";
import { githubUrlProblem } from "../api/github-host.js";
import { Reasons } from "../api/reasons.js";
import { RunnerError } from "./errors.js";

const relativeDir = z
  .string()
  .min(1)
  .refine((d) => !path.posix.isAbsolute(d) && !d.split("/").includes(".."), {
    message: "must be a relative path inside the repository (no leading / and no ..)",
  });
const branchName = z
  .string()
  .min(1)
  .regex(/^(?!-)(?!.*\.\.)[^\s~^:?*[\\]+$/, "must be a valid git branch name");

/** Credentials only ever go to these URLs, so they are checked as the controller checks its config. */
const githubUrl = z.string().superRefine((url, ctx) => {
  const problem = githubUrlProblem(url);
  if (problem) ctx.addIssue({ code: "custom", message: `${problem} (the controller renders it from github.apiUrl / github.url)` });
});

const schema = z
  .object({
    kind: z.enum(["code", "docs"]),
    runName: z.string().min(1),
    namespace: z.string(),
    attempt: z.number().int().min(1),
    model: z.string().min(1),
    repositoryUrl: z.string().min(1),
    workingDirectory: relativeDir,
    baseBranch: branchName,
    branch: branchName,
    githubUser: z.string().optional(),
    githubApp: z.string().optional(),
    continueSession: z.boolean(),
    overwriteMemory: z.boolean(),
    maxTurns: z.number().int().min(1),
    timeBudgetSeconds: z.number().positive(),
    maxCostUsd: z.number().positive().optional(),
    githubApiUrl: githubUrl,
    githubUrl: githubUrl,
    prLabels: z.array(z.string()),
    stageLabels: z.array(z.string().min(1)).optional(),
    taskId: z.number().int().min(0).optional(),
    service: z.string().optional(),
    docsRepositoryUrl: z.string().optional(),
    docsBranch: branchName.optional(),
    docsProjectDirectory: relativeDir.optional(),
    localTools: z.string().optional(),
    remoteTools: z.string().optional(),
    includeCodebase: z.boolean().optional(),
  })
  .superRefine((p, ctx) => {
    if (p.kind === "code") {
      if (p.taskId === undefined) ctx.addIssue({ code: "custom", path: ["taskId"], message: "is required for code runs" });
      if (!p.docsRepositoryUrl) ctx.addIssue({ code: "custom", path: ["docsRepositoryUrl"], message: "is required for code runs" });
    }
    if (p.branch === p.baseBranch) ctx.addIssue({ code: "custom", path: ["branch"], message: "must differ from baseBranch" });
  });

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
