/**
 * Several replicas of the orchestrator (child processes, as the image runs it) on one namespace:
 * every replica takes REST and webhook submissions, only the holder of the leader Lease
 * reconciles. Failover: the leader is SIGKILLed in the middle of a burst of 300 submissions;
 * nothing acknowledged is lost, no run gets two Jobs for one attempt, and a follower takes over
 * once the Lease expires (the takeover time is measured). Rolling restart: replicas are replaced
 * one by one under load with SIGTERM; the stopping leader releases the Lease, so the handover
 * takes about one retry period instead of a Lease duration.
 */
import { BatchV1Api, CoordinationV1Api, CoreV1Api, type V1Job } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { CodeRun } from "../../src/api/index.js";
import { isTerminalPhase } from "../../src/api/index.js";
import { useControlPlane, newNamespace } from "../support/cluster.js";
import { createAgentSecrets, runsApi, startControllerProcess, waitFor } from "../support/controller-harness.js";
import {
  WEBHOOK_SECRET,
  commentPayload,
  runNameOf,
  signedDelivery,
  withNewDeliveryId,
  type Delivery,
} from "../support/webhook-fixtures.js";

const cluster = useControlPlane("full", { crdPaths: ["infra/charts/orchestrator/crds"] });

const LEASE = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 };
const CONFIG = `
concurrency: {perService: 100}
job: {maxRetries: 0}
controller:
  workers: 8
  resyncSeconds: 30
  leaderElection: ${JSON.stringify(LEASE)}
authorization: {quotas: {maxActiveRuns: 1000}}
github: {replies: false}
webhook:
  defaults: {githubUser: alice}
  rules:
    - name: run
      event: issue_comment
      actions: [created]
      commentPattern: '^/agent run (?<task>[0-9]+)'
      run: {service: hooks}
`;

type Replica = Awaited<ReturnType<typeof startControllerProcess>> & { name: string; alive: boolean };

async function startReplica(ns: string, name: string): Promise<Replica> {
  const t0 = Date.now();
  const r = await startControllerProcess(cluster().kubeconfigPath, ns, CONFIG, { POD_NAME: name, GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET });
  // Generous: on the shared 2-core machine under this load a process start can take a minute.
  await r.ready(240_000).catch((e: Error) => {
    r.child.kill("SIGKILL");
    throw new Error(`${e.message}\n${r.output()}`);
  });
  console.log(`[replicas] ${name} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return Object.assign(r, { name, alive: true });
}

/** The Lease as the API server has it: holder identity (`<POD_NAME>_<suffix>`) and acquire time. */
async function readLease(ns: string): Promise<{ holder: string; acquireMs: number; renewMs: number; transitions: number }> {
  const lease = await cluster()
    .kubeConfig.makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ namespace: ns, name: "orchestrator-leader" });
  return {
    holder: lease.spec?.holderIdentity ?? "",
    acquireMs: lease.spec?.acquireTime ? new Date(lease.spec.acquireTime).getTime() : 0,
    renewMs: lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0,
    transitions: lease.spec?.leaseTransitions ?? 0,
  };
}

const podOf = (identity: string) => identity.slice(0, identity.lastIndexOf("_"));

async function leaderGauge(r: Replica): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  const m = /^orchestrator_leader\{[^}]*\} (\d)/m.exec(text);
  return m ? Number(m[1]) : -1;
}

/** What a client got back: the run it was promised, or why not. */
interface Ack {
  via: "rest" | "webhook";
  run?: string;
  failure?: string;
}

/**
 * One submission, as a client behind a Service would send it: to its replica first, on a refused
 * connection or a 5xx to the next live one (REST with the same Idempotency-Key, the webhook with
 * the same signed body, so a retry can never make a second run).
 */
async function submit(i: number, replicas: Replica[], deliveries: Map<number, Delivery>): Promise<Ack> {
  const via = i % 2 === 0 ? "rest" : "webhook";
  let failure = "";
  for (let attempt = 0; attempt < 6; attempt++) {
    const live = replicas.filter((r) => r.alive);
    const r = live[(i + attempt) % live.length]!;
    try {
      const res =
        via === "rest"
          ? await fetch(`http://127.0.0.1:${r.port}/api/v1/pm/tasks`, {
              method: "POST",
              headers: { authorization: "Bearer test-token", "content-type": "application/json", "idempotency-key": `burst-${i}` },
              body: JSON.stringify({
                task_id: i + 1,
                service: `rest-${i % 5}`,
                repository_url: "https://github.com/acme/api.git",
                docs_repository_url: "https://github.com/acme/docs.git",
                github_user: "alice",
              }),
            })
          : await fetch(`http://127.0.0.1:${r.port}/webhooks/github`, {
              method: "POST",
              headers: deliveries.get(i)!.headers,
              body: deliveries.get(i)!.payload,
            });
      const body = (await res.json()) as { data?: { coderun_name?: string; outcome?: string } };
      if (via === "rest" && res.status === 201) return { via, run: body.data?.coderun_name };
      if (via === "webhook" && ["created", "duplicate", "accepted"].includes(body.data?.outcome ?? ""))
        return { via, run: body.data?.coderun_name };
      failure = `${res.status} ${JSON.stringify(body).slice(0, 300)}`;
      if (res.status < 500) return { via, failure };
    } catch (e) {
      failure = (e as Error).message;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return { via, failure };
}

async function signedDeliveries(from: number, to: number): Promise<Map<number, Delivery>> {
  const m = new Map<number, Delivery>();
  for (let i = from; i < to; i++) if (i % 2 === 1) m.set(i, await signedDelivery("issue_comment", commentPayload(`/agent run ${i + 1}`)));
  return m;
}

/**
 * Submits from `from` on, `parallel` in flight, until `to` or until `more()` says stop (checked
 * before each submission, once at least `min` were sent); `during(i)` runs before submission i.
 */
async function burst(opts: {
  from: number;
  to: number;
  replicas: Replica[];
  deliveries: Map<number, Delivery>;
  parallel: number;
  during?: (i: number) => Promise<void>;
  more?: () => boolean;
  min?: number;
}): Promise<Ack[]> {
  const { from, to, parallel, during, more, min = to } = opts;
  const acks: Ack[] = [];
  let next = from;
  const worker = async () => {
    while (next < to && (next < min || (more?.() ?? true))) {
      const i = next++;
      await during?.(i);
      acks[i - from] = await submit(i, opts.replicas, opts.deliveries);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return acks;
}

/** Every acknowledged run exists and finished; exactly one Job per run and attempt; one JobCreated Event each. */
async function expectAllFinishedOnce(ns: string, acked: string[], timeoutMs: number, replicas: Replica[]): Promise<void> {
  const runs = runsApi(cluster().kubeConfig);
  const all = await waitFor(
    async () => {
      const items = await runs.list(ns);
      const byName = new Map(items.map((r) => [r.metadata.name, r]));
      return acked.every((n) => isTerminalPhase(byName.get(n)?.status?.phase)) && items;
    },
    timeoutMs,
    "every acknowledged run finished",
    1000,
  ).catch(async (e: Error) => {
    const items = await runs.list(ns);
    const missing = acked.filter((n) => !items.some((r) => r.metadata.name === n));
    const phases = new Map<string, number>();
    for (const r of items) phases.set(r.status?.phase ?? "none", (phases.get(r.status?.phase ?? "none") ?? 0) + 1);
    const logs = replicas.filter((r) => r.alive).map((r) => `--- ${r.name}\n${r.output().slice(-3000)}`);
    throw new Error(`${e.message}; missing ${missing.length}, phases ${JSON.stringify([...phases])}\n${logs.join("\n")}`);
  });
  // Nothing beyond what was acknowledged (a retried submission never made a second run).
  expect(all.map((r) => r.metadata.name).sort()).toEqual([...acked].sort());
  const failed = (all as CodeRun[]).filter((r) => r.status?.phase !== "Succeeded");
  expect(failed.map((r) => `${r.metadata.name}: ${r.status?.phase} ${r.status?.message ?? ""}`)).toEqual([]);
  const jobs: V1Job[] = (await cluster().kubeConfig.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns })).items;
  const perAttempt = new Map<string, number>();
  for (const j of jobs) {
    const key = `${j.metadata?.labels?.["orchestrator.platform/run-uid"]}/${j.metadata?.labels?.["orchestrator.platform/attempt"]}`;
    perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
  }
  expect([...perAttempt].filter(([, n]) => n > 1)).toEqual([]);
  expect(jobs.length).toBe(acked.length);
  const events = (await cluster().kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns })).items;
  for (const run of all as CodeRun[]) {
    expect(run.status?.attempts, run.metadata.name).toBe(1);
    const created = events.filter((e) => e.involvedObject.uid === run.metadata.uid && e.reason === "JobCreated");
    expect(created.length, run.metadata.name).toBe(1);
  }
}

async function stopAll(replicas: Replica[]): Promise<void> {
  for (const r of replicas.filter((x) => x.alive)) r.child.kill("SIGTERM");
  for (const r of replicas) {
    await r.child;
    r.cleanup();
  }
}

describe("leader election across replicas", () => {
  it(
    "failover: SIGKILL of the leader during a burst of 300 submissions loses nothing and doubles nothing",
    { timeout: 900_000 },
    async () => {
      const ns = await newNamespace("failover");
      await createAgentSecrets(cluster().kubeConfig, ns);
      const replicas: Replica[] = [];
      for (const name of ["replica-0", "replica-1", "replica-2"]) replicas.push(await startReplica(ns, name));
      try {
        const first = await waitFor(async () => (await readLease(ns)).holder, 30_000, "a leader");
        const leader = replicas.find((r) => r.name === podOf(first))!;
        expect(leader).toBeDefined();
        // Metrics and readiness show who leads, on every replica.
        await waitFor(async () => (await leaderGauge(leader)) === 1, 10_000, "leader gauge 1");
        for (const r of replicas.filter((x) => x !== leader)) expect(await leaderGauge(r)).toBe(0);
        // A follower's readiness details (behind auth) name the leader and itself.
        const follower = replicas.find((r) => r !== leader)!;
        const detail = await fetch(`http://127.0.0.1:${follower.port}/api/v1/readiness`, {
          headers: { authorization: "Bearer test-token" },
        });
        const { checks } = (await detail.json()) as { checks: Record<string, unknown> };
        expect(checks).toMatchObject({ leader: first, leading: false });
        expect(String(checks.identity)).toMatch(new RegExp(`^${follower.name}_[0-9a-f]{8}$`));

        const N = 300;
        const deliveries = await signedDeliveries(0, N);
        let killedAt = 0;
        let lastRenewal = { holder: "", renewMs: 0 };
        const burstStart = Date.now();
        const acks = await burst({
          from: 0,
          to: N,
          replicas,
          deliveries,
          parallel: 12,
          during: async (i) => {
            if (i !== 100) return;
            leader.child.kill("SIGKILL");
            killedAt = Date.now();
            leader.alive = false;
            // The dead leader's last renewal: no follower may take over before it is a Lease duration old.
            await leader.child;
            lastRenewal = await readLease(ns);
          },
        });
        console.log(
          `[failover] ${N} submissions in ${((Date.now() - burstStart) / 1000).toFixed(1)} s; leader killed ${((killedAt - burstStart) / 1000).toFixed(1)} s in`,
        );
        await leader.child;
        const failures = acks.filter((a) => !a.run);
        expect(failures.map((a) => `${a.via}: ${a.failure}`)).toEqual([]);

        // A follower takes over once the dead leader's Lease expired (client-go semantics).
        const after = await waitFor(
          async () => {
            const l = await readLease(ns);
            return l.holder !== "" && podOf(l.holder) !== leader.name && l;
          },
          60_000,
          "a new leader",
          100,
        );
        const takeoverMs = after.acquireMs - killedAt;
        const newLeader = replicas.find((r) => r.name === podOf(after.holder))!;
        await waitFor(async () => (await leaderGauge(newLeader)) === 1, 10_000, "new leader gauge 1");
        // The gauge can flip before the new leader's first Job exists: wait for that Job, then bound its delay.
        const batch = cluster().kubeConfig.makeApiClient(BatchV1Api);
        const firstJobAfter = await waitFor(
          async () => {
            const created = (await batch.listNamespacedJob({ namespace: ns })).items
              .map((j) => new Date(j.metadata!.creationTimestamp!).getTime())
              .filter((t) => t >= Math.floor(after.acquireMs / 1000) * 1000);
            return created.length > 0 && Math.min(...created);
          },
          30_000,
          "a Job created by the new leader",
          100,
        );
        console.log(
          `[failover] takeover ${(takeoverMs / 1000).toFixed(1)} s after SIGKILL, ${((after.acquireMs - lastRenewal.renewMs) / 1000).toFixed(1)} s after the dead leader's last renewal (Lease ${LEASE.leaseDurationSeconds} s, retry ${LEASE.retryPeriodSeconds} s); ` +
            `first Job by the new leader ${((firstJobAfter - killedAt) / 1000).toFixed(1)} s after the kill (creationTimestamp, 1 s resolution)`,
        );
        // Never before the Lease could have expired (a Lease duration after the dead leader's last
        // renewal, which a loaded leader may have made seconds before it died), and within its
        // duration plus the two polls that observe it after the kill.
        expect(podOf(lastRenewal.holder)).toBe(leader.name);
        expect(after.acquireMs).toBeGreaterThanOrEqual(lastRenewal.renewMs + LEASE.leaseDurationSeconds * 1000);
        expect(takeoverMs).toBeLessThanOrEqual((LEASE.leaseDurationSeconds + 2 * LEASE.retryPeriodSeconds) * 1000);
        expect(firstJobAfter - after.acquireMs).toBeLessThan(5_000);

        const acked = acks.map((a) => a.run!);
        expect(new Set(acked).size).toBe(N);
        await expectAllFinishedOnce(ns, acked, 600_000, replicas);

        // Dedupe holds across replicas: a redelivery and a repeated Idempotency-Key on another replica make nothing new.
        const live = replicas.filter((r) => r.alive);
        const redelivered = withNewDeliveryId(deliveries.get(1)!);
        const dup = await fetch(`http://127.0.0.1:${live[1]!.port}/webhooks/github`, {
          method: "POST",
          headers: redelivered.headers,
          body: redelivered.payload,
        });
        expect(dup.status).toBe(200);
        expect(((await dup.json()) as { data: { coderun_name: string } }).data.coderun_name).toBe(runNameOf(deliveries.get(1)!));
        const again = await submit(0, [live[1]!], deliveries);
        expect(again.run).toBe(acked[0]);
        expect((await runsApi(cluster().kubeConfig).list(ns)).length).toBe(N);
      } finally {
        await stopAll(replicas);
      }
    },
  );

  it(
    "rolling restart under load: each replica replaced by SIGTERM, the leader hands over at once, nothing lost",
    { timeout: 900_000 },
    async () => {
      const ns = await newNamespace("rolling");
      await createAgentSecrets(cluster().kubeConfig, ns);
      const replicas: Replica[] = [];
      for (const name of ["replica-0", "replica-1", "replica-2"]) replicas.push(await startReplica(ns, name));
      try {
        await waitFor(async () => (await readLease(ns)).holder, 30_000, "a leader");
        // Load all through the rollout: at least 100 submissions, and on until the last old pod is gone.
        const MAX = 400;
        const deliveries = await signedDeliveries(0, MAX);
        const handovers: number[] = [];
        let rolledOut = false;
        const stopSeconds: number[] = [];
        // For each old pod a new one first (maxSurge 1), then SIGTERM, as a Deployment rolls.
        const rollout = (async () => {
          for (let k = 0; k < 3; k++) {
            const fresh = await startReplica(ns, `replica-${3 + k}`);
            replicas.push(fresh);
            const old = replicas[k]!;
            const wasLeader = podOf((await readLease(ns)).holder) === old.name;
            const t0 = Date.now();
            // SIGTERM alone (execa's kill() would add a SIGKILL after 5 s; Kubernetes waits 30 s).
            process.kill(old.child.pid!, "SIGTERM");
            old.alive = false;
            const exit = await old.child;
            stopSeconds.push((Date.now() - t0) / 1000);
            const steps = old
              .output()
              .split("\n")
              .filter((l) => /"msg":"(Stopping|Drained|Released|Stopped)/.test(l));
            console.log(`[rolling] ${old.name} stop:\n${steps.join("\n")}`);
            expect(exit.exitCode, old.output().slice(-2000)).toBe(0);
            if (wasLeader) {
              expect(old.output()).toContain("Released the leader Lease");
              const l = await waitFor(
                async () => {
                  const x = await readLease(ns);
                  return x.holder !== "" && podOf(x.holder) !== old.name && x;
                },
                30_000,
                "the next leader",
                100,
              );
              handovers.push(l.acquireMs - t0);
            }
          }
        })().finally(() => (rolledOut = true));
        // Awaited below, after the load stopped; a failure must not surface as an unhandled rejection first.
        rollout.catch(() => undefined);
        const acks = await burst({
          from: 0,
          to: MAX,
          replicas,
          deliveries,
          parallel: 4,
          min: 100,
          more: () => !rolledOut,
          during: () => new Promise((r) => setTimeout(r, 250)),
        });
        await rollout;
        expect(acks.filter((a) => !a.run).map((a) => `${a.via}: ${a.failure}`)).toEqual([]);
        console.log(`[rolling] ${acks.length} submissions during the rollout`);
        console.log(`[rolling] SIGTERM to exit: ${stopSeconds.map((x) => `${x.toFixed(1)} s`).join(", ")}`);
        console.log(`[rolling] leader handover after SIGTERM: ${handovers.map((h) => `${(h / 1000).toFixed(1)} s`).join(", ")}`);
        // The leader was among the replaced pods, and released the Lease: no Lease duration to wait out.
        expect(handovers.length).toBeGreaterThanOrEqual(1);
        // Without the release a follower waits at least leaseDuration - retryPeriod after the last
        // renewal (which may even follow SIGTERM, while the workers drain): anything below that
        // is the release at work. The measured figures are printed above.
        for (const h of handovers) expect(h).toBeLessThan((LEASE.leaseDurationSeconds - LEASE.retryPeriodSeconds) * 1000);
        await expectAllFinishedOnce(
          ns,
          acks.map((a) => a.run!),
          600_000,
          replicas,
        );
      } finally {
        await stopAll(replicas);
      }
    },
  );
});
