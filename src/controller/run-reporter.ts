/**
 * The run reporter's controller, registered with the manager: it reads the manager's shared
 * CodeRun informer (only runs started by a GitHub delivery are reported) and runs reportRun()
 * on the manager's workers (the leader's only); plus refusal replies handed over by the webhook
 * intake (enqueueRefusal), which only decides and never writes to GitHub itself. Refusals are
 * answered by the replica that received the delivery, leader or not: they exist only in its memory.
 * A run's report is retried with backoff while GitHub writes fail.
 */
import { Annotations, type CodeRun } from "../api/index.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../observability/logger.js";
import { originOf, parseRecord, type Refusal } from "../reporter/run-report.js";
import { replyRefusal, reportRun, type RunReporterGitHub } from "../reporter/run-reporter.js";
import type { Manager, RegisteredController } from "./manager.js";
import { Resources, type SharedInformer } from "./ports.js";

/** The one Kubernetes write of the reporter: its record annotation on the run. */
export interface RunReporterKube {
  annotateRun(namespace: string, name: string, annotations: Record<string, string>): Promise<void>;
}

export interface RunReporterOptions {
  manager: Manager;
  kube: RunReporterKube;
  github: RunReporterGitHub;
  config: Pick<Config, "namespace" | "play">;
  logger: Logger;
  workers?: number;
}

/** Refusals waiting for their reply; bounded, the oldest is dropped (and logged) beyond it. */
const MAX_PENDING_REFUSALS = 1000;

export class RunReporter {
  private readonly runs: SharedInformer<CodeRun>;
  private readonly registration: RegisteredController;
  private readonly refusalReplies: RegisteredController;
  private readonly refusals = new Map<string, Refusal>();
  private readonly log: Logger;

  constructor(private readonly opts: RunReporterOptions) {
    this.log = opts.logger.child({ component: "run-reporter" });
    this.runs = opts.manager.informer<CodeRun>(Resources.CodeRun);
    const enqueue = (r: CodeRun) => {
      if (r.metadata?.name && originOf(r)) this.registration.enqueue(`run/${r.metadata.name}`);
    };
    this.runs.on("add", enqueue);
    this.runs.on("update", enqueue);
    this.registration = opts.manager.add({
      name: "run-reporter",
      workers: opts.workers ?? 2,
      // No periodic pass: every report is driven by a change of its run (a resync would only
      // spend GitHub's rate limit on runs whose record already matches).
      resyncSeconds: 86_400,
      backoff: { baseDelayMs: 1000, maxDelayMs: 300_000 },
      informers: [this.runs as SharedInformer<unknown>],
      reconcile: async (key) => {
        await this.report(key);
        return {};
      },
      resyncKeys: () => [],
    });
    this.refusalReplies = opts.manager.add({
      name: "refusal-replies",
      workers: 1,
      resyncSeconds: 86_400,
      backoff: { baseDelayMs: 1000, maxDelayMs: 300_000 },
      informers: [],
      needsLeader: false,
      reconcile: async (key) => {
        await this.replyRefusal(key);
        return {};
      },
      resyncKeys: () => [],
    });
  }

  /** Called by the webhook intake for a refused delivery; the reply is written by a worker. */
  readonly enqueueRefusal = (r: Refusal): void => {
    if (this.refusals.size >= MAX_PENDING_REFUSALS) {
      const oldest = this.refusals.keys().next().value as string;
      this.refusals.delete(oldest);
      this.log.warn({ delivery: oldest }, "Dropped a refusal reply: too many pending");
    }
    this.refusals.set(r.delivery, r);
    this.refusalReplies.enqueue(r.delivery);
  };

  private async replyRefusal(id: string): Promise<void> {
    const r = this.refusals.get(id);
    if (!r) return;
    await replyRefusal(this.opts.github, r, this.log.child({ delivery: id }));
    this.refusals.delete(id);
  }

  private async report(key: string): Promise<void> {
    const id = key.slice(key.indexOf("/") + 1);
    const run = this.runs.get(id, this.opts.config.namespace);
    const origin = run ? originOf(run) : null;
    if (!run || !origin) return;
    const before = parseRecord(run);
    const { record, errors } = await reportRun({
      gh: this.opts.github,
      run,
      origin,
      record: before,
      publicUrl: this.opts.config.play.publicUrl,
      log: this.log.child({ coderun: id }),
    });
    const text = JSON.stringify(record);
    if (text !== JSON.stringify(before))
      await this.opts.kube.annotateRun(this.opts.config.namespace, id, { [Annotations.githubReport]: text });
    if (errors.length) throw new Error(errors.join("; "));
  }
}
