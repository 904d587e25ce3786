/**
 * The run identity's HOME (git config, Claude Code's sessions): its own directory of the volume,
 * mounted at AgentPaths.home in both containers and nowhere else. Earlier versions kept every
 * identity's HOME under the workspace (`.agent-home/<identity>`), where any agent on the same
 * workspace could read it; the channel moves the run identity's into its home before the agent
 * starts, so `--continue` finds the sessions it left there.
 */
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";

/** Staging directory of a move, inside the home (the same mount, so its entries can be renamed into place). */
const STAGING = ".orchestrator-moving";

/** Group read/write (and search for directories): the agent (another uid, same group) works in what the channel copies. */
function openToGroup(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      fs.chmodSync(full, fs.lstatSync(full).mode | 0o070);
      openToGroup(full);
    } else if (entry.isFile()) fs.chmodSync(full, fs.lstatSync(full).mode | 0o060);
  }
}

/**
 * Renames each entry of `from` into `to` where `to` has none; directories on both sides are
 * merged; anything else `to` already has wins (it was written later). Never follows a symlink:
 * the agent can plant them in its home.
 */
function mergeInto(from: string, to: string): number {
  let kept = 0;
  for (const name of fs.readdirSync(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const existing = fs.lstatSync(dst, { throwIfNoEntry: false });
    if (!existing) fs.renameSync(src, dst);
    else if (existing.isDirectory() && fs.lstatSync(src).isDirectory()) kept += mergeInto(src, dst);
    else kept += 1;
  }
  return kept;
}

/**
 * Moves `legacy` (the identity's HOME on the workspace, written by an earlier version) into
 * `home`. rename(2) does not cross mounts, so it is a copy into a staging directory, then renames
 * of complete entries, then the removal of `legacy`: an interrupted move is redone by the next run
 * and never leaves a half-copied file in the home. A move that fails (a file the channel may not
 * read) leaves `legacy` where it is, out of every agent's reach, and the run goes on.
 */
export function adoptLegacyHome(legacy: string, home: string, log: Logger): void {
  const found = fs.lstatSync(legacy, { throwIfNoEntry: false });
  if (!found) return;
  const staging = path.join(home, STAGING);
  try {
    if (!found.isDirectory()) throw new Error("not a directory");
    fs.rmSync(staging, { recursive: true, force: true });
    fs.cpSync(legacy, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    openToGroup(staging);
    const kept = mergeInto(staging, home);
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(legacy, { recursive: true, force: true });
    log.info({ from: legacy, to: home, kept }, "Moved the identity's home off the workspace");
  } catch (err) {
    log.warn(
      { from: legacy, to: home, err: (err as Error).message },
      "Could not move the identity's home off the workspace; it stays there, mounted into no agent",
    );
  }
}

/**
 * Writes `content` to `file` in a directory the agent can write to: an entry the agent left there
 * (a symlink to a file of the channel's) is removed first, and the file is created exclusively, so
 * the write never follows a link.
 */
export function writeOwnFile(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.rmSync(file, { recursive: true, force: true });
  fs.writeFileSync(file, content, { flag: "wx" });
}
