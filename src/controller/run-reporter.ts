/**
 * The run reporter's controller: an informer on CodeRuns (only runs started by a GitHub delivery
 * are reported), a work queue, and workers running reportRun(); plus refusal replies handed over
 * by the webhook intake (enqueueRefusal), which only decides and never writes to GitHub itself.
 * A run's report is retried with backoff while GitHub writes fail.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { Annotations, GROUP, Plurals, VERSION, type CodeRun } from "../api/index.js";
import type { Config } from "../config/schema.js";
import { WorkQueue } from "./queue.js";
import type { KubeClients } from "../kube/clients.js";
import { createInformer, type ResilientInformer } from "../kube/informer.js";
import type { Logger } from "../observability/logger.js";
import { originOf, parseRecord, type Refusal } from "../reporter/run-report.js";
import { replyRefusal, reportRun, type RunReporterGitHub } from "../reporter/run-reporter.js";

/** The one Kubernetes write of the reporter: its record annotation on the run. */
export interface RunReporterKube {
  annotateRun(namespace: string, name: string, annotations: Record<string, string>): Promise<void>;
}

export interface RunReporterOptions {
  clients: KubeClients;
  kube: RunReporterKube;
  github: RunReporterGitHub;
  config: Pick<Config, "namespace" | "play">;
  logger: Logger;
  workers?: number;
}

/** Refusals waiting for their reply; bounded, the oldest is dropped (and logged) beyond it. */
const MAX_PENDING_REFUSALS = 1000;

export class RunReporter {
  readonly queue = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 300_000 });
  private readonly runs: ResilientInformer<CodeRun & KubernetesObject>;
  private readonly refusals = new Map<string, Refusal>();
  private readonly log: Logger;
  private workers: Promise<void>[] = [];

  constructor(private readonly opts: RunReporterOptions) {
    const ns = opts.config.namespace;
    this.log = opts.logger.child({ component: "run-reporter" });
    this.runs = createInformer<CodeRun & KubernetesObject>(
      opts.clients.kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${Plurals.CodeRun}`,
      () =>
        opts.clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: Plurals.CodeRun }) as never,
      undefined,
      this.log,
    );
    const enqueue = (r: CodeRun) => {
      if (r.metadata?.name && originOf(r)) this.queue.add(`run/${r.metadata.name}`);
    };
    this.runs.on("add", enqueue);
    this.runs.on("update", enqueue);
  }

  async start(): Promise<void> {
    await this.runs.start();
    for (let i = 0; i < (this.opts.workers ?? 2); i++) this.workers.push(this.worker());
    this.log.info({ namespace: this.opts.config.namespace }, "Started run reporter");
  }

  async stop(): Promise<void> {
    this.queue.shutDown();
    await this.runs.stop();
    await Promise.all(this.workers);
  }

  isReady(): boolean {
    return this.runs.healthy;
  }

  /** Called by the webhook intake for a refused delivery; the reply is written by a worker. */
  readonly enqueueRefusal = (r: Refusal): void => {
    if (this.refusals.size >= MAX_PENDING_REFUSALS) {
      const oldest = this.refusals.keys().next().value as string;
      this.refusals.delete(oldest);
      this.log.warn({ delivery: oldest }, "Dropped a refusal reply: too many pending");
    }
    this.refusals.set(r.delivery, r);
    this.queue.add(`refusal/${r.delivery}`);
  };

  private async handle(key: string): Promise<void> {
    const [kind, id] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
    if (kind === "refusal") {
      const r = this.refusals.get(id);
      if (!r) return;
      await replyRefusal(this.opts.github, r, this.log.child({ delivery: id }));
      this.refusals.delete(id);
      return;
    }
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

  private async worker(): Promise<void> {
    for (;;) {
      const item = await this.queue.get();
      if (!item) return;
      try {
        await this.handle(item.key);
        this.queue.forget(item.key);
      } catch (e) {
        const delay = this.queue.addRateLimited(item.key);
        this.log.warn({ key: item.key, err: (e as Error).message, retryInMs: delay }, "Failed to report on GitHub; will retry");
      } finally {
        this.queue.done(item.key);
      }
    }
  }
}
