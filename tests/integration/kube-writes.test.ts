/**
 * The controller's writes (src/kube/controller-kube.ts over makeClients' JSON writes and
 * transport) against the real API server: what is created is what was built, AlreadyExists is
 * success, a merge patch's null deletes, and a refused write throws the API server's Status.
 */
import { ApiException, CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { useControlPlane, newNamespace } from "../support/cluster.js";
import { codeRun, runsApi } from "../support/controller-harness.js";
import { makeClients } from "../../src/kube/clients.js";
import { createControllerKube } from "../../src/kube/controller-kube.js";
import { isAlreadyExists } from "../../src/kube/errors.js";
import { TokenBucket } from "../../src/kube/rate-limit.js";

const cluster = useControlPlane("minimal", { crdPaths: ["infra/charts/orchestrator/crds"] });

describe("controller writes", () => {
  it("create what was built, treat AlreadyExists as success, and patch status", async () => {
    const kc = cluster().kubeConfig;
    const ns = await newNamespace("writes");
    const clients = makeClients(kc);
    const kube = createControllerKube(clients, new TokenBucket(100, 100));
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "files", namespace: ns, labels: { a: "b" } },
      data: { "x.md": "é\n" },
    };
    await kube.createConfigMap(cm);
    await kube.createConfigMap({ ...cm, data: { "x.md": "other" } });
    const read = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: ns, name: "files" });
    expect(read.data).toEqual({ "x.md": "é\n" });
    expect(read.metadata?.labels).toEqual({ a: "b" });
    expect(read.metadata?.managedFields?.[0]?.manager).toBe("orchestrator-controller");

    const ts = new Date();
    const event = {
      metadata: { name: "r.1", namespace: ns },
      involvedObject: { kind: "CodeRun", name: "r", namespace: ns },
      reason: "JobCreated",
      message: "m",
      type: "Normal",
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    };
    await kube.createEvent(event);
    await kube.createEvent(event);
    const ev = await kc.makeApiClient(CoreV1Api).readNamespacedEvent({ namespace: ns, name: "r.1" });
    expect(ev.reason).toBe("JobCreated");
    expect(new Date(ev.firstTimestamp ?? 0).getTime()).toBe(Math.floor(ts.getTime() / 1000) * 1000);

    const runs = runsApi(kc);
    await runs.create(codeRun(ns, "r"));
    await kube.patchRunStatus("CodeRun", ns, "r", { phase: "Running", message: "m", attempts: 1 });
    await kube.patchRunStatus("CodeRun", ns, "r", { message: null });
    expect((await runs.get("CodeRun", ns, "r")).status).toEqual({ phase: "Running", attempts: 1 });
  });

  it("a write the API server refuses throws its Status, and an existing object is AlreadyExists", async () => {
    const kc = cluster().kubeConfig;
    const ns = await newNamespace("writes");
    const { write } = makeClients(kc);
    const bad = write("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "Not_A_Name" } });
    await expect(bad).rejects.toBeInstanceOf(ApiException);
    const err = (await bad.catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body)).toMatchObject({ kind: "Status", reason: "Invalid" });
    await write("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "ok" } });
    const again = await write("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "ok" } }).catch((e: unknown) => e);
    expect(isAlreadyExists(again)).toBe(true);
  });
});
