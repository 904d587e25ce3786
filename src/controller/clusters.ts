/**
 * The clusters runs execute in: the home cluster (the controller's own) and the execution
 * clusters registered by cluster Secrets (labelled Labels.cluster, key `kubeconfig`) in the
 * controller's namespace. Each has its own informers over Jobs, Pods, Secrets and claims (made by
 * the manager, keyed by cluster) and its own workload client. A registered cluster is reachable
 * while a ping answers and its Job cache is synced; otherwise its runs wait (ClusterUnreachable).
 */
import type { V1Job, V1PersistentVolumeClaim, V1Pod, V1Secret } from "@kubernetes/client-node";
import { CLUSTER_KUBECONFIG_KEY, HOME_CLUSTER, Labels, MANAGED_BY } from "../api/index.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Manager } from "./manager.js";
import {
  Resources,
  type ClusterConnector,
  type ClusterTarget,
  type ControllerKube,
  type InformerSource,
  type SharedInformer,
} from "./ports.js";

const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PING_INTERVAL_MS = 5000;

/** One cluster's caches and client. */
export interface ClusterView {
  name: string;
  kube: ControllerKube;
  jobs: SharedInformer<V1Job>;
  pods: SharedInformer<V1Pod>;
  secrets: SharedInformer<V1Secret>;
  pvcs: SharedInformer<V1PersistentVolumeClaim>;
  /** Execution clusters only. */
  ping?: () => Promise<void>;
  pingOk: boolean;
  lastError: string | undefined;
  /** The kubeconfig it was made from (a changed Secret replaces the cluster). */
  kubeconfig?: string;
}

/** What the run controller does with a cluster's objects. */
export interface ClusterHandlers {
  onJob(cluster: string, job: V1Job, deleted: boolean): void;
  onPod(cluster: string, pod: V1Pod, deleted: boolean): void;
  /**
   * A cluster became reachable or unreachable (reset false), or was registered, replaced or
   * removed (reset true: forget what was cached of it). Its waiting runs may go on.
   */
  onClusterChange(cluster: string, reset: boolean): void;
}

export interface ClusterSetOptions {
  manager: Manager;
  homeKube: ControllerKube;
  connector?: ClusterConnector;
  handlers: ClusterHandlers;
  logger: Logger;
  metrics?: Metrics;
}

export class ClusterSet {
  readonly home: ClusterView;
  /** The informer of cluster Secrets in the home namespace (values kept: the kubeconfigs). */
  readonly secretsInformer: SharedInformer<V1Secret> | undefined;
  private readonly views = new Map<string, ClusterView>();
  /** Cluster Secrets that could not be used, by cluster name: why. */
  private readonly broken = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ClusterSetOptions) {
    const m = opts.manager;
    this.home = this.attach({
      name: HOME_CLUSTER,
      kube: opts.homeKube,
      ...informersOf((r, sel) => m.informer(r, sel)),
      pingOk: true,
      lastError: undefined,
    });
    this.views.set(HOME_CLUSTER, this.home);
    if (opts.connector) {
      const inf = m.informer<V1Secret>(Resources.ClusterSecret, Labels.cluster);
      inf.on("add", (s) => this.onSecret(s, false));
      inf.on("update", (s) => this.onSecret(s, false));
      inf.on("delete", (s) => this.onSecret(s, true));
      this.secretsInformer = inf;
    }
  }

  /** The home cluster's informers (they gate the controller's readiness; execution clusters' do not). */
  homeInformers(): SharedInformer<unknown>[] {
    const h = this.home;
    return [h.jobs, h.pods, h.secrets, h.pvcs, ...(this.secretsInformer ? [this.secretsInformer] : [])] as SharedInformer<unknown>[];
  }

  get(name: string): ClusterView | undefined {
    return this.views.get(name);
  }

  all(): ClusterView[] {
    return [...this.views.values()];
  }

  /** The run's cluster as the reconciler uses it; undefined when no such cluster is registered. */
  target(name: string): ClusterTarget | undefined {
    const v = this.views.get(name);
    if (!v) return undefined;
    const reachable = v.pingOk && v.jobs.healthy;
    const lastError = reachable ? undefined : (v.lastError ?? v.jobs.lastError ?? "its Job cache has not synced yet");
    return { name, kube: v.kube, reachable, lastError };
  }

  /** Why a cluster Secret of this name is unusable, if one is. */
  problem(name: string): string | undefined {
    return this.broken.get(name);
  }

  /** Pings the execution clusters every few seconds (reachability) until stop(). */
  startPinging(): void {
    this.timer ??= setInterval(() => void this.pingAll(), PING_INTERVAL_MS);
    this.timer.unref();
    void this.pingAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async pingAll(): Promise<void> {
    await Promise.all(
      this.all()
        .filter((v) => v.ping)
        .map(async (v) => {
          const was = v.pingOk && v.jobs.healthy;
          try {
            await v.ping?.();
            v.pingOk = true;
            v.lastError = undefined;
          } catch (e) {
            if (v.pingOk) this.opts.logger.warn({ cluster: v.name, err: (e as Error).message }, "Execution cluster unreachable");
            v.pingOk = false;
            v.lastError = (e as Error).message;
          }
          // It answers again: its informers retry now instead of at the end of their backoff.
          if (v.pingOk) for (const inf of [v.jobs, v.pods, v.secrets, v.pvcs]) inf.retryNow?.();
          const now = v.pingOk && v.jobs.healthy;
          this.opts.metrics?.clusterReachable.set({ cluster: v.name }, now ? 1 : 0);
          if (now && !was) this.opts.logger.info({ cluster: v.name }, "Execution cluster reachable");
          if (now !== was) this.opts.handlers.onClusterChange(v.name, false);
        }),
    );
  }

  /** A cluster Secret was added, changed or removed: connect, replace or drop that cluster. */
  private onSecret(secret: V1Secret, deleted: boolean): void {
    const name = secret.metadata?.labels?.[Labels.cluster] ?? "";
    const log = this.opts.logger.child({ cluster: name, secret: secret.metadata?.name });
    const kubeconfig = Buffer.from(secret.data?.[CLUSTER_KUBECONFIG_KEY] ?? "", "base64").toString("utf8");
    const existing = this.views.get(name);
    if (name === HOME_CLUSTER)
      return void log.error(`Ignored cluster Secret: "${HOME_CLUSTER}" is the controller's own cluster; rename it`);
    if (!CLUSTER_NAME.test(name) || name.length > 63)
      return void log.error("Ignored cluster Secret: its orchestrator.platform/cluster label must be a DNS label (the cluster's name)");
    if (!deleted && existing?.kubeconfig === kubeconfig) return;
    if (existing) void this.drop(name);
    this.broken.delete(name);
    if (deleted) {
      log.info("Removed execution cluster (its Secret was deleted)");
      return this.opts.handlers.onClusterChange(name, true);
    }
    try {
      if (!kubeconfig) throw new Error(`it has no "${CLUSTER_KUBECONFIG_KEY}" key`);
      this.connect(name, kubeconfig);
      log.info(existing ? "Replaced execution cluster (its Secret changed)" : "Registered execution cluster");
    } catch (e) {
      const why = `Cluster Secret ${secret.metadata?.name} of cluster ${name} cannot be used: ${(e as Error).message}. Fix the Secret (infra/scripts/register-cluster.sh writes a valid one).`;
      this.broken.set(name, why);
      log.error(why);
    }
    this.opts.handlers.onClusterChange(name, true);
  }

  private connect(name: string, kubeconfig: string): void {
    const conn = this.opts.connector!.connect(name, kubeconfig);
    const m = this.opts.manager;
    const source: InformerSource = conn.source;
    const view = this.attach({
      name,
      kube: conn.kube,
      ...informersOf((r, sel) => m.clusterInformer(name, source, r, sel)),
      ping: conn.ping,
      pingOk: false,
      lastError: "not contacted yet",
      kubeconfig,
    });
    this.views.set(name, view);
    if (this.timer) void this.pingAll();
  }

  private async drop(name: string): Promise<void> {
    this.views.delete(name);
    this.opts.metrics?.clusterReachable.remove({ cluster: name });
    await this.opts.manager.dropCluster(name);
  }

  private attach(view: ClusterView): ClusterView {
    const { handlers } = this.opts;
    const alive = () => this.views.get(view.name) === view || view.name === HOME_CLUSTER;
    view.jobs.on("add", (j) => alive() && handlers.onJob(view.name, j, false));
    view.jobs.on("update", (j) => alive() && handlers.onJob(view.name, j, false));
    view.jobs.on("delete", (j) => alive() && handlers.onJob(view.name, j, true));
    view.pods.on("add", (p) => alive() && handlers.onPod(view.name, p, false));
    view.pods.on("update", (p) => alive() && handlers.onPod(view.name, p, false));
    view.pods.on("delete", (p) => alive() && handlers.onPod(view.name, p, true));
    return view;
  }
}

type InformerOf = <T>(resource: (typeof Resources)[keyof typeof Resources], labelSelector?: string) => SharedInformer<T>;

/** The four informers a cluster needs, from the manager (home) or the cluster's own source. */
function informersOf(make: InformerOf): Pick<ClusterView, "jobs" | "pods" | "secrets" | "pvcs"> {
  const selector = `${Labels.managedBy}=${MANAGED_BY}`;
  return {
    jobs: make<V1Job>(Resources.Job, selector),
    pods: make<V1Pod>(Resources.Pod, selector),
    secrets: make<V1Secret>(Resources.Secret),
    pvcs: make<V1PersistentVolumeClaim>(Resources.PersistentVolumeClaim),
  };
}
