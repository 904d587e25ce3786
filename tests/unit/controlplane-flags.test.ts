import { describe, expect, it } from "vitest";
import type { ControlPlaneCerts } from "../../src/controlplane/certs.js";
import { servingSANs } from "../../src/controlplane/certs.js";
import { parseBuildTimes } from "../../src/controlplane/assets.js";
import { apiserverArgs, controllerManagerArgs, etcdArgs, kwokArgs, schedulerArgs } from "../../src/controlplane/flags.js";

const certs: ControlPlaneCerts = {
  dir: "/r/certs",
  caCert: "/r/certs/ca.crt",
  caKey: "/r/certs/ca.key",
  servingCert: "/r/certs/apiserver.crt",
  servingKey: "/r/certs/apiserver.key",
  adminCert: "/r/certs/admin.crt",
  adminKey: "/r/certs/admin.key",
  saKey: "/r/certs/sa-signer.key",
  saPub: "/r/certs/sa-signer.pub",
};

/** Every flag must carry an explicit value and every address must be loopback. */
function expectLoopbackOnly(args: string[]): void {
  for (const a of args) {
    expect(a).toMatch(/^--[a-z0-9-]+=/);
    expect(a).not.toMatch(/(=|\/\/)0\.0\.0\.0\b|localhost:/);
  }
}

describe("control-plane flags", () => {
  it("etcd listens on loopback only, with a private data dir and no fsync", () => {
    const args = etcdArgs({ dataDir: "/r/etcd", ports: { etcdClient: 1111, etcdPeer: 2222 } });
    expect(args).toContain("--listen-client-urls=http://127.0.0.1:1111");
    expect(args).toContain("--advertise-client-urls=http://127.0.0.1:1111");
    expect(args).toContain("--listen-peer-urls=http://127.0.0.1:2222");
    expect(args).toContain("--data-dir=/r/etcd");
    expect(args).toContain("--unsafe-no-fsync=true");
    expectLoopbackOnly(args);
  });

  it("kube-apiserver uses envtest's flag set", () => {
    for (const mode of ["minimal", "full"] as const) {
      const args = apiserverArgs({ mode, certs, ports: { apiserver: 6443, etcdClient: 1111 } });
      expect(args).toEqual(
        expect.arrayContaining([
          "--bind-address=127.0.0.1",
          "--secure-port=6443",
          "--cert-dir=/r/certs",
          "--client-ca-file=/r/certs/ca.crt",
          "--authorization-mode=RBAC",
          "--service-account-issuer=https://127.0.0.1:6443/",
          "--service-account-key-file=/r/certs/sa-signer.pub",
          "--service-account-signing-key-file=/r/certs/sa-signer.key",
          "--service-cluster-ip-range=10.0.0.0/24",
          "--allow-privileged=true",
          "--etcd-servers=http://127.0.0.1:1111",
        ]),
      );
      expectLoopbackOnly(args);
    }
  });

  it("disables ServiceAccount admission only in minimal mode (no controller-manager to create SAs)", () => {
    const ports = { apiserver: 6443, etcdClient: 1111 };
    expect(apiserverArgs({ mode: "minimal", certs, ports })).toContain("--disable-admission-plugins=ServiceAccount");
    expect(apiserverArgs({ mode: "full", certs, ports }).some((a) => a.includes("ServiceAccount"))).toBe(false);
  });

  it("controller-manager, scheduler and kwok bind loopback and do not elect leaders", () => {
    const kcm = controllerManagerArgs({ kubeconfig: "/r/kubeconfig", certs, port: 3333 });
    expect(kcm).toEqual(
      expect.arrayContaining([
        "--kubeconfig=/r/kubeconfig",
        "--secure-port=3333",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--root-ca-file=/r/certs/ca.crt",
        "--service-account-private-key-file=/r/certs/sa-signer.key",
      ]),
    );
    const sched = schedulerArgs({ kubeconfig: "/r/kubeconfig", port: 4444 });
    expect(sched).toEqual(
      expect.arrayContaining(["--kubeconfig=/r/kubeconfig", "--secure-port=4444", "--bind-address=127.0.0.1", "--leader-elect=false"]),
    );
    const kwok = kwokArgs({ kubeconfig: "/r/kubeconfig", configFile: "/r/kwok.yaml", port: 5555 });
    expect(kwok).toEqual(
      expect.arrayContaining([
        "--kubeconfig=/r/kubeconfig",
        "--config=/r/kwok.yaml",
        "--manage-all-nodes=true",
        "--server-address=127.0.0.1:5555",
      ]),
    );
    for (const a of [kcm, sched, kwok]) expectLoopbackOnly(a);
  });

  it("serving cert SANs cover localhost and the bind address", () => {
    expect(servingSANs("127.0.0.1")).toBe("DNS:localhost,IP:127.0.0.1");
    expect(servingSANs("10.1.2.3")).toBe("DNS:localhost,IP:127.0.0.1,IP:10.1.2.3");
  });

  it("parses build.sh timing lines", () => {
    const lines = [
      "[control-plane] resolved kubernetes modules in 41s",
      "go: downloading something",
      "[control-plane] built kube-apiserver in 600s",
      "[control-plane] built etcd in 90s",
      "[control-plane] cold build total 1000s",
    ];
    expect(parseBuildTimes(lines)).toEqual({ "resolve kubernetes modules": 41, "kube-apiserver": 600, etcd: 90, total: 1000 });
    expect(parseBuildTimes(["[control-plane] all binaries cached in /x"])).toEqual({});
  });
});
