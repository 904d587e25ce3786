/** Prometheus metrics shared by the HTTP service, the webhook intake and the controller. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route" | "status">;
  webhookDeliveries: Counter<"event" | "outcome">;
  queueDepth: Gauge<"controller">;
  reconcileDuration: Histogram<"controller" | "result">;
  runsByPhase: Gauge<"kind" | "phase">;
  runDuration: Histogram<"kind" | "phase">;
  queueWait: Histogram<"controller">;
  leader: Gauge<"identity">;
  leaderTransitions: Counter;
  clusterReachable: Gauge<"cluster">;
  clusterActiveRuns: Gauge<"cluster">;
  clusterJobsCreated: Counter<"cluster">;
}

/** Creates a registry of its own (tests create several apps in one process). */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "orchestrator_" });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: "orchestrator_http_requests_total",
      help: "HTTP requests by route and status.",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    httpDuration: new Histogram({
      name: "orchestrator_http_request_duration_seconds",
      help: "HTTP request latency.",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: "orchestrator_webhook_deliveries_total",
      help: "GitHub webhook deliveries by event and outcome (created, duplicate, ignored, rejected, unauthorized, error).",
      labelNames: ["event", "outcome"],
      registers,
    }),
    ...controllerMetrics(registers),
  };
}

/** The manager's and the controllers' metrics (queues, reconciles, runs, leader election). */
function controllerMetrics(registers: Registry[]) {
  return {
    queueDepth: new Gauge({
      name: "orchestrator_workqueue_depth",
      help: "Keys waiting in the controller work queue.",
      labelNames: ["controller"],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: "orchestrator_reconcile_duration_seconds",
      help: "Duration of one reconcile.",
      labelNames: ["controller", "result"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    runsByPhase: new Gauge({
      name: "orchestrator_runs",
      help: "Runs by kind and phase, as seen by the controller's informers.",
      labelNames: ["kind", "phase"],
      registers,
    }),
    runDuration: new Histogram({
      name: "orchestrator_run_duration_seconds",
      help: "Duration of finished runs from start to completion.",
      labelNames: ["kind", "phase"],
      buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
      registers,
    }),
    queueWait: new Histogram({
      name: "orchestrator_workqueue_wait_seconds",
      help: "Time a key waited in the queue before its reconcile started.",
      labelNames: ["controller"],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers,
    }),
    leader: new Gauge({
      name: "orchestrator_leader",
      help: "1 when this replica holds the leader Lease and reconciles, else 0 (label: this replica's identity).",
      labelNames: ["identity"],
      registers,
    }),
    leaderTransitions: new Counter({
      name: "orchestrator_leader_changes_total",
      help: "Changes of the leader Lease's holder seen by this replica (including a release).",
      registers,
    }),
    ...clusterMetrics(registers),
  };
}

/** Per execution cluster (label `cluster`; "home" is the controller's own). */
function clusterMetrics(registers: Registry[]) {
  return {
    clusterReachable: new Gauge({
      name: "orchestrator_cluster_reachable",
      help: "1 when the execution cluster answers and its Job cache is synced, else 0 (home is the controller's own).",
      labelNames: ["cluster"],
      registers,
    }),
    clusterActiveRuns: new Gauge({
      name: "orchestrator_cluster_active_runs",
      help: "Runs with an unfinished Job in the execution cluster.",
      labelNames: ["cluster"],
      registers,
    }),
    clusterJobsCreated: new Counter({
      name: "orchestrator_cluster_jobs_created_total",
      help: "Jobs the controller created in the execution cluster.",
      labelNames: ["cluster"],
      registers,
    }),
  };
}
