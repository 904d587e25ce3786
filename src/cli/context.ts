/** What every CLI command gets: its streams, the API client, the output format. */
import type { Command } from "commander";
import { readCliSettings, type CliSettings } from "../config/cli.js";
import { ApiClient } from "../client/api.js";
import { formatData, OutputFormats, type OutputFormat } from "./output.js";

export type Out = NodeJS.WritableStream & { isTTY?: boolean };

export interface CliDeps {
  /** The environment (src/cmd passes process.env; tests pass their own). */
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: Out;
  stderr: Out;
  now?: () => number;
  /** `orchestrator serve`: starts the service (wired by src/cmd). */
  serve?: () => Promise<void>;
  /** `orchestrator mcp`: the MCP server over stdio (wired by src/cmd). */
  mcp?: (settings: CliSettings) => Promise<void>;
}

export interface GlobalOptions {
  apiUrl?: string;
  token?: string;
  context?: string;
  output: string;
}

export class CommandContext {
  /** The process exit code the command decided (0 unless set). */
  exitCode = 0;
  private cached?: ApiClient;

  constructor(
    readonly deps: CliDeps,
    readonly cmd: Command,
  ) {}

  get opts(): GlobalOptions {
    return this.cmd.optsWithGlobals() as GlobalOptions;
  }

  get format(): OutputFormat {
    return (OutputFormats as readonly string[]).includes(this.opts.output) ? (this.opts.output as OutputFormat) : "table";
  }

  get now(): number {
    return (this.deps.now ?? Date.now)();
  }

  get tty(): boolean {
    return this.deps.stdout.isTTY === true && this.format === "table";
  }

  settings(): CliSettings {
    const o = this.opts;
    return readCliSettings({ apiUrl: o.apiUrl, token: o.token, context: o.context }, this.deps.env);
  }

  client(): ApiClient {
    if (!this.cached) {
      const s = this.settings();
      this.cached = new ApiClient({ baseUrl: s.baseUrl, token: s.token, source: s.source });
    }
    return this.cached;
  }

  print(text: string): void {
    if (text) this.deps.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Notes for people go to stderr, so `-o json` output stays parseable. */
  note(text: string): void {
    this.deps.stderr.write(`${text}\n`);
  }

  /** Prints `value` as JSON/YAML, or the human rendering for the table format. */
  printData(value: unknown, human: () => string): void {
    this.print(formatData(value, this.format) ?? human());
  }
}

/** Wraps an action so it receives a CommandContext; errors propagate to runCli. */
export function action<A extends unknown[]>(
  deps: CliDeps,
  results: { exitCode: number },
  fn: (ctx: CommandContext, ...args: A) => Promise<void>,
) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = new CommandContext(deps, cmd);
    await fn(ctx, ...(args.slice(0, -1) as A));
    results.exitCode = ctx.exitCode;
  };
}
