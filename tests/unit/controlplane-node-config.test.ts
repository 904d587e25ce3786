import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { servingSANs } from "../../src/controlplane/certs.js";
import { apiserverArgs } from "../../src/controlplane/flags.js";
import {
  cniConflist,
  containerdConfigToml,
  corefile,
  hostResolvers,
  kubeletConfigYaml,
  kubeProxyConfigYaml,
  localPathConfigData,
  NODE_PATHS,
  POD_CIDR,
  runPaths,
} from "../../src/controlplane/node-config.js";
import { defaultRouteIp, normalizeRef } from "../../src/controlplane/real-node.js";

const certs = {
  dir: "/r/certs",
  caCert: "/r/ca.crt",
  caKey: "/r/ca.key",
  servingCert: "/r/s.crt",
  servingKey: "/r/s.key",
  adminCert: "/r/a.crt",
  adminKey: "/r/a.key",
  saKey: "/r/sa.key",
  saPub: "/r/sa.pub",
  node: {
    kubeletClientCert: "/r/kc.crt",
    kubeletClientKey: "/r/kc.key",
    kubeletServingCert: "/r/ks.crt",
    kubeletServingKey: "/r/ks.key",
    apiserverKubeletClientCert: "/r/ak.crt",
    apiserverKubeletClientKey: "/r/ak.key",
    kubeProxyCert: "/r/kp.crt",
    kubeProxyKey: "/r/kp.key",
    corednsCert: "/r/cd.crt",
    corednsKey: "/r/cd.key",
  },
};

describe("real node configuration", () => {
  it("kube-apiserver with a real node: Node authorizer, NodeRestriction, kubelet client cert, InternalIP first, reachable on the node IP", () => {
    const args = apiserverArgs({ mode: "full", certs, ports: { apiserver: 6443, etcdClient: 2379 }, nodeIp: "192.0.2.2" });
    expect(args).toContain("--authorization-mode=Node,RBAC");
    expect(args).toContain("--enable-admission-plugins=NodeRestriction");
    expect(args).toContain("--kubelet-client-certificate=/r/ak.crt");
    expect(args).toContain("--kubelet-preferred-address-types=InternalIP,Hostname");
    expect(args).toContain("--advertise-address=192.0.2.2");
    expect(args).toContain("--bind-address=0.0.0.0");
    const kwok = apiserverArgs({ mode: "full", certs, ports: { apiserver: 6443, etcdClient: 2379 } });
    expect(kwok).toContain("--authorization-mode=RBAC");
    expect(kwok).toContain("--bind-address=127.0.0.1");
  });

  it("the serving cert names every way pods dial the API server", () => {
    expect(servingSANs("127.0.0.1", { name: "n", ip: "192.0.2.2", kubernetesServiceIp: "10.0.0.1" })).toBe(
      "DNS:localhost,IP:127.0.0.1,IP:192.0.2.2,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    );
  });

  it("containerd: own socket and state, oom_score_adj restricted, overlayfs, runc state under the node's run dir", () => {
    const toml = containerdConfigToml({ sandboxImage: "docker.io/orchestrator/pause:1.0", configDir: "/cp/node" });
    expect(toml).toContain(`address = "${runPaths.containerdSocket}"`);
    expect(toml).toContain("restrict_oom_score_adj = true");
    expect(toml).toContain('sandbox_image = "docker.io/orchestrator/pause:1.0"');
    expect(toml).toContain(`Root = "${runPaths.runcRoot}"`);
    expect(toml).toContain(`root = "${NODE_PATHS.containerdRoot}"`);
  });

  it("CNI: bridge with gateway and masquerade, host-local IPAM in the node's run dir, portmap", () => {
    const c = JSON.parse(cniConflist()) as {
      plugins: { type: string; isGateway?: boolean; ipMasq?: boolean; ipam?: { dataDir: string; ranges: { subnet: string }[][] } }[];
    };
    expect(c.plugins.map((p) => p.type)).toEqual(["bridge", "portmap"]);
    expect(c.plugins[0]).toMatchObject({ isGateway: true, ipMasq: true });
    expect(c.plugins[0]?.ipam?.dataDir).toBe(runPaths.cniIpam);
    expect(c.plugins[0]?.ipam?.ranges[0]?.[0]?.subnet).toBe(POD_CIDR);
  });

  it("kubelet: cgroupfs on v1, x509 + webhook auth, anonymous off, never collects imported images, no host resolvers", () => {
    const k = parse(
      kubeletConfigYaml({
        caFile: "/r/ca.crt",
        servingCert: "/r/ks.crt",
        servingKey: "/r/ks.key",
        clusterDns: "192.0.2.2",
        port: 10250,
        healthzPort: 10248,
      }),
    ) as Record<string, unknown>;
    expect(k).toMatchObject({
      cgroupDriver: "cgroupfs",
      failCgroupV1: false,
      readOnlyPort: 0,
      imageGCHighThresholdPercent: 100,
      clusterDNS: ["192.0.2.2"],
      resolvConf: runPaths.resolvConf,
    });
    expect(k.authentication).toEqual({ anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: "/r/ca.crt" } });
  });

  it("kube-proxy: iptables, leaves conntrack sysctls and localhost NodePorts alone", () => {
    const k = parse(kubeProxyConfigYaml({ kubeconfig: "/k", metricsPort: 1 })) as Record<string, unknown>;
    expect(k).toMatchObject({
      mode: "iptables",
      nodePortAddresses: ["primary"],
      iptables: { localhostNodePorts: false },
      conntrack: { maxPerCore: 0 },
    });
  });

  it("local-path: volumes under the node's dir, helper pods from the local image only", () => {
    const d = localPathConfigData("docker.io/orchestrator/busybox:1");
    expect(JSON.parse(d["config.json"] ?? "{}")).toEqual({
      nodePathMap: [{ node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths: [NODE_PATHS.localPathVolumes] }],
    });
    expect(parse(d["helperPod.yaml"] ?? "")).toMatchObject({
      spec: { containers: [{ imagePullPolicy: "Never", image: "docker.io/orchestrator/busybox:1" }] },
    });
  });

  it("CoreDNS: cluster.local from the API server on the node IP only, other names forwarded, readiness on loopback", () => {
    const c = corefile({ nodeIp: "192.0.2.2", kubeconfig: "/cp/coredns.kubeconfig", readyPort: 9100, upstreams: ["192.0.2.53:53"] });
    expect(c).toMatch(/^\.:53 \{\n {4}bind 192\.0\.2\.2\n/);
    expect(c).toContain("    ready 127.0.0.1:9100\n");
    expect(c).toContain("    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        kubeconfig /cp/coredns.kubeconfig\n");
    expect(c).toContain("    forward . 192.0.2.53:53\n    loop\n");
    const closed = corefile({ nodeIp: "192.0.2.2", kubeconfig: "/k", readyPort: 1, upstreams: [] });
    expect(closed).not.toContain("forward");
    expect(closed).toContain("kubernetes cluster.local");
  });

  it("takes the host's resolvers from resolv.conf, loopback ones too", () => {
    const conf =
      "# generated\nsearch example.com\nnameserver 127.0.0.53\n  nameserver 192.0.2.53 \nnameserver 2001:db8::1\noptions edns0\n";
    expect(hostResolvers(conf)).toEqual(["127.0.0.53:53", "192.0.2.53:53", "[2001:db8::1]:53"]);
    expect(hostResolvers("search example.com\n")).toEqual([]);
  });

  it("finds the node IP on the default route's interface", () => {
    const table = "Iface\tDestination\tGateway\nlo\t0000007F\t00000000\neth0\t00000000\t010200C0\n";
    const ifaces = { eth0: [{ address: "192.0.2.2", family: "IPv4", internal: false, netmask: "", mac: "", cidr: null }] } as never;
    expect(defaultRouteIp(table, ifaces)).toBe("192.0.2.2");
    expect(defaultRouteIp("Iface\tDestination\n", ifaces)).toBeUndefined();
  });

  it("normalises image references as containerd names them", () => {
    expect(normalizeRef("orchestrator/pause:1")).toBe("docker.io/orchestrator/pause:1");
    expect(normalizeRef("docker.io/orchestrator/pause:1")).toBe("docker.io/orchestrator/pause:1");
    expect(normalizeRef("busybox:1")).toBe("docker.io/library/busybox:1");
    expect(normalizeRef("ghcr.io/x/y:2")).toBe("ghcr.io/x/y:2");
  });
});
