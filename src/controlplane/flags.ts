// Command-line flags for each control-plane component. Pure functions, so they are unit-tested.
// etcd and kube-apiserver follow controller-runtime envtest's defaults; the controller-manager,
// scheduler and kwok follow kwokctl's "binary" runtime.
import type { ControlPlaneCerts } from "./certs.js";

export const BIND_ADDRESS = "127.0.0.1";
export const SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24";
/** The `kubernetes` Service's ClusterIP: the first address of the service range. */
export const KUBERNETES_SERVICE_IP = "10.0.0.1";
/** Fake pod IPs handed out by kwok; distinct from the service range. */
export const KWOK_POD_CIDR = "10.244.0.0/16";

export type Mode = "minimal" | "full";

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

export function etcdArgs(p: { dataDir: string; ports: Pick<Ports, "etcdClient" | "etcdPeer"> }): string[] {
  const client = `http://${BIND_ADDRESS}:${p.ports.etcdClient}`;
  const peer = `http://${BIND_ADDRESS}:${p.ports.etcdPeer}`;
  return [
    `--name=orchestrator-test`,
    `--data-dir=${p.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=orchestrator-test=${peer}`,
    // Test data is throwaway; fsync dominates etcd latency on slow disks.
    `--unsafe-no-fsync=true`,
    `--log-level=warn`,
  ];
}

/**
 * ServiceAccount admission: disabled in minimal mode, as in envtest, because nothing creates
 * the "default" ServiceAccount there and every pod create would be rejected. In full mode the
 * controller-manager creates it (and signs tokens), so the plugin stays on and pods look like
 * on a real cluster: serviceAccountName defaulted, a kube-api-access token volume mounted, and
 * a pod naming a ServiceAccount that does not exist is rejected. Measured: Jobs in brand-new
 * namespaces completed equally fast (~3.3 s) with and without it, with no FailedCreate events;
 * ControlPlane.createNamespace() additionally waits for the default ServiceAccount.
 */
export function apiserverArgs(p: {
  mode: Mode;
  certs: ControlPlaneCerts;
  ports: Pick<Ports, "apiserver" | "etcdClient">;
  /** The real node's IP: pods reach the API server there through the `kubernetes` Service. */
  nodeIp?: string;
}): string[] {
  const { certs } = p;
  const node = certs.node;
  const realNode =
    p.nodeIp && node
      ? [
          // The Node authorizer and NodeRestriction confine kubelet to its own node and pods.
          `--authorization-mode=Node,RBAC`,
          `--enable-admission-plugins=NodeRestriction`,
          `--kubelet-client-certificate=${node.apiserverKubeletClientCert}`,
          `--kubelet-client-key=${node.apiserverKubeletClientKey}`,
          `--kubelet-certificate-authority=${certs.caCert}`,
          // Else logs/exec/port-forward try to resolve the node's name.
          `--kubelet-preferred-address-types=InternalIP,Hostname`,
        ]
      : [`--authorization-mode=RBAC`];
  return [
    // With a real node, pods dial the advertised address (via the `kubernetes` Service), so it
    // cannot be loopback; host clients keep using 127.0.0.1.
    `--bind-address=${p.nodeIp ? "0.0.0.0" : BIND_ADDRESS}`,
    `--advertise-address=${p.nodeIp ?? BIND_ADDRESS}`,
    `--secure-port=${p.ports.apiserver}`,
    // apiserver.crt/.key are picked up from here (envtest layout).
    `--cert-dir=${certs.dir}`,
    `--tls-cert-file=${certs.servingCert}`,
    `--tls-private-key-file=${certs.servingKey}`,
    `--client-ca-file=${certs.caCert}`,
    ...realNode,
    `--service-account-issuer=https://${BIND_ADDRESS}:${p.ports.apiserver}/`,
    `--service-account-key-file=${certs.saPub}`,
    `--service-account-signing-key-file=${certs.saKey}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    `--allow-privileged=true`,
    `--etcd-servers=http://${BIND_ADDRESS}:${p.ports.etcdClient}`,
    ...(p.mode === "minimal" ? [`--disable-admission-plugins=ServiceAccount`] : []),
    `--profiling=false`,
  ];
}

export function controllerManagerArgs(p: { kubeconfig: string; certs: ControlPlaneCerts; port: number }): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    `--bind-address=${BIND_ADDRESS}`,
    `--secure-port=${p.port}`,
    `--root-ca-file=${p.certs.caCert}`,
    `--service-account-private-key-file=${p.certs.saKey}`,
    `--cluster-signing-cert-file=${p.certs.caCert}`,
    `--cluster-signing-key-file=${p.certs.caKey}`,
    `--leader-elect=false`,
    // All controllers share the admin identity: no per-controller tokens to mint at start-up.
    `--use-service-account-credentials=false`,
    `--controllers=*`,
    `--kube-api-qps=500`,
    `--kube-api-burst=1000`,
    `--profiling=false`,
  ];
}

export function schedulerArgs(p: { kubeconfig: string; port: number }): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    `--bind-address=${BIND_ADDRESS}`,
    `--secure-port=${p.port}`,
    `--leader-elect=false`,
    `--profiling=false`,
  ];
}

export function kwokArgs(p: { kubeconfig: string; configFile: string; port: number }): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    `--config=${p.configFile}`,
    `--manage-all-nodes=true`,
    `--server-address=${BIND_ADDRESS}:${p.port}`,
    `--cidr=${KWOK_POD_CIDR}`,
    `--node-ip=${BIND_ADDRESS}`,
    `--node-lease-duration-seconds=40`,
  ];
}
