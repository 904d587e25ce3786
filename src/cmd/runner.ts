#!/usr/bin/env node
/** Entry point of the agent runner (`orchestrator-agent-runner`), the Job container's command. */
import { readRunnerEnv } from "../runner/env.js";
import { main } from "../runner/run.js";

process.exitCode = await main(readRunnerEnv());
