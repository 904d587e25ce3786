/**
 * The dashboard's Kubernetes adapter: one-shot reads of Events, Jobs, Pods and workspace PVCs
 * (implements DashboardKube). Its live feed reads the controller manager's shared informers.
 * Every failure becomes a RunStoreError, so the routes map it like the rest of the API.
 */
import type { CoreV1Event, V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { agentContainerName, Labels, MANAGED_BY } from "../api/index.js";
import type { DashboardKube, EventSummary, JobSummary, PodSummary, WorkspaceSummary } from "../dashboard/ports.js";
import type { KubeClients } from "./clients.js";
import { callApi } from "./run-store.js";

const MANAGED = `${Labels.managedBy}=${MANAGED_BY}`;

const iso = (t: Date | string | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

function summarizeEvent(e: CoreV1Event): EventSummary {
  return {
    type: e.type ?? "Normal",
    reason: e.reason ?? "",
    message: e.message ?? "",
    object: `${e.involvedObject.kind ?? ""}/${e.involvedObject.name ?? ""}`,
    count: e.count ?? e.series?.count ?? 1,
    firstTime: iso(e.firstTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp),
    lastTime: iso(e.lastTimestamp ?? e.series?.lastObservedTime ?? e.eventTime ?? e.metadata.creationTimestamp),
  };
}

function summarizeJob(j: V1Job): JobSummary {
  const labels = j.metadata?.labels ?? {};
  const conditions = (j.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
  return {
    name: j.metadata?.name ?? "",
    uid: j.metadata?.uid ?? "",
    runUid: labels[Labels.runUid] ?? "",
    runName: labels[Labels.runName] ?? "",
    service: labels[Labels.service],
    attempt: Number(labels[Labels.attempt] ?? 0) || 0,
    createdAt: iso(j.metadata?.creationTimestamp),
    startTime: iso(j.status?.startTime),
    completionTime: iso(j.status?.completionTime),
    active: j.status?.active ?? 0,
    succeeded: j.status?.succeeded ?? 0,
    failed: j.status?.failed ?? 0,
    finished: conditions.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True"),
    conditions,
  };
}

function summarizePod(p: V1Pod): PodSummary {
  const agent = agentContainerName(p);
  const state = p.status?.containerStatuses?.find((c) => c.name === agent)?.state;
  return {
    name: p.metadata?.name ?? "",
    uid: p.metadata?.uid ?? "",
    job: p.metadata?.labels?.["batch.kubernetes.io/job-name"] ?? p.metadata?.labels?.["job-name"],
    phase: p.status?.phase ?? "Pending",
    reason: state?.waiting?.reason ?? state?.terminated?.reason ?? p.status?.reason,
  };
}

function summarizePvc(p: V1PersistentVolumeClaim): WorkspaceSummary {
  return {
    name: p.metadata?.name ?? "",
    service: p.metadata?.labels?.[Labels.service] ?? "",
    phase: p.status?.phase ?? "Pending",
    requested: p.spec?.resources?.requests?.storage,
    capacity: p.status?.capacity?.storage,
    storageClass: p.spec?.storageClassName,
    accessModes: p.spec?.accessModes ?? [],
    createdAt: iso(p.metadata?.creationTimestamp),
  };
}

export function createDashboardKube(clients: KubeClients, namespace: string): DashboardKube {
  const { core, batch } = clients;
  return {
    async listEvents(uids) {
      const lists = await callApi(() =>
        Promise.all(uids.filter(Boolean).map((uid) => core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.uid=${uid}` }))),
      );
      const events = lists.flatMap((l) => l.items).map(summarizeEvent);
      return events.sort((a, b) => (a.lastTime ?? "").localeCompare(b.lastTime ?? ""));
    },
    async listJobs(runUid) {
      const labelSelector = runUid ? `${MANAGED},${Labels.runUid}=${runUid}` : MANAGED;
      const res = await callApi(() => batch.listNamespacedJob({ namespace, labelSelector }));
      return res.items.map(summarizeJob).sort((a, b) => a.attempt - b.attempt || a.name.localeCompare(b.name));
    },
    async listPods(runUid) {
      const res = await callApi(() => core.listNamespacedPod({ namespace, labelSelector: `${MANAGED},${Labels.runUid}=${runUid}` }));
      return res.items.map(summarizePod);
    },
    async listWorkspaces() {
      const res = await callApi(() =>
        core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: `${MANAGED},${Labels.component}=code-runner` }),
      );
      return res.items.map(summarizePvc).sort((a, b) => a.service.localeCompare(b.service));
    },
  };
}
