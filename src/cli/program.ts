/**
 * The `orchestrator` command line (commander): submits and follows work through the REST API,
 * starts the service (`serve`) and the MCP server (`mcp`), and prints shell completion
 * (`completion bash|zsh|fish|powershell`, @bomb.sh/tab). runCli() returns the exit code instead
 * of exiting, so tests run it in-process.
 */
import tab from "@bomb.sh/tab/commander";
import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../config/config.js";
import { ApiError } from "../client/api.js";
import { InputError } from "../client/requests.js";
import { playCommand } from "./commands/plays.js";
import { runsCommand } from "./commands/runs.js";
import { taskCommands } from "./commands/submit.js";
import { systemCommands } from "./commands/system.js";
import { action, type CliDeps } from "./context.js";
import { OutputFormats } from "./output.js";
import { ExitCodes } from "./watch.js";

export type { CliDeps } from "./context.js";

export function buildProgram(deps: CliDeps, results: { exitCode: number }, version: string): Command {
  const program = new Command("orchestrator")
    .description("Run Claude Code agents on software tasks through the orchestrator's REST API.")
    .version(version)
    .option(
      "--api-url <url>",
      "the service's URL (env ORCHESTRATOR_API_URL; default: the current context, then http://orchestrator.orchestrator.svc.cluster.local/api/v1)",
    )
    .option("--token <token>", "bearer token (env ORCHESTRATOR_TOKEN or ORCHESTRATOR_TOKEN_FILE; default: the current context's)")
    .option("--context <name>", "use this context of the CLI config file (env ORCHESTRATOR_CONTEXT)")
    .addOption(new Option("-o, --output <format>", "output format").choices([...OutputFormats]).default("table"))
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeOut: (s) => deps.stdout.write(s), writeErr: (s) => deps.stderr.write(s) })
    .exitOverride();
  for (const c of [
    ...taskCommands(deps, results),
    playCommand(deps, results),
    runsCommand(deps, results),
    ...systemCommands(deps, results),
  ])
    program.addCommand(c);
  if (deps.mcp) {
    const mcp = deps.mcp;
    program
      .command("mcp")
      .description("serve the orchestrator's tools to an editor's agent over stdio (Model Context Protocol)")
      .action(action(deps, results, async (ctx) => mcp(ctx.settings())));
  }
  if (deps.serve) {
    const serve = deps.serve;
    program
      .command("serve")
      .description("run the service: controller, REST API, MCP endpoint and GitHub webhooks (what `npm start` runs)")
      .action(async () => serve());
  }
  tab(program, { completionCommandName: "completion" });
  // Every subcommand reports errors through the program's streams and exit handling.
  const inherit = (c: Command) =>
    c.commands.forEach((s) => {
      s.exitOverride()
        .configureOutput({ writeOut: (t) => deps.stdout.write(t), writeErr: (t) => deps.stderr.write(t) })
        .showHelpAfterError("(run with --help for usage)");
      inherit(s);
    });
  inherit(program);
  return program;
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], deps: CliDeps, version: string): Promise<number> {
  const results = { exitCode: 0 };
  const program = buildProgram(deps, results, version);
  try {
    await program.parseAsync(argv, { from: "user" });
    return results.exitCode;
  } catch (e) {
    return reportError(e, deps);
  }
}

function reportError(e: unknown, deps: CliDeps): number {
  if (e instanceof CommanderError) {
    // Help and --version exit 0; usage errors were already printed by commander.
    return e.exitCode === 0 ? 0 : ExitCodes.usage;
  }
  if (e instanceof ApiError) {
    deps.stderr.write(`error: ${e.message}\n`);
    return ExitCodes.apiError;
  }
  if (e instanceof ConfigError || e instanceof InputError) {
    deps.stderr.write(`error: ${e.message}\n`);
    return ExitCodes.usage;
  }
  deps.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  return ExitCodes.runFailed;
}
