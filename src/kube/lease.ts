/** The election's Kubernetes adapter: one coordination.k8s.io/v1 Lease, read and replaced whole. */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { LeaseClient, LeaseRecord, ObservedLease } from "../controller/leader.js";
import { isNotFound } from "./errors.js";

const micro = (d: Date | undefined) => (d ? new V1MicroTime(d.getTime()) : undefined);
const date = (d: Date | string | undefined) => (d ? new Date(d) : undefined);

function toRecord(lease: V1Lease): ObservedLease {
  const s = lease.spec ?? {};
  return {
    holder: s.holderIdentity ?? "",
    durationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: date(s.acquireTime),
    renewTime: date(s.renewTime),
    transitions: s.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion ?? "",
  };
}

function toLease(namespace: string, name: string, r: LeaseRecord, resourceVersion?: string): V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: {
      // A released Lease has no holder (the field is omitted, as client-go's release does).
      ...(r.holder ? { holderIdentity: r.holder } : {}),
      leaseDurationSeconds: r.durationSeconds,
      acquireTime: micro(r.acquireTime),
      renewTime: micro(r.renewTime),
      leaseTransitions: r.transitions,
    },
  };
}

/** The Lease `name` in `namespace`; the ServiceAccount needs get, create and update on leases. */
export function createLeaseClient(kc: KubeConfig, namespace: string, name: string): LeaseClient {
  const api = kc.makeApiClient(CoordinationV1Api);
  return {
    async get() {
      try {
        return toRecord(await api.readNamespacedLease({ namespace, name }));
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    },
    create: async (r) => toRecord(await api.createNamespacedLease({ namespace, body: toLease(namespace, name, r) })),
    update: async (r, resourceVersion) =>
      toRecord(await api.replaceNamespacedLease({ namespace, name, body: toLease(namespace, name, r, resourceVersion) })),
  };
}
