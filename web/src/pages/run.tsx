// One run: summary, Cancel/Retry, live progress, the timeline (conditions, Events, attempts)
// and the agent's log, streamed.
import { useEffect, useRef, useState } from "preact/hooks";
import type { AnyRun } from "../../../src/api/types.js";
import type { LogContainer } from "../../../src/api/runner-contract.js";
import { ApiError, api, type RunKind, type Timeline } from "../api.js";
import { clock, count, duration, isFinished, phaseOf, requesterOf, usd } from "../format.js";
import { runKey, useLive } from "../live.js";
import { emptyProgress, progressFromLine, type LiveProgress } from "../progress.js";
import { href } from "../router.js";
import { Ago, Empty, ErrorNote, ExternalLink, Facts, PhaseBadge, Section } from "../ui.js";

interface Entry {
  time: string;
  source: "run" | "condition" | "event" | "attempt";
  text: string;
  warning?: boolean;
}

/** Everything that happened to the run, oldest first. */
export function timelineEntries(run: AnyRun, t: Timeline | null): Entry[] {
  const out: Entry[] = [];
  const add = (time: string | undefined, source: Entry["source"], text: string, warning = false) =>
    time && out.push({ time, source, text, warning });
  add(run.metadata.creationTimestamp, "run", `Created${requesterOf(run) ? ` by ${requesterOf(run)}` : ""}`);
  add(run.status?.startTime, "run", "Started");
  for (const c of run.status?.conditions ?? [])
    add(c.lastTransitionTime, "condition", `${c.type}=${c.status} (${c.reason}): ${c.message}`, c.type === "Failed" && c.status === "True");
  for (const j of t?.jobs ?? []) {
    add(j.createdAt, "attempt", `Attempt ${j.attempt}: Job ${j.name} created`);
    const end = j.conditions.find((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    if (end)
      add(
        j.completionTime ?? j.createdAt,
        "attempt",
        `Attempt ${j.attempt}: Job ${end.type === "Complete" ? "completed" : `failed${end.reason ? ` (${end.reason})` : ""}`}`,
        end.type === "Failed",
      );
  }
  for (const e of t?.events ?? [])
    add(e.lastTime, "event", `${e.reason} on ${e.object}: ${e.message}${e.count > 1 ? ` (×${e.count})` : ""}`, e.type === "Warning");
  add(
    run.status?.completionTime,
    "run",
    `Finished: ${phaseOf(run)}${run.status?.message ? ` — ${run.status.message}` : ""}`,
    phaseOf(run) === "Failed",
  );
  // By instant (the API mixes "…:25Z" and "…:25.000Z"); the sort is stable, so ties keep the order above.
  return out.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

function Actions({ run }: { run: AnyRun }) {
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ text: string; link?: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const name = run.metadata.name ?? "";
  const act = async (what: "cancel" | "retry") => {
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      if (what === "cancel") {
        await api.cancel(run.kind, name);
        setNote({ text: "Cancel requested; the controller stops the run." });
      } else {
        const data = await api.retry(run.kind, name);
        const created = data.coderun_name ?? data.docsrun_name ?? "";
        setNote({ text: `Retry submitted as ${created}.`, link: href(["runs", run.kind, created]) });
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const finished = isFinished(run);
  return (
    <div class="actions">
      <button type="button" class="danger" disabled={busy || finished || run.spec.cancel === true} onClick={() => void act("cancel")}>
        {run.spec.cancel && !finished ? "Cancelling…" : "Cancel run"}
      </button>
      <button type="button" disabled={busy || !finished} onClick={() => void act("retry")}>
        Retry
      </button>
      <div role="status" aria-live="polite">
        {note && (
          <p class="note">
            {note.text} {note.link && <a href={note.link}>Open the new run</a>}
          </p>
        )}
      </div>
      <ErrorNote error={error} />
    </div>
  );
}

function Progress({ run, live }: { run: AnyRun; live: LiveProgress }) {
  const r = run.status?.result;
  const fromResult = r && isFinished(run);
  const items: [string, string][] = [
    ["Turns", count(fromResult ? (r.turns ?? live.turns) : live.turns)],
    ["Tool calls", count(live.toolCalls)],
    ["Input tokens", count(fromResult ? (r.inputTokens ?? live.inputTokens) : live.inputTokens)],
    ["Output tokens", count(fromResult ? (r.outputTokens ?? live.outputTokens) : live.outputTokens)],
    ["Cost", usd(fromResult ? (r.costUsd ?? live.costUsd) : live.costUsd)],
    ["Last tool", live.lastTool ?? "–"],
  ];
  return (
    <Section title="Progress">
      <dl class="stats">
        {items.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <p class="muted">
        {fromResult ? "From the run's result." : "Live from the agent's log; token totals arrive every 10 turns, the cost with the result."}
      </p>
    </Section>
  );
}

/**
 * Streams one container's log of the run's current Job; restarts when the Job, the phase or the
 * container changes. Live progress comes from the agent container's log only.
 */
function useLog(
  kind: RunKind,
  name: string,
  container: LogContainer,
  restartOn: string,
): { lines: string[]; problem: string | null; progress: LiveProgress } {
  const [lines, setLines] = useState<string[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const [progress, setProgress] = useState<LiveProgress>(emptyProgress);
  useEffect(() => {
    const abort = new AbortController();
    const agent = container === "agent";
    setLines([]);
    if (agent) setProgress(emptyProgress());
    void (async () => {
      try {
        const res = await fetch(api.logsUrl(kind, name, container), { credentials: "same-origin", signal: abort.signal });
        if (!res.ok) {
          const body = (await res.json().catch(() => ({}))) as { detail?: string };
          setProblem(body.detail ?? `HTTP ${res.status}`);
          return;
        }
        setProblem(null);
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let rest = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parts = (rest + value).split("\n");
          rest = parts.pop() ?? "";
          setLines((l) => [...l, ...parts].slice(-5000));
          if (agent) setProgress((p) => parts.reduce(progressFromLine, p));
        }
      } catch (e) {
        if (!abort.signal.aborted) setProblem(`The log stream ended: ${String(e)}`);
      }
    })();
    return () => abort.abort();
  }, [kind, name, container, restartOn]);
  return { lines, problem, progress };
}

const LOG_CHOICES: [LogContainer, string][] = [
  ["agent", "Agent (Claude Code)"],
  ["channel", "Channel (preparation, model proxy, GitHub tools, delivery)"],
];

interface LogProps {
  lines: string[];
  problem: string | null;
  container: LogContainer;
  onContainer: (c: LogContainer) => void;
  onReload: () => void;
}

function Log({ lines, problem, container, onContainer, onReload }: LogProps) {
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = pre.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <Section title="Log">
      <fieldset class="log-choice">
        <legend>Container</legend>
        {LOG_CHOICES.map(([value, label]) => (
          <label key={value}>
            <input type="radio" name="log-container" value={value} checked={container === value} onChange={() => onContainer(value)} />{" "}
            {label}
          </label>
        ))}
      </fieldset>
      {problem ? (
        <div class="actions">
          <p class="note">{problem}</p>
          <button type="button" class="secondary" onClick={onReload}>
            Reload log
          </button>
        </div>
      ) : null}
      {lines.length || !problem ? (
        <pre ref={pre} class="log" tabIndex={0} aria-label={`${container === "agent" ? "Agent" : "Channel"} log output`}>
          {lines.length ? lines.join("\n") : "Waiting for output…"}
        </pre>
      ) : null}
    </Section>
  );
}

function Attempts({ t }: { t: Timeline | null }) {
  if (!t) return <p>Loading…</p>;
  if (t.jobs.length === 0) return <Empty>No attempt has started yet.</Empty>;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">Attempts</caption>
        <thead>
          <tr>
            <th scope="col">Attempt</th>
            <th scope="col">Job</th>
            <th scope="col">Pod</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {t.jobs.map((j) => {
            const pod = t.pods.find((p) => p.job === j.name);
            const result = j.succeeded > 0 ? "Succeeded" : j.finished ? "Failed" : j.active > 0 ? "Running" : "Pending";
            return (
              <tr key={j.name}>
                <th scope="row">{j.attempt}</th>
                <td>{j.name}</td>
                <td>{pod ? `${pod.phase}${pod.reason ? ` (${pod.reason})` : ""}` : "–"}</td>
                <td>{clock(j.startTime ?? j.createdAt)}</td>
                <td>{duration(j.startTime ?? j.createdAt, j.completionTime)}</td>
                <td>
                  <PhaseBadge phase={result} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function TimelineList({ entries }: { entries: Entry[] }) {
  return (
    <ol class="timeline">
      {entries.map((e, i) => (
        <li key={i} class={e.warning ? "warning" : undefined}>
          <time dateTime={e.time}>{clock(e.time)}</time> <span class={`tag tag-${e.source}`}>{e.source}</span> {e.text}
        </li>
      ))}
    </ol>
  );
}

function Summary({ run }: { run: AnyRun }) {
  const s = run.status;
  const code = run.kind === "CodeRun" ? run : undefined;
  return (
    <Facts
      items={[
        ["Phase", <PhaseBadge phase={phaseOf(run)} />],
        ["Message", s?.message ?? "–"],
        ["Service", code?.spec.service ?? "–"],
        ["Task", code ? String(code.spec.taskId) : "–"],
        ["Repository", <ExternalLink url={run.spec.repositoryUrl} />],
        ["Model", run.spec.model ?? "default"],
        ["Requested by", requesterOf(run) || "–"],
        ["Created", <Ago iso={run.metadata.creationTimestamp} />],
        ["Duration", duration(s?.startTime, s?.completionTime)],
        ["Attempts", String(s?.attempts ?? 0)],
        ["Job", s?.jobName ?? "–"],
        ["Pull request", s?.pullRequestUrl ? <ExternalLink url={s.pullRequestUrl} /> : "–"],
      ]}
    />
  );
}

export function RunPage({ kind, name }: { kind: string; name: string }) {
  const live = useLive();
  const run = live.runs.get(runKey(kind, name));
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [error, setError] = useState<unknown>(null);
  const rv = run?.metadata.resourceVersion ?? "";
  // Refetched on every change of the run the stream reports (no polling).
  useEffect(() => {
    if (!run) return;
    api.timeline(run.kind, name).then(
      (t) => (setTimeline(t), setError(null)),
      (e: unknown) => {
        // 404: the run was deleted meanwhile; the stream removes it from the page.
        if (e instanceof ApiError && e.status === 404) setTimeline({ jobs: [], pods: [], events: [] });
        else setError(e);
      },
    );
  }, [rv]);
  const [reloads, setReloads] = useState(0);
  const [container, setContainer] = useState<LogContainer>("agent");
  const log = useLog(kind as RunKind, name, container, `${run?.status?.jobName ?? ""}/${run ? phaseOf(run) : ""}/${reloads}`);
  if (!run) {
    return (
      <>
        <h1 tabIndex={-1}>{name}</h1>
        <p>{live.connection === "live" ? `There is no ${kind} named ${name} (it may have been deleted).` : "Loading…"}</p>
        <a href={href(["runs"])}>All runs</a>
      </>
    );
  }
  return (
    <>
      <p class="crumbs">
        <a href={href(["runs"])}>Runs</a> / {run.kind}
      </p>
      <h1 tabIndex={-1}>
        {name} <PhaseBadge phase={phaseOf(run)} />
      </h1>
      <Actions run={run} />
      <div class="grid">
        <Section title="Summary">
          <Summary run={run} />
        </Section>
        <Progress run={run} live={log.progress} />
      </div>
      <Section title="Attempts">
        <Attempts t={timeline} />
      </Section>
      <Section title="Timeline">
        <ErrorNote error={error} />
        <TimelineList entries={timelineEntries(run, timeline)} />
      </Section>
      <Log
        lines={log.lines}
        problem={log.problem}
        container={container}
        onContainer={setContainer}
        onReload={() => setReloads((n) => n + 1)}
      />
    </>
  );
}
