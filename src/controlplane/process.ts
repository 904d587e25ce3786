// Long-running child processes (etcd, kube-apiserver, ...) with captured output and
// crash-safe cleanup.
//
// Cleanup has three layers, because a test run can end in several ways:
//   1. ControlPlane.stop(): graceful SIGTERM, SIGKILL after a grace period, temp dir removed.
//   2. process 'exit' / SIGINT / SIGTERM / SIGHUP handlers in this module: SIGKILL every
//      registered child and remove registered temp dirs synchronously.
//   3. A detached watchdog shell per temp root that notices when this Node process is gone
//      (even after SIGKILL, when no handler can run) and kills the children it was told about.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { finished } from "node:stream";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the binary could not be spawned at all (ENOENT, EACCES, ...). */
  error?: Error;
}

export interface StartProcessOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Every output line is appended here (the file lives in the control plane's temp root). */
  logFile?: string;
  /** Ring buffer size per stream. */
  maxLines?: number;
}

/** Fixed-size line buffer; keeps the most recent lines. */
export class RingBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  tail(n: number): string[] {
    return this.lines.slice(-n);
  }
  get size(): number {
    return this.lines.length;
  }
}

const live = new Set<ManagedProcess>();
const tempRoots = new Set<string>();
const watchdogs = new Map<string, ChildProcess>();
let handlersInstalled = false;

/** A spawned server process. Output goes to ring buffers and an optional log file. */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly stdout: RingBuffer;
  readonly stderr: RingBuffer;
  /** Resolves once the process has exited (or failed to spawn). Never rejects. */
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;
  /** performance.now() at spawn, for start-up timing. */
  readonly startedAt = performance.now();
  private readonly child: ChildProcess;
  private readonly log: fs.WriteStream | undefined;

  private constructor(opts: StartProcessOptions) {
    this.name = opts.name;
    const max = opts.maxLines ?? 1000;
    this.stdout = new RingBuffer(max);
    this.stderr = new RingBuffer(max);
    this.log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    // A log write failing (e.g. temp root removed under us) must not crash the test process.
    this.log?.on("error", () => {});
    // detached: own process group, so (a) a terminal Ctrl-C does not hit the children before
    // we can stop them in order, and (b) we can signal the whole group.
    this.child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.pid = this.child.pid ?? -1;
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        live.delete(this);
        if (!this.log) return resolve(info);
        // Resolve once the log file is flushed, so callers can read it; errors are ignored.
        finished(this.log, () => resolve(info));
        this.log.end();
      };
      this.child.once("error", (error) => done({ code: null, signal: null, error }));
      // 'close' (not 'exit') so the stdio streams are drained and the stderr tail is complete.
      this.child.once("close", (code, signal) => done({ code, signal }));
    });
    this.capture(this.child.stdout, this.stdout);
    this.capture(this.child.stderr, this.stderr);
    if (this.pid > 0) live.add(this);
  }

  static start(opts: StartProcessOptions): ManagedProcess {
    installExitHandlers();
    return new ManagedProcess(opts);
  }

  private capture(stream: NodeJS.ReadableStream | null, ring: RingBuffer): void {
    if (!stream) return;
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) this.addLine(ring, line);
    });
    stream.on("end", () => {
      if (partial) this.addLine(ring, partial);
      partial = "";
    });
  }

  private addLine(ring: RingBuffer, line: string): void {
    ring.push(line);
    this.log?.write(line + "\n");
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Last lines of stderr (falling back to stdout when stderr is empty), for error messages. */
  outputTail(n = 40): string {
    const lines = this.stderr.size > 0 ? this.stderr.tail(n) : this.stdout.tail(n);
    return lines.join("\n");
  }

  /** Error describing an unexpected exit, including exit code and stderr tail. */
  exitError(context: string): Error {
    const info = this.exitInfo;
    let how: string;
    if (!info) how = "is still running";
    else if (info.error) how = `could not be started: ${info.error.message}`;
    else if (info.signal) how = `was killed by signal ${info.signal}`;
    else how = `exited with code ${info.code}`;
    const tail = this.outputTail();
    return new Error(`${this.name} ${how} ${context}` + (tail ? `\n--- ${this.name} stderr (tail) ---\n${tail}` : " (no output)"));
  }

  /** SIGTERM the process group, SIGKILL after graceMs, resolve when exited. */
  async stop(graceMs = 10_000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    signalGroup(this.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(this.pid, "SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Synchronous last-resort kill (used from the 'exit' handler). */
  killNow(): void {
    if (this.exitInfo) return;
    signalGroup(this.pid, "SIGKILL");
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/**
 * For the watchdog shells: fd 9 becomes a pipe nobody writes to, so WAIT_A_SECOND (`read -t 1
 * -u 9`) waits a second without starting a process (a `sleep` a second per watchdog was a steady
 * share of the CPU of a 2-core machine running the cluster).
 */
export const WAIT_WITHOUT_PROCESSES = "exec 9<> <(:)";
export const WAIT_A_SECOND = "read -r -t 1 -u 9 _";

/**
 * Register a temp root for removal on exit, and start a watchdog that cleans it up (and kills
 * the pids written to `<root>/.pids`) if this process dies without running its handlers.
 */
export function registerTempRoot(root: string): void {
  installExitHandlers();
  tempRoots.add(root);
  const script = [
    'parent="$1"; root="$2"',
    WAIT_WITHOUT_PROCESSES,
    // Poll: exit quietly once the root is gone (normal stop), act once the parent is gone.
    `while kill -0 "$parent" 2>/dev/null && [ -d "$root" ]; do ${WAIT_A_SECOND}; done`,
    '[ -d "$root" ] || exit 0',
    'if [ -f "$root/.pids" ]; then while read -r p; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done < "$root/.pids"; fi',
    'sleep 0.5; rm -rf "$root"',
  ].join("\n");
  const dog = spawn("bash", ["-c", script, "orchestrator-cp-watchdog", String(process.pid), root], {
    detached: true,
    stdio: "ignore",
  });
  dog.unref();
  watchdogs.set(root, dog);
}

/** Tell the watchdog of `root` about a child pid. */
export function recordPid(root: string, pid: number): void {
  if (pid > 0) fs.appendFileSync(path.join(root, ".pids"), `${pid}\n`);
}

/** Remove a temp root and stop its watchdog (normal shutdown path). */
export function releaseTempRoot(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
  tempRoots.delete(root);
  const dog = watchdogs.get(root);
  watchdogs.delete(root);
  if (dog?.pid && dog.exitCode === null) {
    try {
      process.kill(dog.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** Kill every live child and remove every temp root, synchronously. */
export function cleanupAllSync(): void {
  for (const p of live) p.killNow();
  for (const root of tempRoots) {
    try {
      fs.rmSync(root, { recursive: true, force: true });
    } catch {
      /* best effort; the watchdog retries */
    }
  }
  for (const dog of watchdogs.values()) {
    if (dog.pid && dog.exitCode === null) {
      try {
        process.kill(dog.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  }
  tempRoots.clear();
  watchdogs.clear();
}

/** Number of control-plane children still running (tests use it to assert no strays). */
export function liveProcessCount(): number {
  return live.size;
}

const signalNumbers: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = () => {
      // Someone else (e.g. `npm run cluster`) listens too: they own graceful shutdown and will
      // exit, which triggers the 'exit' cleanup above. Alone, we must restore the default
      // behaviour of dying on the signal, after cleaning up.
      if (process.listenerCount(sig) > 1) return;
      cleanupAllSync();
      process.exit(128 + (signalNumbers[sig] ?? 0));
    };
    process.on(sig, handler);
  }
}
