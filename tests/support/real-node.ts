// The real node in tests: one control plane per file with `node: "real"`, the node's images, a
// DNS server on the host for the node's forwarder, and a snapshot of everything on the host the
// node may change (for clean-up assertions).
import { Resolver } from "node:dns/promises";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { execa } from "execa";
import { freePorts, type ControlPlane, type NodeImages } from "../../src/controlplane/index.js";
import { ensureImages } from "../../src/controlplane/images.js";
import { ManagedProcess, recordPid, registerTempRoot, releaseTempRoot } from "../../src/controlplane/process.js";
import { TOUCHED_SYSCTLS } from "../../src/controlplane/real-node.js";
import { useControlPlane } from "./cluster.js";

let images: Promise<NodeImages> | undefined;

/** The sandbox (pause) and helper (busybox) images, built or taken from the image cache. */
export function nodeImages(): Promise<NodeImages> {
  images ??= ensureImages(["pause", "busybox"]).then((built) => {
    const find = (name: string) => {
      const img = built.find((b) => b.name === name);
      if (!img) throw new Error(`image ${name} was not built`);
      return { ref: img.ref, archive: img.archive, digest: img.digest };
    };
    return { sandbox: find("pause"), helper: find("busybox") };
  });
  return images;
}

/** A full control plane with the real node for this test file (fails where it cannot start). */
export function useRealNode(): () => ControlPlane {
  return useControlPlane("full", { node: "real", nodeImages });
}

/** kubectl's flags to talk to the control plane as the identity of a client certificate (not the admin's kubeconfig). */
export function kubectlAs(cp: ControlPlane, cert: string | undefined, key: string | undefined): string[] {
  return ["--server", cp.server, "--certificate-authority", cp.certs.caCert, "--client-certificate", cert ?? "", "--client-key", key ?? ""];
}

export interface PodExtras {
  volumes?: NonNullable<V1Pod["spec"]>["volumes"];
  mounts?: { name: string; mountPath: string }[];
  dnsPolicy?: string;
}

/** Runs `command` (sh -c) in a busybox pod on the node; returns its final phase and logs. */
export async function runPod(
  cp: ControlPlane,
  ns: string,
  name: string,
  command: string,
  extra: PodExtras = {},
): Promise<{ phase: string; logs: string }> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  const images = await nodeImages();
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        restartPolicy: "Never",
        terminationGracePeriodSeconds: 1,
        ...(extra.dnsPolicy ? { dnsPolicy: extra.dnsPolicy } : {}),
        containers: [
          {
            name: "main",
            image: images.helper.ref,
            imagePullPolicy: "Never",
            command: ["sh", "-c", command],
            volumeMounts: extra.mounts ?? [],
          },
        ],
        volumes: extra.volumes ?? [],
      },
    },
  });
  let phase = "";
  for (let i = 0; i < 240 && phase !== "Succeeded" && phase !== "Failed"; i++) {
    await new Promise((r) => setTimeout(r, 250));
    phase = (await core.readNamespacedPod({ name, namespace: ns })).status?.phase ?? "";
  }
  const logs = await core.readNamespacedPodLog({ name, namespace: ns, container: "main" });
  return { phase, logs };
}

export interface UpstreamDns {
  /** "127.0.0.1:<port>", as the node's forwarder takes it (ControlPlaneOptions.nodeDnsUpstreams). */
  address: string;
  stop: () => Promise<void>;
}

/**
 * A DNS server on the host that knows only `records` (name → IPv4): the node's CoreDNS binary
 * with the hosts plugin, on a free loopback port. Returns once it answers.
 */
export async function startUpstreamDns(binDir: string, records: Record<string, string>): Promise<UpstreamDns> {
  const [port] = (await freePorts(1)) as [number];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-upstream-dns-"));
  registerTempRoot(root);
  const hosts = Object.entries(records).map(([name, ip]) => `        ${ip} ${name}`);
  const conf = path.join(root, "Corefile");
  fs.writeFileSync(conf, [`.:${port} {`, "    bind 127.0.0.1", "    hosts {", ...hosts, "    }", "}", ""].join("\n"));
  const p = ManagedProcess.start({ name: "upstream-dns", command: path.join(binDir, "coredns"), args: ["-conf", conf], cwd: root });
  recordPid(root, p.pid);
  const stop = async () => {
    await p.stop();
    releaseTempRoot(root);
  };
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const [name, ip] = Object.entries(records)[0] ?? ["", ""];
  for (let i = 0; ; i++) {
    const got = await resolver.resolve4(name).catch((): string[] => []);
    if (got.includes(ip)) return { address: `127.0.0.1:${port}`, stop };
    if (i === 40) {
      await stop();
      throw new Error(`the upstream DNS server did not answer ${name} on 127.0.0.1:${port}:\n${p.outputTail(20)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The node's daemons (by program name; containerd and shims by the node's paths, since other containerds may run). */
function isNodeProcess(args: string): boolean {
  const prog = (args.split(" ")[0] ?? "").split("/").pop() ?? "";
  if (["kubelet", "kube-proxy", "coredns", "local-path-provisioner"].includes(prog)) return true;
  if (prog === "containerd") return args.includes("/node/containerd.toml");
  if (prog === "containerd-shim-runc-v2") return args.includes("orchestrator-node");
  return false;
}

export interface HostSnapshot {
  sysctls: Record<string, string>;
  iptables: string;
  mounts: string[];
  links: string[];
  netns: string[];
  processes: string[];
}

/** What the real node may change on the host, normalised (no counters, no temp dirs of other tests). */
export async function hostSnapshot(): Promise<HostSnapshot> {
  const sysctls = Object.fromEntries(
    TOUCHED_SYSCTLS.map((k) => [k, fs.readFileSync(`/proc/sys/${k.replaceAll(".", "/")}`, "utf8").trim()]),
  );
  const dumps = await Promise.all(["iptables-save", "ip6tables-save"].map((t) => execa(t, [], { reject: false }).then((r) => r.stdout)));
  const iptables = dumps
    .join("\n")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""))
    .join("\n");
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m && !m.startsWith("/tmp/"))
    .sort();
  const links = (await execa("ip", ["-o", "link", "show"])).stdout
    .split("\n")
    .map((l) => l.split(":")[1]?.trim().split("@")[0] ?? "")
    .sort();
  const netns = fs.existsSync("/run/netns") ? fs.readdirSync("/run/netns").sort() : [];
  const ps = await execa("ps", ["-eo", "args="]);
  const processes = ps.stdout.split("\n").filter(isNodeProcess).sort();
  return { sysctls, iptables, mounts, links, netns, processes };
}
