// Configuration of the real node's components: pure builders, unit-tested. The node is one per
// machine, so its state lives at fixed paths (NODE_PATHS) that the clean-up script knows too.
import { stringify } from "yaml";

/** Fixed locations of the real node. hack/node/cleanup.sh uses the same paths. */
export const NODE_PATHS = {
  /** Kept across runs: containerd's image content and snapshots (imported images stay cached). */
  containerdRoot: "/var/lib/orchestrator-node/containerd",
  /** Removed at every stop: kubelet's root dir, pod logs, local-path volumes. */
  kubeletRoot: "/var/lib/orchestrator-node/kubelet",
  podLogs: "/var/lib/orchestrator-node/pod-logs",
  localPathVolumes: "/var/lib/orchestrator-node/local-path",
  /** Runtime state (tmpfs): sockets, containerd state, runc state, CNI config and IPAM, pids, saved sysctls. */
  run: "/run/orchestrator-node",
} as const;

export const NODE_NAME = "orchestrator-node";
/** Pod addresses on the node's bridge; the bridge (gateway) takes the first. */
export const POD_CIDR = "10.89.0.0/24";
export const POD_GATEWAY = "10.89.0.1";
export const BRIDGE_NAME = "orch0";
export const CNI_NETWORK = "orchestrator-node";
/** Cgroup parent of every pod (under each v1 hierarchy), so clean-up finds every container. */
export const CGROUP_ROOT = "/orchestrator-node";
export const CLUSTER_DOMAIN = "cluster.local";
export const CRI_NAMESPACE = "k8s.io";

export const runPaths = {
  containerdSocket: `${NODE_PATHS.run}/containerd.sock`,
  containerdState: `${NODE_PATHS.run}/containerd`,
  runcRoot: `${NODE_PATHS.run}/runc`,
  cniConf: `${NODE_PATHS.run}/cni/net.d`,
  cniIpam: `${NODE_PATHS.run}/cni/ipam`,
  resolvConf: `${NODE_PATHS.run}/resolv.conf`,
  lock: `${NODE_PATHS.run}.lock`,
} as const;

/** containerd 1.6 configuration (version 2 schema). */
export function containerdConfigToml(p: { sandboxImage: string; configDir: string }): string {
  return `version = 2
root = "${NODE_PATHS.containerdRoot}"
state = "${runPaths.containerdState}"
# Only what a CRI node with overlayfs needs.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${runPaths.containerdSocket}"

[ttrpc]
  address = "${runPaths.containerdSocket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${NODE_PATHS.containerdRoot}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${p.sandboxImage}"
  # Root in these VMs lacks CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${runPaths.runcRoot}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${runPaths.cniConf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${p.configDir}/registry"
`;
}

/** bridge + host-local + portmap: pods get 10.89.0.x, reach the host at the gateway, NAT outwards. */
export function cniConflist(): string {
  return JSON.stringify(
    {
      cniVersion: "0.4.0",
      name: CNI_NETWORK,
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE_NAME,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: runPaths.cniIpam,
            ranges: [[{ subnet: POD_CIDR, gateway: POD_GATEWAY }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export interface KubeletConfigInput {
  caFile: string;
  servingCert: string;
  servingKey: string;
  /** The cluster DNS Service's ClusterIP, written into pods' resolv.conf. */
  clusterDns: string;
  healthzPort: number;
  port: number;
}

export function kubeletConfigYaml(p: KubeletConfigInput): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    cgroupDriver: "cgroupfs",
    cgroupRoot: CGROUP_ROOT,
    // These VMs have cgroup v1; kubelet 1.35 refuses it unless told otherwise.
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${runPaths.containerdSocket}`,
    imageServiceEndpoint: `unix://${runPaths.containerdSocket}`,
    staticPodPath: "",
    podLogsDir: NODE_PATHS.podLogs,
    address: "0.0.0.0",
    port: p.port,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: p.healthzPort,
    tlsCertFile: p.servingCert,
    tlsPrivateKeyFile: p.servingKey,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: p.caFile } },
    authorization: { mode: "Webhook" },
    // Locally imported images have no registry to come back from: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%" },
    clusterDomain: CLUSTER_DOMAIN,
    clusterDNS: [p.clusterDns],
    // Pods never inherit the host's resolvers: dnsPolicy Default pods get the node's CoreDNS
    // (nodeResolvConf), which forwards to the host's resolvers.
    resolvConf: runPaths.resolvConf,
    serializeImagePulls: false,
    maxPods: 110,
    shutdownGracePeriod: "0s",
    nodeStatusReportFrequency: "10s",
    registerNode: true,
    volumeStatsAggPeriod: "0s",
  });
}

export function kubeProxyConfigYaml(p: { kubeconfig: string; metricsPort: number }): string {
  return stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: "iptables",
    clientConnection: { kubeconfig: p.kubeconfig },
    hostnameOverride: NODE_NAME,
    clusterCIDR: POD_CIDR,
    bindAddress: "0.0.0.0",
    healthzBindAddress: "",
    metricsBindAddress: `127.0.0.1:${p.metricsPort}`,
    // Leave the host's conntrack sysctls alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
    // NodePorts only on the node's primary address: no route_localnet sysctl, no 127.0.0.1 NAT.
    nodePortAddresses: ["primary"],
    iptables: { localhostNodePorts: false, syncPeriod: "30s", minSyncPeriod: "0s" },
  });
}

export const LOCAL_PATH = {
  namespace: "local-path-storage",
  storageClass: "local-path",
  provisioner: "rancher.io/local-path",
  configMap: "local-path-config",
  serviceAccount: "local-path-provisioner",
} as const;

/** The provisioner's ConfigMap: where volumes live and the helper pod's scripts. */
export function localPathConfigData(helperImage: string): Record<string, string> {
  return {
    "config.json": JSON.stringify({ nodePathMap: [{ node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths: [NODE_PATHS.localPathVolumes] }] }),
    setup: '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
    teardown: '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
    "helperPod.yaml": stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "helper-pod" },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: "helper-pod", image: helperImage, imagePullPolicy: "Never" }],
      },
    }),
  };
}

/** The `kube-dns` Service in kube-system that pods' resolv.conf names (kubelet's clusterDNS). */
export const CLUSTER_DNS = {
  namespace: "kube-system",
  service: "kube-dns",
  /** The tenth address of the service range, as kubeadm chooses it. */
  ip: "10.0.0.10",
  /** Client certificate subject of CoreDNS (read-only RBAC: services, endpointslices, namespaces). */
  user: "orchestrator:coredns",
  clusterRole: "orchestrator:coredns",
} as const;

/** resolv.conf given to kubelet (`resolvConf`): what dnsPolicy Default pods get, the node's CoreDNS. */
export function nodeResolvConf(nodeIp: string): string {
  return `nameserver ${nodeIp}\n`;
}

/**
 * The host's resolvers, as CoreDNS's forwarder takes them ("ip:53"), from resolv.conf's
 * nameserver lines. Loopback resolvers (systemd-resolved's 127.0.0.53) work: CoreDNS runs in the
 * host's network namespace.
 */
export function hostResolvers(resolvConf: string): string[] {
  return resolvConf
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((ip): ip is string => ip !== undefined)
    .map((ip) => (ip.includes(":") ? `[${ip}]:53` : `${ip}:53`));
}

export interface CorefileInput {
  /** CoreDNS listens on port 53 of this address only. */
  nodeIp: string;
  kubeconfig: string;
  /** Port on 127.0.0.1 of the `ready` plugin (200 once the kubernetes plugin has synced). */
  readyPort: number;
  /** Resolvers for names outside the cluster ("ip:port"); none: those names fail (SERVFAIL). */
  upstreams: string[];
}

/** The node's CoreDNS: cluster.local from the API server, everything else forwarded. */
export function corefile(p: CorefileInput): string {
  const forward = p.upstreams.length ? [`    forward . ${p.upstreams.join(" ")}`, "    loop"] : [];
  return [
    ".:53 {",
    `    bind ${p.nodeIp}`,
    "    errors",
    `    ready 127.0.0.1:${p.readyPort}`,
    `    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {`,
    `        kubeconfig ${p.kubeconfig}`,
    "        fallthrough in-addr.arpa ip6.arpa",
    "        ttl 30",
    "    }",
    ...forward,
    "    cache 30",
    "}",
    "",
  ].join("\n");
}
