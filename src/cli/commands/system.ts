/** `status` (is the service up, ready, and what is running) and `context` (named API endpoints). */
import { Command } from "commander";
import { cliConfigPath, cliContextSchema, normalizeBaseUrl, readCliFile, writeCliFile } from "../../config/cli.js";
import { ConfigError } from "../../config/config.js";
import { action, type CliDeps } from "../context.js";
import { phaseOf, table } from "../output.js";
import { ExitCodes } from "../watch.js";

function statusCommand(deps: CliDeps, results: { exitCode: number }): Command {
  return new Command("status").description("the service's version and readiness, and how many runs are in each phase").action(
    action(deps, results, async (ctx) => {
      const client = ctx.client();
      const [health, ready, runs] = await Promise.all([client.health(), client.ready(), client.listRuns()]);
      const counts: Record<string, number> = {};
      for (const r of runs.items) counts[phaseOf(r)] = (counts[phaseOf(r)] ?? 0) + 1;
      const data = {
        apiUrl: client.baseUrl,
        version: health.version,
        ready: ready.status === "ready",
        checks: ready.checks,
        namespace: runs.namespace,
        runs: counts,
      };
      ctx.printData(data, () =>
        [
          `API:        ${client.baseUrl} (version ${health.version})`,
          `Ready:      ${data.ready ? "yes" : "no"}`,
          ...Object.entries(ready.checks)
            .filter(([, v]) => v !== true)
            .map(([k, v]) => `  ${k}: ${String(v)}`),
          `Namespace:  ${runs.namespace}`,
          `Runs:       ${
            Object.entries(counts)
              .map(([p, n]) => `${n} ${p}`)
              .join(", ") || "none"
          }`,
        ].join("\n"),
      );
      if (!data.ready) ctx.exitCode = ExitCodes.apiError;
    }),
  );
}

type Results = { exitCode: number };

function contextCommand(deps: CliDeps, results: Results): Command {
  const path = () => cliConfigPath(deps.env);
  const ctxCmd = new Command("context").description(
    `named API endpoints in the CLI config file (${"$ORCHESTRATOR_CLI_CONFIG"}, default ~/.config/orchestrator/cli.yaml)`,
  );
  for (const add of [addContextSet, addContextUse, addContextList, addContextDelete]) add(ctxCmd, deps, results, path);
  return ctxCmd;
}

/** `context set NAME --api-url URL [--token T | --token-file F]` (--api-url and --token are the program's own options). */
function addContextSet(ctxCmd: Command, deps: CliDeps, results: Results, path: () => string): void {
  ctxCmd
    .command("set")
    .argument("<name>", "context name")
    .description("create or update a context and make it current: --api-url URL [--token T | --token-file F]")
    .option("--token-file <path>", "file holding the bearer token (read on every call)")
    .action(
      action(deps, results, async (ctx, name: string, o: { tokenFile?: string }) => {
        const { apiUrl, token } = ctx.opts;
        if (!apiUrl) throw new ConfigError(`context set ${name} needs --api-url, e.g. --api-url http://127.0.0.1:8080.`);
        const parsed = cliContextSchema.safeParse({
          apiUrl: normalizeBaseUrl(apiUrl),
          ...(token ? { token } : {}),
          ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
        });
        if (!parsed.success) throw new ConfigError(`--api-url ${apiUrl}: not a URL; pass e.g. http://127.0.0.1:8080.`);
        const file = readCliFile(path());
        writeCliFile(path(), { currentContext: name, contexts: { ...file.contexts, [name]: parsed.data } });
        ctx.print(`Context ${name} saved in ${path()} and made current.`);
      }),
    );
}

function addContextUse(ctxCmd: Command, deps: CliDeps, results: Results, path: () => string): void {
  ctxCmd
    .command("use")
    .argument("<name>", "context name")
    .description("make a context current")
    .action(
      action(deps, results, async (ctx, name: string) => {
        const file = readCliFile(path());
        if (!file.contexts[name])
          throw new ConfigError(
            `No context ${name} in ${path()} (known: ${Object.keys(file.contexts).join(", ") || "none"}); create it with \`orchestrator context set ${name} --api-url URL\`.`,
          );
        writeCliFile(path(), { ...file, currentContext: name });
        ctx.print(`Current context: ${name}.`);
      }),
    );
}

function addContextList(ctxCmd: Command, deps: CliDeps, results: Results, path: () => string): void {
  ctxCmd
    .command("list")
    .alias("ls")
    .description("list contexts (tokens are not shown)")
    .action(
      action(deps, results, async (ctx) => {
        const file = readCliFile(path());
        const items = Object.entries(file.contexts).map(([name, c]) => ({
          name,
          current: name === file.currentContext,
          apiUrl: c.apiUrl,
          auth: c.token ? "token" : c.tokenFile ? `token file ${c.tokenFile}` : "none",
        }));
        ctx.printData(items, () =>
          items.length
            ? table(
                ["current", "name", "api url", "auth"],
                items.map((i) => [i.current ? "*" : "", i.name, i.apiUrl, i.auth]),
              )
            : `No contexts in ${path()}; create one with \`orchestrator context set NAME --api-url URL\`.`,
        );
      }),
    );
}

function addContextDelete(ctxCmd: Command, deps: CliDeps, results: Results, path: () => string): void {
  ctxCmd
    .command("delete")
    .argument("<name>", "context name")
    .description("remove a context")
    .action(
      action(deps, results, async (ctx, name: string) => {
        const file = readCliFile(path());
        if (!file.contexts[name]) throw new ConfigError(`No context ${name} in ${path()}.`);
        const { [name]: _gone, ...rest } = file.contexts;
        writeCliFile(path(), {
          contexts: rest,
          ...(file.currentContext && file.currentContext !== name ? { currentContext: file.currentContext } : {}),
        });
        ctx.print(`Context ${name} deleted.`);
      }),
    );
}

export function systemCommands(deps: CliDeps, results: { exitCode: number }): Command[] {
  return [statusCommand(deps, results), contextCommand(deps, results)];
}
