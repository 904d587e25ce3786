#!/usr/bin/env node
/** Entry point of the agent container (`orchestrator-agent-runner`): runs Claude Code on the task the channel prepared. */
import { mainAgent } from "../runner/agent-task.js";
import { readRunnerEnv } from "../runner/env.js";

process.exitCode = await mainAgent(readRunnerEnv());
