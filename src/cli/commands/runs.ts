/**
 * `runs list|get|watch|logs|cancel|retry`. A run is named `coderun/NAME`, `docsrun/NAME` (also
 * `cr/`, `dr/`), or just NAME: then CodeRun first, DocsRun if there is no such CodeRun.
 */
import { Command, Option } from "commander";
import { LOG_CONTAINERS, type LogContainer } from "../../api/runner-contract.js";
import type { AnyRun } from "../../api/types.js";
import { ApiError, type ApiClient } from "../../client/api.js";
import { InputError } from "../../client/requests.js";
import { action, type CliDeps, type CommandContext } from "../context.js";
import { phaseOf, runDetail, runsTable } from "../output.js";
import { reportSubmitted, waitAndReport } from "./submit.js";

const KINDS: Record<string, "coderun" | "docsrun"> = {
  coderun: "coderun",
  coderuns: "coderun",
  code: "coderun",
  cr: "coderun",
  docsrun: "docsrun",
  docsruns: "docsrun",
  docs: "docsrun",
  dr: "docsrun",
};

/** Finds the run a reference names (one GET, two for a bare name of a DocsRun). */
export async function resolveRun(client: ApiClient, ref: string): Promise<AnyRun> {
  const slash = ref.indexOf("/");
  if (slash >= 0) {
    const kind = KINDS[ref.slice(0, slash).toLowerCase()];
    if (!kind) throw new InputError(`${ref}: the kind must be coderun or docsrun (e.g. coderun/code-7-abc).`);
    return client.getRun(kind, ref.slice(slash + 1));
  }
  try {
    return await client.getRun("coderun", ref);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    try {
      return await client.getRun("docsrun", ref);
    } catch (e2) {
      if (e2 instanceof ApiError && e2.status === 404)
        throw new ApiError(`No CodeRun or DocsRun named ${ref}. List them with: orchestrator runs list (HTTP 404)`, 404);
      throw e2;
    }
  }
}

const kindOf = (r: AnyRun) => r.kind.toLowerCase();
const waitFlags = (cmd: Command) =>
  cmd
    .option("--wait", "follow the new run until it ends (exit code by outcome)")
    .option("--wait-timeout <seconds>", "with --wait: give up after this many seconds (exit code 5)", Number);

function listCommand(deps: CliDeps, results: { exitCode: number }): Command {
  return new Command("list")
    .alias("ls")
    .description("list runs, newest first")
    .addOption(new Option("--kind <kind>", "only this kind").choices(["coderun", "docsrun"]))
    .option("--service <service>", "only this service")
    .option("--task <id>", "only this task id")
    .addOption(new Option("--phase <phase>", "only this phase").choices(["Pending", "Running", "Succeeded", "Failed", "Cancelled"]))
    .action(
      action(deps, results, async (ctx, o: Record<string, string | undefined>) => {
        const list = await ctx.client().listRuns({ kind: o.kind, service: o.service, task: o.task, phase: o.phase });
        ctx.printData(list.items, () => (list.items.length ? runsTable(list.items, ctx.now) : `No runs in namespace ${list.namespace}.`));
      }),
    );
}

type LogFlags = { follow?: boolean; tail?: number; container?: LogContainer };

function followLogs(ctx: CommandContext, run: AnyRun, o: LogFlags): Promise<void> {
  return (async () => {
    const stream = await ctx.client().logs(kindOf(run), run.metadata.name ?? "", {
      follow: o.follow,
      tailLines: o.tail,
      container: o.container,
    });
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) ctx.deps.stdout.write(chunk);
  })();
}

export function runsCommand(deps: CliDeps, results: { exitCode: number }): Command {
  const runs = new Command("runs").description("CodeRuns and DocsRuns: list, inspect, follow, cancel, retry");
  runs.addCommand(listCommand(deps, results));
  runs
    .command("get")
    .argument("<run>", "coderun/NAME, docsrun/NAME or NAME")
    .description("show one run")
    .action(
      action(deps, results, async (ctx, ref: string) => {
        const run = await resolveRun(ctx.client(), ref);
        ctx.printData(run, () => runDetail(run, ctx.now));
      }),
    );
  waitFlags(
    runs
      .command("watch")
      .argument("<run>", "coderun/NAME, docsrun/NAME or NAME")
      .description("follow a run until it ends; the exit code tells the outcome"),
  ).action(
    action(deps, results, async (ctx, ref: string, o: { waitTimeout?: number }) => {
      const run = await resolveRun(ctx.client(), ref);
      await waitAndReport(ctx, run.kind, run.metadata.name ?? "", { wait: true, waitTimeout: o.waitTimeout });
    }),
  );
  runs
    .command("logs")
    .argument("<run>", "coderun/NAME, docsrun/NAME or NAME")
    .description("print the logs of the run's current pod")
    .option("-f, --follow", "keep streaming until the container ends")
    .option("--tail <lines>", "only the last N lines", Number)
    .addOption(
      new Option("-c, --container <which>", "agent: Claude Code's log; channel: preparation, model proxy, GitHub tools, delivery")
        .choices(LOG_CONTAINERS)
        .default("agent"),
    )
    .action(
      action(deps, results, async (ctx, ref: string, o: LogFlags) => {
        const run = await resolveRun(ctx.client(), ref);
        await followLogs(ctx, run, o);
      }),
    );
  addChangeCommands(runs, deps, results);
  return runs;
}

/** `runs cancel` and `runs retry`: the two that change a run. */
function addChangeCommands(runs: Command, deps: CliDeps, results: { exitCode: number }): void {
  runs
    .command("cancel")
    .argument("<run>", "coderun/NAME, docsrun/NAME or NAME")
    .description("stop a run (the controller deletes its Job and marks it Cancelled)")
    .action(
      action(deps, results, async (ctx, ref: string) => {
        const run = await resolveRun(ctx.client(), ref);
        const data = await ctx.client().cancelRun(kindOf(run), run.metadata.name ?? "");
        ctx.printData(data, () => `Cancel requested for ${run.kind} ${run.metadata.name} (was ${phaseOf(run)}).`);
      }),
    );
  waitFlags(
    runs
      .command("retry")
      .argument("<run>", "coderun/NAME, docsrun/NAME or NAME")
      .description("start a finished run again (CodeRun: next context version, continuing the session)")
      .option("--prompt-modification <text>", "new extra instructions for the retry (CodeRun only)"),
  ).action(
    action(deps, results, async (ctx, ref: string, o: { promptModification?: string; wait?: boolean; waitTimeout?: number }) => {
      const run = await resolveRun(ctx.client(), ref);
      const body = o.promptModification !== undefined ? { prompt_modification: o.promptModification } : {};
      const s = await ctx.client().retryRun(kindOf(run), run.metadata.name ?? "", body);
      await reportSubmitted(ctx, s, o);
    }),
  );
}
