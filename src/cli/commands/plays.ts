/** `play start|list|get|cancel`: multi-agent Plays (docs/play.md). */
import { Command, Option } from "commander";
import { detectGit } from "../../client/git.js";
import { completePlayRequest, parseEnvPairs, parseTaskList } from "../../client/requests.js";
import { action, type CliDeps } from "../context.js";
import { phaseOf, playDetail, playsTable } from "../output.js";

const collect = (v: string, prev: string[] = []) => [...prev, v];

function startCommand(deps: CliDeps, results: { exitCode: number }): Command {
  return new Command("start")
    .description("start a Play: each task goes through implementation, quality review and testing by roster agents")
    .requiredOption("-s, --service <service>", "target service")
    .requiredOption("--tasks <ids>", "task ids in order, e.g. 7,8,9")
    .option("--name <name>", "Play name (default: play-{service}-t{first task}-{suffix})")
    .option("--repository-url <url>", "repository the agents change (default: git origin)")
    .option("--docs-repository-url <url>", "repository holding the Task Master docs (default: the repository)")
    .option("--docs-project-directory <dir>", "project directory in the docs repository")
    .option("--docs-branch <branch>", "branch of the docs repository")
    .option("-w, --working-directory <dir>", "subdirectory where the agents work (default: the service name)")
    .option("--implementation-agent <name>", "roster agent for implementation (default: config play.implementationAgent)")
    .option("--quality-agent <name>", "roster agent for quality review")
    .option("--testing-agent <name>", "roster agent for testing")
    .option("--max-remediation-iterations <n>", "remediations per task before the Play stops", Number)
    .option("--env <K=V,...>", "environment variables for every stage run (repeatable)", collect, [])
    .option("--idempotency-key <key>", "makes a repeated start safe")
    .action(
      action(deps, results, async (ctx, o: Record<string, unknown>) => {
        const git = await detectGit(ctx.deps.cwd);
        const agents = Object.fromEntries(
          Object.entries({ implementation: o.implementationAgent, quality: o.qualityAgent, testing: o.testingAgent }).filter(
            ([, v]) => v !== undefined,
          ),
        );
        const env = parseEnvPairs(o.env as string[]);
        const { body } = completePlayRequest(
          {
            service: o.service as string,
            tasks: parseTaskList(o.tasks as string),
            name: o.name,
            repository_url: o.repositoryUrl,
            docs_repository_url: o.docsRepositoryUrl,
            docs_project_directory: o.docsProjectDirectory,
            docs_branch: o.docsBranch,
            working_directory: o.workingDirectory,
            agents: Object.keys(agents).length ? agents : undefined,
            max_remediation_iterations: o.maxRemediationIterations,
            env: Object.keys(env).length ? env : undefined,
          },
          git,
        );
        const s = await ctx.client().startPlay(body, o.idempotencyKey as string | undefined);
        ctx.printData(s.data, () => `Play ${s.name} started in namespace ${s.namespace}.\nFollow it: orchestrator play get ${s.name}`);
      }),
    );
}

export function playCommand(deps: CliDeps, results: { exitCode: number }): Command {
  const play = new Command("play").description("multi-agent Plays: start, list, inspect, cancel");
  play.addCommand(startCommand(deps, results));
  play
    .command("list")
    .alias("ls")
    .description("list Plays, newest first")
    .option("--service <service>", "only this service")
    .addOption(new Option("--phase <phase>", "only this phase").choices(["Pending", "Running", "Succeeded", "Failed", "Cancelled"]))
    .action(
      action(deps, results, async (ctx, o: { service?: string; phase?: string }) => {
        const list = await ctx.client().listPlays(o);
        ctx.printData(list.items, () => (list.items.length ? playsTable(list.items, ctx.now) : `No Plays in namespace ${list.namespace}.`));
      }),
    );
  play
    .command("get")
    .argument("<name>", "Play name")
    .description("show one Play: stage, agent, PR, history")
    .action(
      action(deps, results, async (ctx, name: string) => {
        const p = await ctx.client().getPlay(name);
        ctx.printData(p, () => playDetail(p, ctx.now));
      }),
    );
  play
    .command("cancel")
    .argument("<name>", "Play name")
    .description("stop a Play; its in-flight stage runs are cancelled")
    .action(
      action(deps, results, async (ctx, name: string) => {
        const data = await ctx.client().cancelPlay(name);
        ctx.printData(
          data,
          () => `Cancel requested for Play ${name} (was ${phaseOf({ status: { phase: String(data.phase ?? "") || undefined } })}).`,
        );
      }),
    );
  return play;
}
