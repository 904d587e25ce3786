// A cross-process lock per cache entry: two processes that need the same layer at once (a node
// harness and an image test in parallel vitest workers) build it once; the second waits for it.
import fs from "node:fs";
import path from "node:path";

/**
 * Runs `fn` holding the lock directory `lockDir` (mkdir is atomic). A holder that died (its pid is
 * gone) leaves a stale lock, which is taken over. `ready()` is checked while waiting, so a waiter
 * returns as soon as the holder has produced the entry.
 */
export async function withLock<T>(lockDir: string, ready: () => T | undefined, fn: () => Promise<T>, pollMs = 500): Promise<T> {
  for (;;) {
    const done = ready();
    if (done !== undefined) return done;
    if (tryAcquire(lockDir)) break;
    if (!holderAlive(lockDir)) {
      fs.rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    return ready() ?? (await fn());
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

function tryAcquire(lockDir: string): boolean {
  try {
    fs.mkdirSync(lockDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  fs.writeFileSync(path.join(lockDir, "pid"), String(process.pid));
  return true;
}

function holderAlive(lockDir: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(lockDir, "pid"), "utf8"));
  } catch {
    // Just created, pid not written yet: treat as alive; a crash in that instant is rare and the
    // next poll sees the directory without a pid again only if it really is stale.
    return ageMs(lockDir) < 10_000;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function ageMs(p: string): number {
  try {
    return Date.now() - fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}
