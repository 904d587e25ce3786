#!/usr/bin/env node
/** Entry point of the channel container (`orchestrator-agent-channel`): the credentialed side of an agent run. */
import { mainChannel } from "../runner/channel.js";
import { readRunnerEnv } from "../runner/env.js";

process.exitCode = await mainChannel(readRunnerEnv());
