// A real Kubernetes node for the local cluster: containerd + runc + bridge CNI + kubelet, with
// kube-proxy (so pods reach the API server through the `kubernetes` Service), CoreDNS (cluster
// DNS: the `kube-dns` Service resolves cluster.local and forwards other names to the host's
// resolvers) and the local-path provisioner (StorageClass `local-path`). Pods run real
// containers from images imported into containerd without a registry.
//
// The node is one per machine: it uses fixed paths (NODE_PATHS), sysctls, iptables and a bridge.
// hack/node/cleanup.sh undoes all of it; it runs before every start (leftovers of a crashed run),
// at stop, and from a watchdog when the process that started the node dies without stopping it.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, DiscoveryV1Api, RbacAuthorizationV1Api, StorageV1Api, type KubeConfig } from "@kubernetes/client-node";
import { execa } from "execa";
import { isExecutable, repoRoot } from "./assets.js";
import type { ControlPlaneCerts, NodeIdentity } from "./certs.js";
import {
  CGROUP_ROOT,
  CLUSTER_DNS,
  containerdConfigToml,
  corefile,
  cniConflist,
  CRI_NAMESPACE,
  hostResolvers,
  kubeletConfigYaml,
  kubeProxyConfigYaml,
  LOCAL_PATH,
  localPathConfigData,
  NODE_NAME,
  NODE_PATHS,
  nodeResolvConf,
  runPaths,
} from "./node-config.js";
import { WAIT_A_SECOND, WAIT_WITHOUT_PROCESSES, type ManagedProcess } from "./process.js";

/** Programs the node needs from the host, and the Debian packages that provide them. */
const HOST_PROGRAMS: Record<string, string> = {
  containerd: "containerd",
  ctr: "containerd",
  runc: "runc",
  iptables: "iptables",
  "iptables-save": "iptables",
  conntrack: "conntrack",
  ip: "iproute2",
};
const CNI_PLUGINS = ["bridge", "host-local", "portmap", "loopback"];
export const NODE_BINARIES = ["kubelet", "kube-proxy", "coredns"] as const;

/** Sysctls that kubelet and the bridge plugin change; their values before the first start are restored at stop. */
export const TOUCHED_SYSCTLS = [
  "vm.overcommit_memory",
  "kernel.panic",
  "kernel.panic_on_oops",
  "net.ipv4.ip_forward",
  "net.bridge.bridge-nf-call-iptables",
  "net.ipv4.conf.all.route_localnet",
];
/** Paths kubelet/containerd/CNI create outside NODE_PATHS; removed at clean-up if they did not exist before. */
const FIXED_PATHS = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/var/lib/cni",
  "/run/containerd",
  "/run/netns",
  "/var/run/netns",
  "/opt/cni",
];

export type NodeSupport = { ok: true; ip: string } | { ok: false; reason: string };

/**
 * Whether this machine can run the real node, and if not, one line saying why and what to do.
 * Needs root on Linux, the Debian packages containerd, runc, containernetworking-plugins,
 * iptables, conntrack, overlayfs, a default route, and kubelet + kube-proxy in `binDir`.
 */
export function checkNodeSupport(binDir: string): NodeSupport {
  if (process.platform !== "linux") return { ok: false, reason: `a real node needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "a real node needs root (containerd, mounts, iptables): run as root" };
  const missingPkgs = new Set<string>();
  for (const [prog, pkg] of Object.entries(HOST_PROGRAMS)) if (!onPath(prog)) missingPkgs.add(pkg);
  if (CNI_PLUGINS.some((p) => !fs.existsSync(`/usr/lib/cni/${p}`))) missingPkgs.add("containernetworking-plugins");
  if (missingPkgs.size) return { ok: false, reason: `missing host packages: apt-get install -y ${[...missingPkgs].sort().join(" ")}` };
  const missingBins = NODE_BINARIES.filter((b) => !isExecutable(path.join(binDir, b)));
  if (missingBins.length) return { ok: false, reason: `${missingBins.join(", ")} not in ${binDir}: run 'npm run control-plane:build'` };
  if (!fs.readFileSync("/proc/filesystems", "utf8").includes("overlay"))
    return { ok: false, reason: "the kernel has no overlayfs (containerd's snapshotter needs it)" };
  if (!fs.existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables"))
    return { ok: false, reason: "the kernel has no br_netfilter (modprobe br_netfilter), which Services on the pod bridge need" };
  const ip = defaultRouteIp();
  if (!ip) return { ok: false, reason: "no default route: the node needs a non-loopback IP (kubelet refuses 127.0.0.1)" };
  return { ok: true, ip };
}

/** IPv4 address of the interface holding the default route (kubelet's --node-ip). */
export function defaultRouteIp(routeTable = readOrEmpty("/proc/net/route"), ifaces = os.networkInterfaces()): string | undefined {
  for (const line of routeTable.split("\n").slice(1)) {
    const [iface, dest] = line.trim().split(/\s+/);
    if (dest !== "00000000" || !iface) continue;
    const addr = ifaces[iface]?.find((a) => a.family === "IPv4" && !a.internal);
    if (addr) return addr.address;
  }
  return undefined;
}

export interface ImageArchive {
  /** Image reference inside the archive, e.g. "orchestrator/pause:3.10-1". */
  ref: string;
  /** docker-archive or OCI archive tar that `ctr images import` reads. */
  archive: string;
  /** Manifest digest: an image whose tag stays but whose content changed is imported again. */
  digest?: string;
}

export interface RealNodeOptions {
  binDir: string;
  /** Root of the control plane's temp dir; the node's config files and logs go below it. */
  cpRoot: string;
  certs: ControlPlaneCerts;
  identity: NodeIdentity;
  /** Admin kubeconfig (the provisioner) and kubeconfig factory for node identities. */
  adminKubeconfig: string;
  kubeconfigFor: (user: { cert: string; key: string }, file: string) => void;
  kubeConfig: KubeConfig;
  /** Sandbox (pause) image; must be among `images`. */
  sandboxImage: string;
  /** Helper image of the local-path provisioner (needs /bin/sh, mkdir, rm); among `images`. */
  helperImage: string;
  images: ImageArchive[];
  ports: { kubelet: number; kubeletHealthz: number; kubeProxyMetrics: number; corednsReady: number };
  /** Where CoreDNS forwards names outside the cluster ("ip:port"); default: /etc/resolv.conf's nameservers. */
  dnsUpstreams?: string[];
  log: (line: string) => void;
  spawn: (name: string, command: string, args: string[]) => ManagedProcess;
  waitUntil: (what: string, check: () => Promise<boolean>, focus?: ManagedProcess, timeoutMs?: number) => Promise<void>;
}

/** Milliseconds per step of the node's start. */
export type NodeStartupTimes = Partial<
  Record<"cleanup" | "containerd" | "images" | "kubelet" | "kube-proxy" | "coredns" | "local-path", number>
>;

export const CLEANUP_SCRIPT = () => path.join(repoRoot(), "hack", "node", "cleanup.sh");

export class RealNode {
  readonly name = NODE_NAME;
  readonly ip: string;
  readonly startupMs: NodeStartupTimes = {};
  private stopped: Promise<void> | undefined;
  private containerd: ManagedProcess | undefined;
  private watchdog: ReturnType<typeof spawn> | undefined;

  private constructor(private readonly o: RealNodeOptions) {
    this.ip = o.identity.ip;
  }

  static async start(o: RealNodeOptions): Promise<RealNode> {
    const node = new RealNode(o);
    await node.acquireMachine();
    try {
      await node.boot();
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  /** Stops the node's processes and undoes every host change (cleanup.sh). Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await runCleanup(this.o.log);
      if (readOrEmpty(runPaths.lock).trim() === String(process.pid)) fs.rmSync(runPaths.lock, { force: true });
      if (this.watchdog?.pid) {
        try {
          process.kill(this.watchdog.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    })();
    return this.stopped;
  }

  /** Runs a command in the node's containerd namespace (`ctr -n k8s.io ...`). */
  ctr(args: string[]): Promise<string> {
    return execa("ctr", ["--address", runPaths.containerdSocket, "-n", CRI_NAMESPACE, ...args]).then((r) => r.stdout);
  }

  // ---------------------------------------------------------------------------------------

  /**
   * One real node per machine: a lock file naming the owner's pid. A live owner means another
   * cluster runs a real node; a dead one means a crashed run whose leftovers cleanup.sh removes.
   */
  private async acquireMachine(): Promise<void> {
    const lock = runPaths.lock;
    const deadline = Date.now() + 10 * 60_000;
    let told = false;
    for (;;) {
      try {
        fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const owner = Number(readOrEmpty(lock).trim());
      if (owner && owner !== process.pid && alive(owner)) {
        if (Date.now() > deadline)
          throw new Error(`the real node is in use by process ${owner} (lock ${lock}); stop that cluster, or use the simulated node`);
        if (!told) this.o.log(`waiting for the real node held by process ${owner} to stop`);
        told = true;
        await sleep(1000);
        continue;
      }
      fs.rmSync(lock, { force: true });
    }
    this.startWatchdog();
  }

  /** A detached shell that runs cleanup.sh if this process dies without stopping the node. */
  private startWatchdog(): void {
    const script = [
      'parent="$1"; lock="$2"; cleanup="$3"',
      WAIT_WITHOUT_PROCESSES,
      'holder() { owner=; { read -r owner < "$lock"; } 2>/dev/null; [ "$owner" = "$parent" ]; }',
      `while kill -0 "$parent" 2>/dev/null && holder; do ${WAIT_A_SECOND}; done`,
      "holder || exit 0",
      'bash "$cleanup" >/dev/null 2>&1; rm -f "$lock"',
    ].join("\n");
    this.watchdog = spawn("bash", ["-c", script, "orchestrator-node-watchdog", String(process.pid), runPaths.lock, CLEANUP_SCRIPT()], {
      detached: true,
      stdio: "ignore",
    });
    this.watchdog.unref();
  }

  private async boot(): Promise<void> {
    await this.timed("cleanup", () => runCleanup(this.o.log));
    this.recordHostState();
    await this.timed("containerd", () => this.startContainerd());
    await this.timed("images", () => this.importImagesOrReset());
    await this.timed("kubelet", () => this.startKubelet());
    await this.timed("kube-proxy", () => this.startKubeProxy());
    await this.timed("coredns", () => this.startCoreDns());
    if (isExecutable(path.join(this.o.binDir, "local-path-provisioner"))) await this.timed("local-path", () => this.startLocalPath());
    else this.o.log("local-path-provisioner not built: no StorageClass local-path (run 'npm run control-plane:build')");
  }

  private async timed(step: keyof NodeStartupTimes, fn: () => Promise<void>): Promise<void> {
    const t = performance.now();
    await fn();
    this.startupMs[step] = Math.round(performance.now() - t);
    this.o.log(`node: ${step} ready in ${(this.startupMs[step] / 1000).toFixed(1)}s`);
  }

  /** Saves the sysctls' original values (once: a crashed run's originals are kept) and which fixed paths pre-existed. */
  private recordHostState(): void {
    fs.mkdirSync(path.join(NODE_PATHS.run, "pids"), { recursive: true });
    const orig = path.join(NODE_PATHS.run, "sysctl-orig");
    if (!fs.existsSync(orig)) {
      const lines = TOUCHED_SYSCTLS.flatMap((k) => {
        const v = readOrEmpty(`/proc/sys/${k.replaceAll(".", "/")}`).trim();
        return v ? [`${k}=${v}`] : [];
      });
      fs.writeFileSync(orig, lines.join("\n") + "\n");
    }
    fs.writeFileSync(path.join(NODE_PATHS.run, "created-paths"), FIXED_PATHS.filter((p) => !fs.existsSync(p)).join("\n") + "\n");
    for (const d of [
      runPaths.cniConf,
      runPaths.cniIpam,
      NODE_PATHS.kubeletRoot,
      NODE_PATHS.podLogs,
      NODE_PATHS.localPathVolumes,
      NODE_PATHS.containerdRoot,
    ])
      fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(runPaths.resolvConf, nodeResolvConf(this.ip));
    ensureCgroupRoot();
  }

  private start(name: string, command: string, args: string[]): ManagedProcess {
    const p = this.o.spawn(name, command, args);
    fs.writeFileSync(path.join(NODE_PATHS.run, "pids", name), String(p.pid));
    return p;
  }

  private async startContainerd(): Promise<void> {
    const dir = path.join(this.o.cpRoot, "node");
    fs.mkdirSync(path.join(dir, "registry"), { recursive: true });
    const config = path.join(dir, "containerd.toml");
    fs.writeFileSync(config, containerdConfigToml({ sandboxImage: this.o.sandboxImage, configDir: dir }));
    fs.writeFileSync(path.join(runPaths.cniConf, "10-orchestrator.conflist"), cniConflist());
    const p = this.start("containerd", "containerd", ["--config", config, "--log-level", "warn"]);
    this.containerd = p;
    await this.o.waitUntil(
      "containerd to serve its socket",
      async () => (await execa("ctr", ["--address", runPaths.containerdSocket, "version"], { reject: false })).exitCode === 0,
      p,
    );
    // Containers of an earlier (crashed) run are still in containerd's metadata: remove them
    // before kubelet starts, so it never adopts a pod from another cluster.
    const ids = (await this.ctr(["containers", "list", "-q"])).split("\n").filter(Boolean);
    for (const id of ids) {
      await execa("ctr", ["--address", runPaths.containerdSocket, "-n", CRI_NAMESPACE, "tasks", "kill", "-s", "SIGKILL", id], {
        reject: false,
      });
      await execa("ctr", ["--address", runPaths.containerdSocket, "-n", CRI_NAMESPACE, "containers", "delete", id], { reject: false });
    }
    if (ids.length) this.o.log(`node: removed ${ids.length} container(s) left by an earlier run`);
  }

  /**
   * The image store is kept across runs; an import a crash interrupted can leave it inconsistent
   * (a layer's parent snapshot missing). Then it is emptied once and every image imported again.
   */
  private async importImagesOrReset(): Promise<void> {
    try {
      await this.importImages();
      return;
    } catch (err) {
      const why = (err as Error).message.split("\n").find((l) => l.startsWith("ctr:")) ?? (err as Error).message.split("\n")[0];
      this.o.log(`node: image import failed (${why}); emptying containerd's image store and importing again`);
    }
    await this.containerd?.stop();
    fs.rmSync(NODE_PATHS.containerdRoot, { recursive: true, force: true });
    fs.mkdirSync(NODE_PATHS.containerdRoot, { recursive: true });
    await this.startContainerd();
    await this.importImages();
  }

  /** Imports each archive unless containerd already holds that reference (content-addressed, kept across runs). */
  private async importImages(): Promise<void> {
    const have = await this.imageDigests();
    for (const img of this.o.images) {
      const current = have.get(normalizeRef(img.ref));
      if (current && (!img.digest || current === img.digest)) continue;
      await this.ctr(["images", "import", img.archive]);
      this.o.log(`node: imported ${img.ref}`);
    }
    const now = await this.imageDigests();
    const missing = [this.o.sandboxImage, this.o.helperImage].filter((r) => !now.has(normalizeRef(r)));
    if (missing.length)
      throw new Error(`images ${missing.join(", ")} are not in the node's containerd after import; check the image archives`);
  }

  /** Image reference → manifest digest, from `ctr images list` (REF TYPE DIGEST ...). */
  private async imageDigests(): Promise<Map<string, string>> {
    const lines = (await this.ctr(["images", "list"])).split("\n").slice(1);
    return new Map(
      lines
        .map((l) => l.split(/\s+/))
        .filter((f) => f.length > 2)
        .map((f) => [f[0] ?? "", f[2] ?? ""]),
    );
  }

  private async startKubelet(): Promise<void> {
    const dir = path.join(this.o.cpRoot, "node");
    const node = this.o.certs.node;
    if (!node) throw new Error("control plane certs were generated without the node's identities");
    const kubeconfig = path.join(dir, "kubelet.kubeconfig");
    this.o.kubeconfigFor({ cert: node.kubeletClientCert, key: node.kubeletClientKey }, kubeconfig);
    const config = path.join(dir, "kubelet.yaml");
    fs.writeFileSync(
      config,
      kubeletConfigYaml({
        caFile: this.o.certs.caCert,
        servingCert: node.kubeletServingCert,
        servingKey: node.kubeletServingKey,
        clusterDns: CLUSTER_DNS.ip,
        port: this.o.ports.kubelet,
        healthzPort: this.o.ports.kubeletHealthz,
      }),
    );
    const p = this.start("kubelet", path.join(this.o.binDir, "kubelet"), [
      `--config=${config}`,
      `--kubeconfig=${kubeconfig}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${this.ip}`,
      `--root-dir=${NODE_PATHS.kubeletRoot}`,
      `--cert-dir=${path.join(dir, "kubelet-pki")}`,
      "--v=1",
    ]);
    const core = this.o.kubeConfig.makeApiClient(CoreV1Api);
    await this.o.waitUntil(
      `node ${NODE_NAME} to be Ready and untainted`,
      async () => {
        const n = await core.readNode({ name: NODE_NAME });
        const ready = n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
        return ready && !(n.spec?.taints ?? []).length;
      },
      p,
      120_000,
    );
  }

  private async startKubeProxy(): Promise<void> {
    const dir = path.join(this.o.cpRoot, "node");
    const node = this.o.certs.node;
    if (!node) throw new Error("control plane certs were generated without the node's identities");
    const kubeconfig = path.join(dir, "kube-proxy.kubeconfig");
    this.o.kubeconfigFor({ cert: node.kubeProxyCert, key: node.kubeProxyKey }, kubeconfig);
    const config = path.join(dir, "kube-proxy.yaml");
    fs.writeFileSync(config, kubeProxyConfigYaml({ kubeconfig, metricsPort: this.o.ports.kubeProxyMetrics }));
    const p = this.start("kube-proxy", path.join(this.o.binDir, "kube-proxy"), [`--config=${config}`, "--v=1"]);
    // Ready once the `kubernetes` Service has its NAT rule: pods can reach the API server.
    await this.o.waitUntil(
      "kube-proxy to program the kubernetes Service",
      async () => {
        const r = await execa("iptables-save", ["-t", "nat"], { reject: false });
        return r.stdout.includes(`-d ${this.o.identity.kubernetesServiceIp}/32`);
      },
      p,
    );
  }

  /**
   * CoreDNS as a host process on the node's IP, port 53, behind the `kube-dns` Service (which
   * kubelet writes into pods' resolv.conf): cluster.local from the API server, other names
   * forwarded. Ready once its kubernetes plugin has synced and kube-proxy programs the Service.
   */
  private async startCoreDns(): Promise<void> {
    const dir = path.join(this.o.cpRoot, "node");
    const node = this.o.certs.node;
    if (!node) throw new Error("control plane certs were generated without the node's identities");
    await this.ensureDnsObjects();
    const kubeconfig = path.join(dir, "coredns.kubeconfig");
    this.o.kubeconfigFor({ cert: node.corednsCert, key: node.corednsKey }, kubeconfig);
    const upstreams = this.o.dnsUpstreams ?? hostResolvers(readOrEmpty("/etc/resolv.conf"));
    if (!upstreams.length)
      this.o.log("node: /etc/resolv.conf names no nameserver, so pods resolve only cluster.local names (external names fail)");
    const config = path.join(dir, "Corefile");
    const readyPort = this.o.ports.corednsReady;
    fs.writeFileSync(config, corefile({ nodeIp: this.ip, kubeconfig, readyPort, upstreams }));
    const p = this.start("coredns", path.join(this.o.binDir, "coredns"), ["-conf", config]);
    await this.o.waitUntil(
      "CoreDNS to sync with the API server",
      async () => (await fetch(`http://127.0.0.1:${readyPort}/ready`).catch(() => undefined))?.status === 200,
      p,
    );
    await this.o.waitUntil(
      "kube-proxy to program the kube-dns Service",
      async () => (await execa("iptables-save", ["-t", "nat"], { reject: false })).stdout.includes(`-d ${CLUSTER_DNS.ip}/32`),
      p,
    );
  }

  /** CoreDNS's read-only RBAC, and the `kube-dns` Service with the node's IP as its one endpoint. */
  private async ensureDnsObjects(): Promise<void> {
    const rbac = this.o.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const core = this.o.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.o.kubeConfig.makeApiClient(DiscoveryV1Api);
    const { namespace, service, clusterRole, user, ip } = CLUSTER_DNS;
    const verbs = ["get", "list", "watch"];
    await ignoreExists(
      rbac.createClusterRole({
        body: {
          metadata: { name: clusterRole },
          rules: [
            { apiGroups: [""], resources: ["services", "namespaces"], verbs },
            { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs },
          ],
        },
      }),
    );
    await ignoreExists(
      rbac.createClusterRoleBinding({
        body: {
          metadata: { name: clusterRole },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
        },
      }),
    );
    const ports = [
      { name: "dns", port: 53, protocol: "UDP" },
      { name: "dns-tcp", port: 53, protocol: "TCP" },
    ];
    await ignoreExists(
      core.createNamespacedService({
        namespace,
        body: { metadata: { name: service, labels: { "k8s-app": "kube-dns" } }, spec: { clusterIP: ip, ports } },
      }),
    );
    await ignoreExists(
      discovery.createNamespacedEndpointSlice({
        namespace,
        body: {
          metadata: {
            name: `${service}-node`,
            labels: { "kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "orchestrator-real-node" },
          },
          addressType: "IPv4",
          endpoints: [{ addresses: [this.ip], conditions: { ready: true } }],
          ports,
        },
      }),
    );
  }

  private async startLocalPath(): Promise<void> {
    const core = this.o.kubeConfig.makeApiClient(CoreV1Api);
    const storage = this.o.kubeConfig.makeApiClient(StorageV1Api);
    const ns = LOCAL_PATH.namespace;
    await ignoreExists(core.createNamespace({ body: { metadata: { name: ns } } }));
    await ignoreExists(core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: LOCAL_PATH.serviceAccount } } }));
    await ignoreExists(
      core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: LOCAL_PATH.configMap }, data: localPathConfigData(this.o.helperImage) },
      }),
    );
    await ignoreExists(
      storage.createStorageClass({
        body: {
          metadata: { name: LOCAL_PATH.storageClass, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
          provisioner: LOCAL_PATH.provisioner,
          volumeBindingMode: "WaitForFirstConsumer",
          reclaimPolicy: "Delete",
        },
      }),
    );
    this.start("local-path-provisioner", path.join(this.o.binDir, "local-path-provisioner"), [
      "start",
      `--kubeconfig=${this.o.adminKubeconfig}`,
      `--namespace=${ns}`,
      `--configmap-name=${LOCAL_PATH.configMap}`,
      `--helper-image=${this.o.helperImage}`,
      `--service-account-name=${LOCAL_PATH.serviceAccount}`,
      `--provisioner-name=${LOCAL_PATH.provisioner}`,
    ]);
  }
}

/**
 * Creates the pods' cgroup parent (kubelet's cgroupRoot) in every mounted cgroup hierarchy; a
 * v1 cpuset child starts with no CPUs or memory nodes, so it gets its parent's.
 */
function ensureCgroupRoot(): void {
  const mounts = readOrEmpty("/proc/self/mountinfo")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => {
      const fsType = f[f.indexOf("-") + 1];
      return fsType === "cgroup" || fsType === "cgroup2";
    })
    .map((f) => f[4] ?? "");
  for (const mount of mounts) {
    const dir = path.join(mount, CGROUP_ROOT);
    fs.mkdirSync(dir, { recursive: true });
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      const parent = path.join(mount, file);
      if (fs.existsSync(parent) && !readOrEmpty(path.join(dir, file)).trim())
        fs.writeFileSync(path.join(dir, file), readOrEmpty(parent).trim());
    }
  }
}

/** "orchestrator/pause:1" and "docker.io/orchestrator/pause:1" name the same image. */
export function normalizeRef(ref: string): string {
  const first = ref.split("/")[0] ?? "";
  const qualified =
    ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")
      ? ref
      : `docker.io/${ref.includes("/") ? ref : `library/${ref}`}`;
  return qualified;
}

/** Runs hack/node/cleanup.sh; its failure is reported, never thrown (stop must always finish). */
export async function runCleanup(log: (line: string) => void): Promise<void> {
  const r = await execa("bash", [CLEANUP_SCRIPT()], { reject: false });
  if (r.exitCode !== 0) log(`node clean-up failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
}

async function ignoreExists(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

function onPath(prog: string): boolean {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")
    .split(":")
    .concat(["/usr/sbin", "/sbin"])
    .some((d) => isExecutable(path.join(d, prog)));
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
