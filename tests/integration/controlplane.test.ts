// The control-plane harness itself: minimal mode (etcd + apiserver), full mode (Jobs really
// run to completion through controller-manager, scheduler and kwok), and start-up failures.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from "@kubernetes/client-node";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { ControlPlane, KWOK_ENV } from "../../src/controlplane/index.js";
import { useControlPlane } from "../support/cluster.js";

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function job(name: string, env: Record<string, string> = {}): V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: "Never",
          containers: [
            { name: "agent", image: "example.invalid/agent:test", env: Object.entries(env).map(([name, value]) => ({ name, value })) },
          ],
        },
      },
    },
  };
}

function condition(j: V1Job, type: string): string | undefined {
  return j.status?.conditions?.find((c) => c.type === type)?.status;
}

const widgetCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.harness.orchestrator.test
spec:
  group: harness.orchestrator.test
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.harness.orchestrator.test
spec:
  group: harness.orchestrator.test
  scope: Cluster
  names: { plural: gadgets, singular: gadget, kind: Gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;

describe("minimal control plane", () => {
  const cluster = useControlPlane("minimal");

  it("serves /readyz to kubectl with the generated kubeconfig", async () => {
    const cp = cluster();
    const kubectl = inject("kubectl");
    const r = await execa(kubectl, ["--kubeconfig", cp.kubeconfigPath, "get", "--raw", "/readyz"]);
    expect(r.stdout.trim()).toBe("ok");
  });

  it("reports the pinned Kubernetes version", async () => {
    const cp = cluster();
    const r = await execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, "version", "-o", "json"]);
    const v = JSON.parse(r.stdout) as { serverVersion: { gitVersion: string } };
    const pinned = /^KUBERNETES_VERSION=(\S+)$/m.exec(
      fs.readFileSync(path.join(import.meta.dirname, "../../hack/control-plane/versions.env"), "utf8"),
    )?.[1];
    expect(pinned).toBeTruthy();
    expect(v.serverVersion.gitVersion).toBe(pinned);
  });

  it("creates fresh namespaces", async () => {
    const cp = cluster();
    const a = await cp.createNamespace("Harness Test");
    const b = await cp.createNamespace("harness-test");
    expect(a).toMatch(/^harness-test-[0-9a-f]{6}$/);
    expect(a).not.toBe(b);
    const ns = await cp.kubeConfig.makeApiClient(CoreV1Api).readNamespace({ name: a });
    expect(ns.metadata?.name).toBe(a);
  });

  it("installs multi-document CRD files, re-applies them, and waits for discovery", async () => {
    const cp = cluster();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-crds-"));
    try {
      fs.writeFileSync(path.join(dir, "crds.yaml"), widgetCRDs);
      expect(await cp.installCRDs([dir])).toEqual(["widgets.harness.orchestrator.test", "gadgets.harness.orchestrator.test"]);
      // Second install updates in place (create → 409 → replace).
      expect(await cp.installCRDs([path.join(dir, "crds.yaml")])).toHaveLength(2);
      const r = await execa(inject("kubectl"), ["--kubeconfig", cp.kubeconfigPath, "get", "widgets", "-A", "-o", "name"]);
      expect(r.exitCode).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("full control plane (controller-manager, scheduler, kwok)", () => {
  const cluster = useControlPlane("full");

  it("runs a Job to Complete", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("job-ok");
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await batch.createNamespacedJob({ namespace: ns, body: job("ok") });
    // The pod passes through Running (kwok's pod-ready stage) before it completes.
    await eventually("a Running pod", async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=ok" });
      return pods.items.find((p) => p.status?.phase === "Running");
    });
    const done = await eventually("Job Complete", async () => {
      const j = await batch.readNamespacedJob({ name: "ok", namespace: ns });
      return condition(j, "Complete") === "True" ? j : undefined;
    });
    expect(done.status?.succeeded).toBe(1);
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=ok" });
    expect(pods.items[0]?.spec?.nodeName).toBe(cp.nodeName);
    expect(pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
  });

  it(`fails a Job whose container sets ${KWOK_ENV.fail}=true, copying ${KWOK_ENV.terminationMessage}`, async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("job-fail");
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    const message = '{"result":"error","detail":"line1\\nline2 \\"quoted\\""}';
    await batch.createNamespacedJob({
      namespace: ns,
      body: job("bad", { [KWOK_ENV.fail]: "true", [KWOK_ENV.terminationMessage]: message }),
    });
    const failed = await eventually("Job Failed", async () => {
      const j = await batch.readNamespacedJob({ name: "bad", namespace: ns });
      return condition(j, "Failed") === "True" ? j : undefined;
    });
    expect(failed.status?.failed).toBe(1);
    const pod: V1Pod | undefined = (await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=bad" })).items[0];
    expect(pod?.status?.phase).toBe("Failed");
    const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(terminated?.exitCode).toBe(1);
    expect(terminated?.reason).toBe("Error");
    expect(terminated?.message).toBe(message);
  });

  it(`reads its variables from any container and copies ${KWOK_ENV.othersTerminationMessage} into the other containers`, async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("job-two");
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    // The agent pod's shape: the channel first, the container the run's variables reach second.
    const body = job("two", {
      [KWOK_ENV.fail]: "true",
      [KWOK_ENV.runDuration]: "200ms",
      [KWOK_ENV.terminationMessage]: "the agent's",
      [KWOK_ENV.othersTerminationMessage]: "the channel's",
    });
    body.spec!.template.spec!.containers.unshift({ name: "channel", image: "example.invalid/agent:test" });
    await batch.createNamespacedJob({ namespace: ns, body });
    await eventually("Job Failed", async () => {
      const j = await batch.readNamespacedJob({ name: "two", namespace: ns });
      return condition(j, "Failed") === "True" ? j : undefined;
    });
    const pod = (await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=two" })).items[0];
    const byName = Object.fromEntries((pod?.status?.containerStatuses ?? []).map((c) => [c.name, c.state?.terminated]));
    expect(byName.channel).toMatchObject({ exitCode: 0, message: "the channel's" });
    expect(byName.agent).toMatchObject({ exitCode: 1, reason: "Error", message: "the agent's" });
  });

  it("runs bare pods in a fresh namespace until deleted (ServiceAccount admission on)", async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("bare");
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: "server" }, spec: { containers: [{ name: "c", image: "example.invalid/server" }] } },
    });
    const running = await eventually("pod Running", async () => {
      const p = await core.readNamespacedPod({ name: "server", namespace: ns });
      return p.status?.phase === "Running" ? p : undefined;
    });
    expect(running.spec?.serviceAccountName).toBe("default");
    expect(running.status?.podIP).toMatch(/^10\.244\./);
    await core.deleteNamespacedPod({ name: "server", namespace: ns });
    await eventually("pod deleted", async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      return pods.items.length === 0 ? true : undefined;
    });
  });

  it(`copies ${KWOK_ENV.terminationMessage} on success too`, async () => {
    const cp = cluster();
    const ns = await cp.createNamespace("job-msg");
    const batch = cp.kubeConfig.makeApiClient(BatchV1Api);
    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await batch.createNamespacedJob({ namespace: ns, body: job("msg", { [KWOK_ENV.terminationMessage]: "all done" }) });
    const terminated = await eventually("terminated container", async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=msg" });
      return pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated ?? undefined;
    });
    expect(terminated.message).toBe("all done");
    expect(terminated.exitCode).toBe(0);
  });
});

describe("start-up failures", () => {
  it("rejects with the exit code and stderr of a binary that dies at start", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-fake-bin-"));
    try {
      fs.writeFileSync(path.join(dir, "etcd"), "#!/bin/sh\necho 'boom: etcd cannot start' >&2\nexit 3\n", { mode: 0o755 });
      fs.writeFileSync(path.join(dir, "kube-apiserver"), "#!/bin/sh\nexit 99\n", { mode: 0o755 });
      // A private TMPDIR (os.tmpdir() reads it on each call) shows exactly what start() left behind.
      const savedTmp = process.env.TMPDIR;
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-tmpdir-"));
      process.env.TMPDIR = tmp;
      let err: Error | undefined;
      try {
        err = await ControlPlane.start({ mode: "minimal", binDir: dir }).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      } finally {
        if (savedTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmp;
      }
      expect(err).toBeInstanceOf(Error);
      expect(err?.message).toContain("boom: etcd cannot start");
      expect(err?.message).toMatch(/etcd exited with code 3/);
      // The failed start cleaned up after itself.
      expect(fs.readdirSync(tmp)).toEqual([]);
      fs.rmSync(tmp, { recursive: true, force: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names missing binaries", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-empty-bin-"));
    try {
      await expect(ControlPlane.start({ mode: "full", binDir: dir })).rejects.toThrow(
        /needs etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
