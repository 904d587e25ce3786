// A tiny volume provisioner for the simulated ("full") control plane. There is no storage
// driver here (kwok plays the kubelet), so a PersistentVolumeClaim would stay Pending and a pod
// using it would never be scheduled. Like local-path-provisioner does on a real node, this
// watches claims and creates a matching hostPath PersistentVolume pre-bound to each one; the
// real kube-controller-manager then binds them and the real scheduler places the pod.
// Nothing is written to the host: kwok never mounts volumes.
import { CoreV1Api, Watch, type KubeConfig, type V1PersistentVolumeClaim } from "@kubernetes/client-node";

export interface Provisioner {
  stop(): void;
}

function pvName(claim: V1PersistentVolumeClaim): string {
  return `pv-${claim.metadata?.namespace}-${claim.metadata?.name}`.slice(0, 253);
}

export async function startPvProvisioner(kc: KubeConfig, log: (line: string) => void = () => {}): Promise<Provisioner> {
  const core = kc.makeApiClient(CoreV1Api);
  const handled = new Set<string>();
  let stopped = false;
  let request: { abort(): void } | undefined;

  const provision = async (claim: V1PersistentVolumeClaim) => {
    const key = `${claim.metadata?.namespace}/${claim.metadata?.name}`;
    if (claim.spec?.volumeName || claim.status?.phase === "Bound" || handled.has(key) || claim.metadata?.deletionTimestamp) return;
    handled.add(key);
    try {
      await core.createPersistentVolume({
        body: {
          metadata: { name: pvName(claim), labels: { "orchestrator.test/provisioned": "true" } },
          spec: {
            capacity: { storage: claim.spec?.resources?.requests?.storage ?? "1Gi" },
            accessModes: claim.spec?.accessModes ?? ["ReadWriteOnce"],
            persistentVolumeReclaimPolicy: "Delete",
            storageClassName: claim.spec?.storageClassName ?? "",
            hostPath: { path: `/tmp/orchestrator-simulated-volumes/${pvName(claim)}` },
            claimRef: { namespace: claim.metadata?.namespace, name: claim.metadata?.name, uid: claim.metadata?.uid },
          },
        },
      });
      log(`provisioned a simulated volume for claim ${key}`);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) {
        handled.delete(key);
        log(`provisioning ${key} failed: ${(err as Error).message}`);
      }
    }
  };

  const watch = async (): Promise<void> => {
    if (stopped) return;
    const list = await core.listPersistentVolumeClaimForAllNamespaces();
    for (const c of list.items) await provision(c);
    request = await new Watch(kc).watch(
      "/api/v1/persistentvolumeclaims",
      { resourceVersion: list.metadata?.resourceVersion },
      (type, obj: V1PersistentVolumeClaim) => {
        if (type === "ADDED" || type === "MODIFIED") void provision(obj);
      },
      () => again(),
    );
  };
  // The watch ends when the API server stops (restarts, tests of an unreachable cluster): list
  // and watch again until it answers.
  const retry = (e: unknown) => {
    log(`volume watch failed: ${(e as Error).message}; retrying`);
    again();
  };
  const again = (): void => void (stopped || setTimeout(() => void watch().catch(retry), 500));
  await watch();
  return {
    stop() {
      stopped = true;
      request?.abort();
    },
  };
}
