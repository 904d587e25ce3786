/**
 * The real node: pods run real containers (containerd + runc) on a kubelet joined with its own
 * identity, reach the API server through the `kubernetes` Service (kube-proxy) and keep data on
 * local-path volumes.
 * These tests fail, never skip, when the real node cannot start.
 */
import { BatchV1Api, CoreV1Api } from "@kubernetes/client-node";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { kubectlAs, nodeImages, runPod, useRealNode, type PodExtras } from "../support/real-node.js";

const cluster = useRealNode();

describe("real node", () => {
  it("registers with the node identity and runs a real container whose logs kubectl shows", async () => {
    const cp = cluster();
    expect(cp.nodeKind).toBe("real");
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    const node = await core.readNode({ name: cp.nodeName ?? "" });
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(node.status?.addresses?.find((a) => a.type === "InternalIP")?.address).toBe(cp.realNode?.ip);
    const ns = await cp.createNamespace("pod");
    const r = await runPod(cluster(), ns, "hello", "echo hello from $(hostname) && cat /proc/1/cgroup | head -1");
    expect(r.phase).toBe("Succeeded");
    expect(r.logs).toContain("hello from hello");
    const kubectl = await execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, "-n", ns, "logs", "hello"]);
    expect(kubectl.stdout).toContain("hello from hello");
  });

  it("confines kubelet to its own node (Node authorizer + NodeRestriction)", async () => {
    const cp = cluster();
    const nodeCerts = cp.certs.node;
    expect(nodeCerts).toBeDefined();
    const asKubelet = kubectlAs(cp, nodeCerts?.kubeletClientCert, nodeCerts?.kubeletClientKey);
    const own = await execa(inject("kubectl"), [...asKubelet, "get", "node", cp.nodeName ?? ""], { reject: false });
    expect(own.exitCode).toBe(0);
    const secrets = await execa(inject("kubectl"), [...asKubelet, "get", "secrets", "-A"], { reject: false });
    expect(secrets.exitCode).not.toBe(0);
    expect(secrets.stderr).toMatch(/forbidden/i);
    const other = await execa(
      inject("kubectl"),
      [...asKubelet, "label", "node", cp.nodeName ?? "", "node-role.kubernetes.io/control-plane=x"],
      { reject: false },
    );
    expect(other.stderr).toMatch(/forbidden|not allowed|cannot modify/i);
  });

  it("lets pods reach the API server through the kubernetes Service (kube-proxy)", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("svc");
    // nc connects to the Service IP, which kube-proxy DNATs to the API server on the node's IP; a
    // failed connect exits non-zero.
    const r = await runPod(cluster(), ns, "svc", "echo | nc -w 5 10.0.0.1 443 >/dev/null && echo SERVICE_OK");
    expect(r.phase).toBe("Succeeded");
    expect(r.logs).toContain("SERVICE_OK");
  });

  it("serves StorageClass local-path: a claim binds and keeps data between pods", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("pvc");
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: "data" },
        spec: { accessModes: ["ReadWriteOnce"], storageClassName: "local-path", resources: { requests: { storage: "1Gi" } } },
      },
    });
    const data: PodExtras = {
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
      mounts: [{ name: "data", mountPath: "/data" }],
    };
    const write = await runPod(cluster(), ns, "writer", "echo kept-$RANDOM > /data/file && cat /data/file", data);
    expect(write.phase).toBe("Succeeded");
    const read = await runPod(cluster(), ns, "reader", "cat /data/file", data);
    expect(read.phase).toBe("Succeeded");
    expect(read.logs.trim()).toBe(write.logs.trim());
    expect(read.logs).toMatch(/^kept-\d+/);
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace: ns });
    expect(claim.status?.phase).toBe("Bound");
  });

  it("runs a Job to completion", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("job");
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const images = await nodeImages();
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: "two" },
        spec: {
          completions: 2,
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: "Never",
              terminationGracePeriodSeconds: 1,
              containers: [{ name: "c", image: images.helper.ref, imagePullPolicy: "Never", command: ["sh", "-c", "echo done"] }],
            },
          },
        },
      },
    });
    let succeeded = 0;
    for (let i = 0; i < 120 && succeeded < 2; i++) {
      await new Promise((r) => setTimeout(r, 500));
      succeeded = (await batch.readNamespacedJob({ name: "two", namespace: ns })).status?.succeeded ?? 0;
    }
    expect(succeeded).toBe(2);
  });
});
