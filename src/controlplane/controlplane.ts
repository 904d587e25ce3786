// A real Kubernetes control plane for tests and `npm run cluster`, run from local binaries.
//
//   minimal: etcd + kube-apiserver (like controller-runtime's envtest).
//   full:    + kube-controller-manager + kube-scheduler + one node, so Jobs create pods and
//            pods are scheduled. The node is either
//              real: kubelet + containerd + runc + bridge CNI, kube-proxy, CoreDNS and the
//                    local-path provisioner (real-node.ts): pods run real containers; or
//              kwok: a simulated node whose pods run and finish per kwok-stages.ts.
//            `node: "auto"` (the default) takes the real node where the machine allows it
//            (root on Linux with the packages it needs) and otherwise says why and uses kwok.
//
// Components bind 127.0.0.1 on free ports (with a real node the API server also listens on the
// node's IP, which pods reach through the `kubernetes` Service); certs, etcd data, kubeconfig
// and component logs live in one temp root that stop() (or the crash handlers in process.ts)
// removes. The real node's host changes are undone by hack/node/cleanup.sh.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ApiextensionsV1Api, CoreV1Api, KubeConfig, type V1CustomResourceDefinition, type V1Node } from "@kubernetes/client-node";
import { parseAllDocuments, stringify } from "yaml";
import { ensureControlPlaneBinaries, isExecutable } from "./assets.js";
import { generateCerts, type ControlPlaneCerts } from "./certs.js";
import {
  apiserverArgs,
  BIND_ADDRESS,
  controllerManagerArgs,
  etcdArgs,
  KUBERNETES_SERVICE_IP,
  kwokArgs,
  schedulerArgs,
  type Mode,
} from "./flags.js";
import { kwokConfigYaml, type KwokStageOptions } from "./kwok-stages.js";
import { startPvProvisioner, type Provisioner } from "./pv-provisioner.js";
import { freePorts, httpGet, httpSend, loadTlsClient, type TlsClient } from "./net.js";
import { ManagedProcess, recordPid, registerTempRoot, releaseTempRoot } from "./process.js";
import { checkNodeSupport, NODE_BINARIES, RealNode, type ImageArchive } from "./real-node.js";
import type { NodeIdentity } from "./certs.js";
import { NODE_NAME } from "./node-config.js";

export type { Mode } from "./flags.js";

export type Component =
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager"
  | "kube-scheduler"
  | "kwok"
  | "containerd"
  | "kubelet"
  | "kube-proxy"
  | "coredns"
  | "local-path-provisioner";

/** Which node a full control plane gets; see the header comment. */
export type NodeChoice = "auto" | "real" | "kwok";

/** Images the real node needs before kubelet starts, and any others to import. */
export interface NodeImages {
  sandbox: ImageArchive;
  /** For the local-path provisioner's helper pods (needs /bin/sh, mkdir, rm). */
  helper: ImageArchive;
  others?: ImageArchive[];
}

export interface ControlPlaneOptions {
  mode: Mode;
  /** CRD manifests (files or directories of .yaml/.yml/.json; multi-document allowed). */
  crdPaths?: string[];
  /** Progress lines ("kube-apiserver ready in 4.1s"). Component output goes to log files. */
  log?: (line: string) => void;
  /** Directory with the binaries; default: ensureControlPlaneBinaries(). */
  binDir?: string;
  /** kwok stage delays (full mode). */
  kwok?: KwokStageOptions;
  /** Full mode: the real node or kwok (default "auto": real where possible). */
  node?: NodeChoice;
  /** Full mode with a real node: the images to import (needed: sandbox and helper). */
  nodeImages?: () => Promise<NodeImages>;
  /** Full mode with a real node: where cluster DNS forwards other names ("ip:port"); default: the host's resolvers. */
  nodeDnsUpstreams?: string[];
}

/** Milliseconds from spawn to ready, per step, plus `total` for the whole start(). */
export type StartupTimes = Partial<Record<Component | "certs" | "node" | "crds", number>> & { total: number };

/** Name, labels and capacity of the fake node created in full mode. */
export const KWOK_NODE_NAME = "kwok-node-0";

const REQUIRED: Record<Mode | "real", Component[]> = {
  minimal: ["etcd", "kube-apiserver"],
  full: ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"],
  real: ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", ...NODE_BINARIES],
};

const STOP_GRACE_MS = 10_000;

export class ControlPlane {
  readonly mode: Mode;
  readonly binDir: string;
  /** Temp root holding certs/, etcd/, logs/, kubeconfig and kwok config. */
  readonly rootDir: string;
  readonly kubeconfigPath: string;
  /** Admin (system:masters) client configuration. */
  kubeConfig!: KubeConfig;
  /** https://127.0.0.1:<port> */
  server = "";
  certs!: ControlPlaneCerts;
  readonly startupMs: StartupTimes = { total: 0 };
  /** Set in full mode. */
  nodeName: string | undefined;
  /** Full mode: the running real node, when that is what the cluster got. */
  realNode: RealNode | undefined;
  /** Full mode: "real" or "kwok"; with "auto", why the real node was not used. */
  nodeKind: "real" | "kwok" | undefined;
  nodeFallbackReason: string | undefined;
  private nodeIdentity: NodeIdentity | undefined;

  private readonly procs = new Map<Component, ManagedProcess>();
  private readonly log: (line: string) => void;
  private tls: TlsClient = {};
  private stopping: Promise<void> | undefined;
  private provisioner: Provisioner | undefined;
  private apiserverArgs: string[] = [];
  /** Processes stopped on purpose (restartApiServer), whose exit is not news. */
  private readonly expectedExits = new Set<ManagedProcess>();

  private constructor(mode: Mode, binDir: string, rootDir: string, log: (line: string) => void) {
    this.mode = mode;
    this.binDir = binDir;
    this.rootDir = rootDir;
    this.kubeconfigPath = path.join(rootDir, "kubeconfig");
    this.log = log;
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const t0 = performance.now();
    const log = opts.log ?? (() => {});
    const binDir = opts.binDir ?? (await ensureControlPlaneBinaries()).binDir;
    const node = opts.mode === "full" ? chooseNode(opts.node ?? "auto", binDir, log) : undefined;
    const missing = REQUIRED[node?.kind === "real" ? "real" : opts.mode].filter((b) => !isExecutable(path.join(binDir, b)));
    if (missing.length) {
      throw new Error(
        `control plane (${opts.mode}) needs ${missing.join(", ")} in ${binDir}; run 'npm run control-plane:build' or set KUBEBUILDER_ASSETS`,
      );
    }
    // Free ports are picked before the components bind them, so another process can grab one
    // in between; such a start is retried on fresh ports (envtest retries similarly).
    for (let attempt = 1; ; attempt++) {
      const rootDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-cp-"));
      registerTempRoot(rootDir);
      const cp = new ControlPlane(opts.mode, binDir, rootDir, log);
      cp.nodeKind = node?.kind;
      cp.nodeFallbackReason = node?.reason;
      if (node?.kind === "real") cp.nodeIdentity = { name: NODE_NAME, ip: node.ip, kubernetesServiceIp: KUBERNETES_SERVICE_IP };
      try {
        await cp.boot(opts);
      } catch (err) {
        await cp.stop();
        if (attempt < 3 && err instanceof Error && /address already in use/i.test(err.message)) {
          log(`port conflict, retrying start-up: ${err.message.split("\n")[0]}`);
          continue;
        }
        throw err;
      }
      cp.startupMs.total = Math.round(performance.now() - t0);
      log(`control plane (${opts.mode}) ready in ${fmt(cp.startupMs.total)}: ${cp.server}`);
      return cp;
    }
  }

  /** Output of a component (last lines of stderr, or stdout if stderr is empty). */
  logs(component: Component, lines = 100): string {
    return this.procs.get(component)?.outputTail(lines) ?? "";
  }

  /** Process id of a running component (benchmarks read its CPU time from /proc). */
  pid(component: Component): number | undefined {
    return this.procs.get(component)?.pid;
  }

  /** Path of a component's full log file (inside rootDir, removed by stop()). */
  logFile(component: Component): string {
    return path.join(this.rootDir, "logs", `${component}.log`);
  }

  /** Creates a namespace named `<prefix>-<random>` (with `labels`) and returns its name. */
  async createNamespace(prefix = "test", labels: Record<string, string> = {}): Promise<string> {
    const base =
      prefix
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 50) || "test";
    const name = `${base}-${randomBytes(3).toString("hex")}`;
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name, labels: { ...labels, "orchestrator.test/ephemeral": "true" } } } });
    if (this.mode === "full") {
      // ServiceAccount admission is on in full mode: pods are rejected until the controller-
      // manager has created the namespace's "default" ServiceAccount (usually milliseconds).
      await this.waitUntil(`ServiceAccount default in ${name}`, async () => {
        await core.readNamespacedServiceAccount({ name: "default", namespace: name });
        return true;
      });
    }
    return name;
  }

  /** Creates or updates the CRDs found in `paths`, then waits until they are served. */
  async installCRDs(paths: string[]): Promise<string[]> {
    const crds = readCRDs(paths);
    const api = this.kubeConfig.makeApiClient(ApiextensionsV1Api);
    for (const crd of crds) {
      const name = crd.metadata?.name ?? "";
      // Server-side apply of the raw manifest: the typed client's serializer would silently drop
      // schema keys it does not model (default, enum, x-kubernetes-validations, list types).
      const r = await httpSend(
        "PATCH",
        `${this.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=orchestrator-test&force=true`,
        JSON.stringify(crd),
        "application/apply-patch+yaml",
        this.tls,
      );
      if (r.status >= 300) throw new Error(`applying CRD ${name}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
    }
    for (const crd of crds) {
      const name = crd.metadata?.name ?? "";
      await this.waitUntil(`CRD ${name} to be Established`, async () => {
        const c = await api.readCustomResourceDefinition({ name });
        return c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True") ?? false;
      });
      for (const v of crd.spec.versions.filter((v) => v.served)) {
        const gv = `/apis/${crd.spec.group}/${v.name}`;
        await this.waitUntil(`${crd.spec.names.plural} in discovery at ${gv}`, async () => {
          const r = await httpGet(this.server + gv, this.tls);
          if (r.status !== 200) return false;
          const list = JSON.parse(r.body) as { resources?: { name: string }[] };
          return list.resources?.some((x) => x.name === crd.spec.names.plural) ?? false;
        });
      }
    }
    return crds.map((c) => c.metadata?.name ?? "");
  }

  /**
   * Stops kube-apiserver and starts it again on the same port and etcd, as an upgrade or a crash
   * would: every open watch breaks. Returns the milliseconds until it is ready again.
   */
  async restartApiServer(): Promise<number> {
    const t = performance.now();
    await this.stopApiServer();
    await this.startApiServer();
    return Math.round(performance.now() - t);
  }

  /**
   * Stops kube-apiserver only: the cluster is unreachable (connections refused) while etcd and
   * the other components keep their state. startApiServer() brings it back on the same port.
   */
  async stopApiServer(): Promise<void> {
    const old = this.procs.get("kube-apiserver");
    if (old) this.expectedExits.add(old);
    await old?.stop(STOP_GRACE_MS);
  }

  /** Starts kube-apiserver again (after stopApiServer) on the same port, certificates and etcd. */
  async startApiServer(): Promise<void> {
    this.spawn("kube-apiserver", this.apiserverArgs);
    await this.waitApiServerReady();
  }

  private async waitApiServerReady(): Promise<void> {
    await this.waitReady(
      "kube-apiserver",
      async () => {
        const r = await httpGet(`${this.server}/readyz`, this.tls);
        return r.status === 200 && r.body.trim() === "ok";
      },
      async () => (await httpGet(`${this.server}/api/v1/namespaces/default`, this.tls)).status === 200,
    );
  }

  /** Stops components in reverse start order (SIGTERM, SIGKILL after 10 s) and removes the temp root. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.provisioner?.stop();
      // Pods and the node go first (kubelet before containerd), then the control plane.
      await this.realNode?.stop();
      const order = [...this.procs.values()].reverse();
      for (const p of order) await p.stop(STOP_GRACE_MS);
      releaseTempRoot(this.rootDir);
    })();
    return this.stopping;
  }

  // ---------------------------------------------------------------------------------------

  private async boot(opts: ControlPlaneOptions): Promise<void> {
    const root = this.rootDir;
    fs.mkdirSync(path.join(root, "logs"));
    const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok] = (await freePorts(6)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    this.server = `https://${BIND_ADDRESS}:${apiserver}`;

    // etcd does not need the certs: generate them while it starts.
    this.spawn("etcd", etcdArgs({ dataDir: path.join(root, "etcd"), ports: { etcdClient, etcdPeer } }));
    const certsStarted = performance.now();
    const certsDone = generateCerts(path.join(root, "certs"), { node: this.nodeIdentity }).then((c) => {
      this.startupMs.certs = Math.round(performance.now() - certsStarted);
      return c;
    });
    await Promise.all([
      this.waitReady("etcd", async () => {
        const r = await httpGet(`http://${BIND_ADDRESS}:${etcdClient}/health`);
        return r.status === 200 && /"health":\s*"true"/.test(r.body);
      }),
      certsDone,
    ]);
    this.certs = await certsDone;
    this.tls = loadTlsClient({ ca: this.certs.caCert, cert: this.certs.adminCert, key: this.certs.adminKey });

    this.apiserverArgs = apiserverArgs({
      mode: this.mode,
      certs: this.certs,
      ports: { apiserver, etcdClient },
      nodeIp: this.nodeIdentity?.ip,
    });
    this.spawn("kube-apiserver", this.apiserverArgs);
    await this.waitApiServerReady();
    fs.writeFileSync(this.kubeconfigPath, kubeconfigYaml({ server: this.server, certs: this.certs }), { mode: 0o600 });
    this.kubeConfig = new KubeConfig();
    this.kubeConfig.loadFromFile(this.kubeconfigPath);

    if (this.mode === "full") await this.bootFull(opts, { controllerManager, scheduler, kwok });

    if (opts.crdPaths?.length) {
      const t = performance.now();
      const names = await this.installCRDs(opts.crdPaths);
      this.startupMs.crds = Math.round(performance.now() - t);
      this.log(`installed ${names.length} CRD(s) in ${fmt(this.startupMs.crds)}: ${names.join(", ")}`);
    }
  }

  private async bootFull(opts: ControlPlaneOptions, ports: { controllerManager: number; scheduler: number; kwok: number }): Promise<void> {
    // kcm and the scheduler serve /healthz with a self-signed cert; skip-verify is for polling only.
    const insecure: TlsClient = { insecure: true };
    this.spawn(
      "kube-controller-manager",
      controllerManagerArgs({ kubeconfig: this.kubeconfigPath, certs: this.certs, port: ports.controllerManager }),
    );
    this.spawn("kube-scheduler", schedulerArgs({ kubeconfig: this.kubeconfigPath, port: ports.scheduler }));
    const waits = [
      this.waitReady("kube-controller-manager", healthz(`https://${BIND_ADDRESS}:${ports.controllerManager}/healthz`, insecure)),
      this.waitReady("kube-scheduler", healthz(`https://${BIND_ADDRESS}:${ports.scheduler}/healthz`, insecure)),
    ];
    if (this.nodeIdentity) {
      await Promise.all(waits);
      await this.bootRealNode(opts);
      return;
    }
    const kwokConfig = path.join(this.rootDir, "kwok.yaml");
    fs.writeFileSync(kwokConfig, kwokConfigYaml(opts.kwok));
    // KWOK_WORKDIR keeps kwok from reading a developer's ~/.kwok/kwok.yaml.
    this.spawn("kwok", kwokArgs({ kubeconfig: this.kubeconfigPath, configFile: kwokConfig, port: ports.kwok }), {
      KWOK_WORKDIR: path.join(this.rootDir, "kwok"),
    });
    await Promise.all([...waits, this.waitReady("kwok", healthz(`http://${BIND_ADDRESS}:${ports.kwok}/healthz`, {}))]);

    const t = performance.now();
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNode({ body: fakeNode(KWOK_NODE_NAME) });
    this.nodeName = KWOK_NODE_NAME;
    // Ready comes from kwok's node-initialize stage; the not-ready taint is removed by the
    // controller-manager's node lifecycle controller afterwards. Pods scheduled earlier would
    // just wait, but tests are simpler if the node is fully usable when start() returns.
    await this.waitUntil(`node ${KWOK_NODE_NAME} to be Ready and untainted`, async () => {
      const n = await core.readNode({ name: KWOK_NODE_NAME });
      const ready = n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      return ready && !(n.spec?.taints ?? []).length;
    });
    // With ServiceAccount admission on, pods in "default" need its SA (made by kcm) first.
    await this.waitUntil("ServiceAccount default/default", async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
      return true;
    });
    this.startupMs.node = Math.round(performance.now() - t);
    this.log(`node ${KWOK_NODE_NAME} ready in ${fmt(this.startupMs.node)}`);
    // No storage driver here: claims get simulated volumes so pods that mount them schedule.
    this.provisioner = await startPvProvisioner(this.kubeConfig, this.log);
  }

  private async bootRealNode(opts: ControlPlaneOptions): Promise<void> {
    const identity = this.nodeIdentity;
    if (!identity) return;
    if (!opts.nodeImages)
      throw new Error("a real node needs images (ControlPlaneOptions.nodeImages): at least the sandbox (pause) and helper images");
    const t = performance.now();
    const images = await opts.nodeImages();
    const [kubelet, kubeletHealthz, kubeProxyMetrics, corednsReady] = (await freePorts(4)) as [number, number, number, number];
    this.realNode = await RealNode.start({
      binDir: this.binDir,
      cpRoot: this.rootDir,
      certs: this.certs,
      identity,
      adminKubeconfig: this.kubeconfigPath,
      kubeconfigFor: (user, file) =>
        fs.writeFileSync(file, kubeconfigYaml({ server: this.server, certs: this.certs, user }), { mode: 0o600 }),
      kubeConfig: this.kubeConfig,
      sandboxImage: images.sandbox.ref,
      helperImage: images.helper.ref,
      images: [images.sandbox, images.helper, ...(images.others ?? [])],
      ports: { kubelet, kubeletHealthz, kubeProxyMetrics, corednsReady },
      dnsUpstreams: opts.nodeDnsUpstreams,
      log: this.log,
      spawn: (name, command, args) => this.spawn(name as Component, args, {}, command),
      waitUntil: (what, check, focus, timeoutMs) => this.waitUntil(what, check, focus, timeoutMs),
    });
    this.nodeName = this.realNode.name;
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    await this.waitUntil("ServiceAccount default/default", async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
      return true;
    });
    this.startupMs.node = Math.round(performance.now() - t);
    this.log(
      `real node ${this.nodeName} (${identity.ip}) ready in ${fmt(this.startupMs.node)}: ${JSON.stringify(this.realNode.startupMs)}`,
    );
  }

  private spawn(name: Component, args: string[], env: Record<string, string> = {}, command = path.join(this.binDir, name)): ManagedProcess {
    const p = ManagedProcess.start({
      name,
      command,
      args,
      env: { ...process.env, ...env },
      cwd: this.rootDir,
      logFile: this.logFile(name),
    });
    this.procs.set(name, p);
    recordPid(this.rootDir, p.pid);
    void p.exited.then((info) => {
      if (!this.stopping && this.startupMs.total > 0 && !this.expectedExits.has(p)) {
        this.log(`${name} exited unexpectedly (code ${info.code}, signal ${info.signal}):\n${p.outputTail(20)}`);
      }
    });
    return p;
  }

  /** Waits for each check in turn and records the component's spawn-to-ready time. */
  private async waitReady(name: Component, ...checks: (() => Promise<boolean>)[]): Promise<void> {
    const p = this.procs.get(name);
    const spawnedAt = p?.startedAt ?? performance.now();
    for (const check of checks) await this.waitUntil(`${name} to become ready`, check, p);
    this.startupMs[name] = Math.round(performance.now() - spawnedAt);
    this.log(`${name} ready in ${fmt(this.startupMs[name])}`);
  }

  /**
   * Polls `check` until it returns true. Fails fast, with exit code and stderr tail, when any
   * component exits meanwhile; on timeout the error names what was awaited and the last error.
   */
  private async waitUntil(what: string, check: () => Promise<boolean>, focus?: ManagedProcess, timeoutMs = 90_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastErr = "";
    let delay = 50;
    for (;;) {
      for (const p of this.procs.values()) {
        if (!p.running) {
          await p.exited; // make sure the stderr tail is complete
          throw p.exitError(`while waiting for ${what}`);
        }
      }
      try {
        if (await check()) return;
        lastErr = "";
      } catch (err) {
        lastErr = errText(err);
      }
      if (performance.now() > deadline) {
        const tail = focus ? `\n--- ${focus.name} stderr (tail) ---\n${focus.outputTail(30)}` : "";
        throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ""}${tail}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  }
}

function healthz(url: string, tls: TlsClient): () => Promise<boolean> {
  return async () => {
    const r = await httpGet(url, tls);
    return r.status === 200 && r.body.trim() === "ok";
  };
}

/** Resolves `node: auto|real|kwok` against what this machine supports. */
function chooseNode(
  choice: NodeChoice,
  binDir: string,
  log: (line: string) => void,
): { kind: "real"; ip: string; reason?: undefined } | { kind: "kwok"; reason?: string } {
  if (choice === "kwok") return { kind: "kwok" };
  const support = checkNodeSupport(binDir);
  if (support.ok) return { kind: "real", ip: support.ip };
  if (choice === "real") throw new Error(`cannot start a real node: ${support.reason}`);
  log(`using a simulated node (kwok), pods will not run containers: ${support.reason}`);
  return { kind: "kwok", reason: support.reason };
}

function fakeNode(name: string): V1Node {
  const resources = { cpu: "32", memory: "256Gi", pods: "110" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      // ttl 0: the controller-manager's TTL controller would set it anyway; avoids a patch race.
      annotations: { "node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake" },
      labels: { type: "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" },
    },
    spec: {},
    status: { capacity: resources, allocatable: resources },
  };
}

/** A kubeconfig for the admin (default) or another client certificate signed by the cluster CA. */
export function kubeconfigYaml(p: {
  server: string;
  certs: ControlPlaneCerts;
  name?: string;
  user?: { cert: string; key: string };
}): string {
  const name = p.name ?? "orchestrator-test";
  const b64 = (f: string) => fs.readFileSync(f).toString("base64");
  const user = p.user ?? { cert: p.certs.adminCert, key: p.certs.adminKey };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server: p.server, "certificate-authority-data": b64(p.certs.caCert) } }],
    users: [{ name: `${name}-admin`, user: { "client-certificate-data": b64(user.cert), "client-key-data": b64(user.key) } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace: "default" } }],
    "current-context": name,
  });
}

/** Reads CustomResourceDefinition documents from files and directories. */
export function readCRDs(paths: string[]): V1CustomResourceDefinition[] {
  const files: string[] = [];
  for (const p of paths) {
    if (fs.statSync(p).isDirectory()) {
      for (const f of fs.readdirSync(p).sort()) if (/\.(ya?ml|json)$/.test(f)) files.push(path.join(p, f));
    } else files.push(p);
  }
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(file, "utf8"))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      const obj = doc.toJS() as V1CustomResourceDefinition | null;
      if (!obj) continue;
      if (obj.kind !== "CustomResourceDefinition")
        throw new Error(`${file}: expected only CustomResourceDefinitions, found kind ${String(obj.kind)}`);
      crds.push(obj);
    }
  }
  return crds;
}

function errText(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0] ?? err.message;
  return String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fmt(ms: number | undefined): string {
  return `${((ms ?? 0) / 1000).toFixed(1)}s`;
}
