/** The agents roster: names resolve case-insensitively ("rex", "Rex" and "REX" are one agent). */
import type { Config } from "./schema.js";

export type RosterAgent = Config["agents"][string];

export function findAgent(config: Pick<Config, "agents">, name: string | undefined): RosterAgent | undefined {
  if (!name) return undefined;
  const key = Object.keys(config.agents).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : config.agents[key];
}
