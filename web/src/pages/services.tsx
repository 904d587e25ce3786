// Services: each service's workspace PVC, its concurrency slots in use and the queue of runs
// waiting for one. Refetched whenever the stream reports a CodeRun change (no polling).
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, type ServiceView } from "../api.js";
import { useLive } from "../live.js";
import { href } from "../router.js";
import { Ago, Empty, ErrorNote, Facts, PhaseBadge, Section } from "../ui.js";

function Service({ s }: { s: ServiceView }) {
  const w = s.workspace;
  return (
    <Section title={`Service ${s.service}`} id={`service-${s.service}`}>
      <div class="grid">
        <div>
          <h3>Workspace</h3>
          {w ? (
            <Facts
              items={[
                ["PVC", w.name],
                ["Phase", <PhaseBadge phase={w.phase} />],
                ["Size", w.capacity ?? w.requested ?? "–"],
                ["Storage class", w.storageClass || "default"],
                ["Access", w.accessModes.join(", ")],
              ]}
            />
          ) : (
            <Empty>No workspace yet: the first run of the service creates it.</Empty>
          )}
        </div>
        <div>
          <h3>
            Slots: {s.active.length} of {s.limit} in use
          </h3>
          <meter min={0} max={s.limit} value={s.active.length} aria-label={`Slots of ${s.service} in use`}>
            {s.active.length}/{s.limit}
          </meter>
          {s.active.length ? (
            <ul>
              {s.active.map((a) => (
                <li key={a.run}>
                  <a href={href(["runs", "CodeRun", a.run])}>{a.run}</a> (attempt {a.attempt}, Job {a.job}
                  {a.since ? (
                    <>
                      , since <Ago iso={a.since} />
                    </>
                  ) : null}
                  )
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      </div>
      <h3>Queue ({s.queue.length})</h3>
      {s.queue.length ? (
        <ol class="queue">
          {s.queue.map((q) => (
            <li key={q.run}>
              <a href={href(["runs", "CodeRun", q.run])}>{q.run}</a> <span class="tag">{q.reason}</span> <Ago iso={q.createdAt} />
              {q.message ? <div class="muted">{q.message}</div> : null}
            </li>
          ))}
        </ol>
      ) : (
        <Empty>No run is waiting.</Empty>
      )}
      <p class="muted">
        Runs by phase:{" "}
        {Object.entries(s.phases)
          .map(([p, n]) => `${p} ${n}`)
          .join(", ") || "none"}
      </p>
    </Section>
  );
}

export function ServicesPage({ slotsPerService }: { slotsPerService: number }) {
  const live = useLive();
  const [services, setServices] = useState<ServiceView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  // A digest of what the view derives from: CodeRun versions. Other changes do not refetch.
  const codeRuns = useMemo(
    () =>
      [...live.runs.values()]
        .filter((r) => r.kind === "CodeRun")
        .map((r) => r.metadata.resourceVersion)
        .join(","),
    [live.version],
  );
  useEffect(() => {
    const t = setTimeout(() => api.services().then((d) => (setServices(d.services), setError(null)), setError), 100);
    return () => clearTimeout(t);
  }, [codeRuns]);
  return (
    <>
      <h1 tabIndex={-1}>Services</h1>
      <p class="muted">
        Each service has one workspace volume (ReadWriteOnce) and {slotsPerService} slot(s): at most that many of its runs are active at
        once; the others wait in order.
      </p>
      <ErrorNote error={error} />
      {services === null ? (
        <p>Loading…</p>
      ) : services.length === 0 ? (
        <Empty>No service has runs or a workspace yet.</Empty>
      ) : (
        services.map((s) => <Service key={s.service} s={s} />)
      )}
    </>
  );
}
