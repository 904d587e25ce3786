// The real node in tests: one control plane per file with `node: "real"`, the node's images, and
// a snapshot of everything on the host the node may change (for clean-up assertions).
import fs from "node:fs";
import { execa } from "execa";
import type { ControlPlane, NodeImages } from "../../src/controlplane/index.js";
import { ensureImages } from "../../src/controlplane/images.js";
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

/** The node's daemons (by program name; containerd and shims by the node's paths, since other containerds may run). */
function isNodeProcess(args: string): boolean {
  const prog = (args.split(" ")[0] ?? "").split("/").pop() ?? "";
  if (["kubelet", "kube-proxy", "local-path-provisioner"].includes(prog)) return true;
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
