/**
 * Cluster DNS on the real node: CoreDNS behind the `kube-dns` Service answers cluster.local from
 * the API server and forwards every other name to the host's resolvers. Here the forwarder points
 * at a DNS server the test starts on the host, which alone knows `only-upstream.test`.
 * These tests fail, never skip, when the real node cannot start.
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ControlPlane } from "../../src/controlplane/index.js";
import { kubectlAs, nodeImages, runPod, startUpstreamDns, type UpstreamDns } from "../support/real-node.js";

const UPSTREAM_NAME = "only-upstream.test";
const UPSTREAM_IP = "192.0.2.7";

let upstream: UpstreamDns | undefined;
let cp: ControlPlane | undefined;

beforeAll(async () => {
  const binDir = inject("controlPlaneBinDir");
  upstream = await startUpstreamDns(binDir, { [UPSTREAM_NAME]: UPSTREAM_IP });
  cp = await ControlPlane.start({
    mode: "full",
    node: "real",
    binDir,
    nodeImages,
    nodeDnsUpstreams: [upstream.address],
    log: (line) => console.log(`[control-plane] ${line}`),
  });
  console.log(`[control-plane] real node start-up ms: ${JSON.stringify(cp.realNode?.startupMs)}`);
});

afterAll(async () => {
  await cp?.stop();
  await upstream?.stop();
});

function cluster(): ControlPlane {
  if (!cp) throw new Error("control plane not started");
  return cp;
}

/** Matches busybox nslookup's answer line for `ip` (not the server's own "Address: ip:53"). */
const answers = (ip: string) => new RegExp(`Address:\\s+${ip.replaceAll(".", "\\.")}(\\n|$)`, "m");

describe("cluster DNS on the real node", () => {
  it("pods resolve the kubernetes Service by full name and a Service of their own by short name", async () => {
    const c = cluster();
    const ns = await c.createNamespace("dns");
    const core = c.kubeConfig.makeApiClient(CoreV1Api);
    const svc = await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } },
    });
    const webIp = svc.spec?.clusterIP ?? "";
    expect(webIp).toMatch(/^10\.0\.0\.\d+$/);
    // busybox nslookup tries every search domain and exits 1 when any of them is NXDOMAIN, so the
    // short name's verdict comes from ping, which resolves through libc and the search list as
    // programs do (the Service has no pods: ping gets no answer, but prints the address).
    const r = await runPod(
      c,
      ns,
      "lookup",
      "cat /etc/resolv.conf && nslookup kubernetes.default.svc.cluster.local && echo FQDN_OK && echo --- && nslookup web; echo ---; ping -c 1 -W 1 web; true",
    );
    expect(r.phase).toBe("Succeeded");
    expect(r.logs).toContain("nameserver 10.0.0.10");
    expect(r.logs).toContain(`search ${ns}.svc.cluster.local svc.cluster.local cluster.local`);
    const [kubernetes, web, ping] = r.logs.split("---");
    expect(kubernetes).toMatch(answers("10.0.0.1"));
    expect(kubernetes).toContain("FQDN_OK");
    expect(web).toContain(`Name:\tweb.${ns}.svc.cluster.local`);
    expect(web).toMatch(answers(webIp));
    expect(ping).toContain(`PING web (${webIp})`);
  });

  it("forwards names outside the cluster to the host's resolvers, for dnsPolicy Default pods too", async () => {
    const c = cluster();
    const ns = await c.createNamespace("dns-ext");
    const first = await runPod(c, ns, "cluster-first", `nslookup ${UPSTREAM_NAME} && echo LOOKUP_OK`);
    expect(first.logs).toMatch(answers(UPSTREAM_IP));
    expect(first.phase).toBe("Succeeded");
    const dflt = await runPod(c, ns, "default", `cat /etc/resolv.conf && nslookup ${UPSTREAM_NAME} && echo LOOKUP_OK`, {
      dnsPolicy: "Default",
    });
    expect(dflt.logs).toContain(`nameserver ${c.realNode?.ip ?? "?"}`);
    expect(dflt.logs).toMatch(answers(UPSTREAM_IP));
    expect(dflt.phase).toBe("Succeeded");
    // A name neither the cluster nor the upstream knows does not resolve.
    const none = await runPod(c, ns, "unknown", "nslookup nowhere.test");
    expect(none.logs).not.toMatch(/Address:\s+\d+\.\d+\.\d+\.\d+(\n|$)/m);
  });

  it("CoreDNS's identity reads Services but no Secrets", async () => {
    const c = cluster();
    const certs = c.certs.node;
    expect(certs).toBeDefined();
    const asCoreDns = kubectlAs(c, certs?.corednsCert, certs?.corednsKey);
    const services = await execa(inject("kubectl"), [...asCoreDns, "get", "services", "-A"], { reject: false });
    expect(services.stdout).toContain("kube-dns");
    const secrets = await execa(inject("kubectl"), [...asCoreDns, "get", "secrets", "-A"], { reject: false });
    expect(secrets.exitCode).not.toBe(0);
    expect(secrets.stderr).toMatch(/forbidden/i);
  });
});
