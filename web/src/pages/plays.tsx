// Plays: the list, and one Play per task as a stage graph (who is on which stage), its PR and
// the check runs the Play reported on it, remediation iterations and the history.
import { useMemo } from "preact/hooks";
import { Labels } from "../../../src/api/constants.js";
import { PlayStages, type Play, type PlayHistoryEntry, type PlayStage } from "../../../src/api/play.js";
import { phaseOf } from "../format.js";
import { useLive } from "../live.js";
import { href } from "../router.js";
import { Ago, Empty, ExternalLink, Facts, PhaseBadge, Section } from "../ui.js";
import { RunsTable } from "./runs.js";

/** The stages drawn for every task, in order; remediation loops back to implementation. */
const FLOW: PlayStage[] = [PlayStages.implementation, PlayStages.quality, PlayStages.testing, PlayStages.merge];
const LABEL: Record<string, string> = {
  implementation: "Implementation",
  remediation: "Remediation",
  quality: "Quality review",
  testing: "Testing",
  merge: "Merge",
  complete: "Complete",
};

type StageState = "done" | "active" | "failed" | "waiting";

function stageState(play: Play, task: number, stage: PlayStage, history: PlayHistoryEntry[]): { state: StageState; agent?: string } {
  const merged = history.some((h) => h.taskId === task && h.outcome === "Merged");
  if (merged) return { state: "done" };
  const s = play.status;
  const current = s?.currentTask === task;
  const liveStage = s?.stage === PlayStages.remediation ? PlayStages.implementation : s?.stage;
  if (current && liveStage === stage && phaseOf(play) !== "Succeeded") {
    return { state: phaseOf(play) === "Failed" ? "failed" : "active", agent: s?.agent };
  }
  const last = [...history]
    .reverse()
    .find((h) => h.taskId === task && (h.stage === stage || (stage === PlayStages.implementation && h.stage === PlayStages.remediation)));
  if (!last) return { state: "waiting" };
  return { state: last.outcome === "Succeeded" ? "done" : last.outcome === "Failed" ? "failed" : "waiting", agent: last.agent };
}

function StageGraph({ play, task }: { play: Play; task: number }) {
  const history = play.status?.history ?? [];
  const remediations = history.filter((h) => h.taskId === task && h.stage === PlayStages.remediation).length;
  return (
    <figure class="graph">
      <ol class="stages" aria-label={`Stages of task ${task}`}>
        {FLOW.map((stage) => {
          const { state, agent } = stageState(play, task, stage, history);
          return (
            <li key={stage} class={`stage stage-${state}`} aria-current={state === "active" ? "step" : undefined}>
              <span class="stage-name">{LABEL[stage]}</span>
              <span class="stage-state">{state}</span>
              <span class="stage-agent">{agent ? `agent: ${agent}` : stage === PlayStages.merge ? "a human or merge bot" : "–"}</span>
            </li>
          );
        })}
      </ol>
      <figcaption>
        Feedback sends the task back to implementation as a remediation run: {remediations} remediation run(s) for this task
        {play.spec.maxRemediationIterations !== undefined ? ` (at most ${play.spec.maxRemediationIterations})` : ""}.
      </figcaption>
    </figure>
  );
}

function CheckRuns({ play }: { play: Play }) {
  const checks = play.status?.reported?.checkRuns ?? [];
  if (checks.length === 0) return <Empty>No check runs reported yet.</Empty>;
  return (
    <ul class="checks">
      {checks.map((c) => {
        const [status, conclusion] = c.state.split(":");
        return (
          <li key={c.key}>
            <PhaseBadge phase={conclusion ?? status ?? c.state} /> {c.key} <span class="muted">on {c.headSha.slice(0, 7)}</span>
          </li>
        );
      })}
    </ul>
  );
}

function History({ play }: { play: Play }) {
  const rows = [...(play.status?.history ?? [])].reverse();
  if (rows.length === 0) return <Empty>Nothing has finished yet.</Empty>;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">History of {play.metadata.name}</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Task</th>
            <th scope="col">Stage</th>
            <th scope="col">Agent</th>
            <th scope="col">Run</th>
            <th scope="col">Outcome</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((h, i) => (
            <tr key={i}>
              <td>
                <Ago iso={h.time} />
              </td>
              <td>{h.taskId}</td>
              <td>
                {LABEL[h.stage] ?? h.stage}
                {h.iteration ? ` #${h.iteration}` : ""}
              </td>
              <td>{h.agent ?? "–"}</td>
              <td>{h.run ? <a href={href(["runs", "CodeRun", h.run])}>{h.run}</a> : "–"}</td>
              <td>
                <PhaseBadge phase={h.outcome} />
              </td>
              <td>{h.message ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function PlayPage({ name }: { name: string }) {
  const live = useLive();
  const play = live.plays.get(name);
  const runs = useMemo(
    () =>
      [...live.runs.values()]
        .filter((r) => r.metadata.labels?.[Labels.play] === name)
        .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "")),
    [live.version, name],
  );
  if (!play)
    return (
      <>
        <h1 tabIndex={-1}>{name}</h1>
        <p>{live.connection === "live" ? `There is no Play named ${name}.` : "Loading…"}</p>
      </>
    );
  const s = play.status;
  return (
    <>
      <p class="crumbs">
        <a href={href(["plays"])}>Plays</a> / Play
      </p>
      <h1 tabIndex={-1}>
        {name} <PhaseBadge phase={phaseOf(play)} />
      </h1>
      <Section title="Summary">
        <Facts
          items={[
            ["Service", play.spec.service],
            ["Repository", <ExternalLink url={play.spec.repositoryUrl} />],
            ["Tasks", play.spec.tasks.join(", ")],
            ["Current task", s?.currentTask !== undefined ? String(s.currentTask) : "–"],
            ["Stage", s?.stage ? LABEL[s.stage] : "–"],
            ["Agent", s?.agent ?? "–"],
            ["Waiting on run", s?.activeRun ? <a href={href(["runs", "CodeRun", s.activeRun])}>{s.activeRun}</a> : "–"],
            ["Remediation iterations", String(s?.iteration ?? 0)],
            ["Pull request", s?.pullRequest ? <ExternalLink url={s.pullRequest.url}>#{s.pullRequest.number}</ExternalLink> : "–"],
            ["Status", s?.message ?? "–"],
          ]}
        />
      </Section>
      <Section title="Stages">
        {play.spec.tasks.map((task) => (
          <div key={task} class="task">
            <h3>
              Task {task}
              {s?.currentTask === task ? " (current)" : ""}
            </h3>
            <StageGraph play={play} task={task} />
          </div>
        ))}
      </Section>
      <Section title="Check runs">
        <CheckRuns play={play} />
      </Section>
      <Section title="Stage runs">
        <RunsTable runs={runs} caption={`CodeRuns of Play ${name}`} />
      </Section>
      <Section title="History">
        <History play={play} />
      </Section>
    </>
  );
}

export function PlaysPage() {
  const live = useLive();
  const plays = [...live.plays.values()].sort((a, b) =>
    (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""),
  );
  return (
    <>
      <h1 tabIndex={-1}>Plays</h1>
      {!live.playsEnabled && live.connection === "live" ? (
        <p class="note">Plays are disabled in this orchestrator (config play.enabled).</p>
      ) : null}
      {plays.length === 0 ? (
        <Empty>No Plays.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Plays</caption>
            <thead>
              <tr>
                <th scope="col">Play</th>
                <th scope="col">Service</th>
                <th scope="col">Task</th>
                <th scope="col">Stage</th>
                <th scope="col">Agent</th>
                <th scope="col">PR</th>
                <th scope="col">Iteration</th>
                <th scope="col">Phase</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {plays.map((p) => (
                <tr key={p.metadata.name}>
                  <th scope="row">
                    <a href={href(["plays", p.metadata.name ?? ""])}>{p.metadata.name}</a>
                  </th>
                  <td>{p.spec.service}</td>
                  <td>{p.status?.currentTask ?? "–"}</td>
                  <td>{p.status?.stage ? LABEL[p.status.stage] : "–"}</td>
                  <td>{p.status?.agent ?? "–"}</td>
                  <td>
                    {p.status?.pullRequest ? (
                      <ExternalLink url={p.status.pullRequest.url}>#{p.status.pullRequest.number}</ExternalLink>
                    ) : (
                      "–"
                    )}
                  </td>
                  <td>{p.status?.iteration ?? 0}</td>
                  <td>
                    <PhaseBadge phase={phaseOf(p)} />
                  </td>
                  <td>
                    <Ago iso={p.metadata.creationTimestamp} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
