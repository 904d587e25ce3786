// The runs list: every CodeRun and DocsRun, filtered by kind, service, phase and requester,
// updated live from the stream.
import { useMemo } from "preact/hooks";
import { Phases } from "../../../src/api/constants.js";
import type { AnyRun } from "../../../src/api/types.js";
import { isFinished, phaseOf, repoName, requesterOf, serviceOf } from "../format.js";
import { useLive } from "../live.js";
import { href } from "../router.js";
import { Ago, Empty, ExternalLink, PhaseBadge } from "../ui.js";

const FILTERS = ["kind", "service", "phase", "requester"] as const;
type Filter = (typeof FILTERS)[number];

const valueOf: Record<Filter, (r: AnyRun) => string> = {
  kind: (r) => r.kind,
  service: serviceOf,
  phase: phaseOf,
  requester: requesterOf,
};

const newestFirst = (a: AnyRun, b: AnyRun) =>
  (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
  (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");

function options(runs: AnyRun[], f: Filter): string[] {
  if (f === "kind") return ["CodeRun", "DocsRun"];
  if (f === "phase") return Object.values(Phases);
  return [...new Set(runs.map(valueOf[f]).filter(Boolean))].sort();
}

export function RunsTable({ runs, caption }: { runs: AnyRun[]; caption: string }) {
  if (runs.length === 0) return <Empty>No runs match.</Empty>;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Kind</th>
            <th scope="col">Service / repository</th>
            <th scope="col">Task</th>
            <th scope="col">Phase</th>
            <th scope="col">Requested by</th>
            <th scope="col">Attempts</th>
            <th scope="col">Created</th>
            <th scope="col">Pull request</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={`${r.kind}/${r.metadata.name}`} data-run={r.metadata.name}>
              <th scope="row">
                <a href={href(["runs", r.kind, r.metadata.name ?? ""])}>{r.metadata.name}</a>
              </th>
              <td>{r.kind}</td>
              <td>{r.kind === "CodeRun" ? r.spec.service : repoName(r.spec.repositoryUrl)}</td>
              <td>{r.kind === "CodeRun" ? r.spec.taskId : "–"}</td>
              <td>
                <PhaseBadge phase={phaseOf(r)} />
                {!isFinished(r) && r.spec.cancel ? <span class="muted"> cancelling</span> : null}
              </td>
              <td>{requesterOf(r) || "–"}</td>
              <td>{r.status?.attempts ?? 0}</td>
              <td>
                <Ago iso={r.metadata.creationTimestamp} />
              </td>
              <td>{r.status?.pullRequestUrl ? <ExternalLink url={r.status.pullRequestUrl}>PR</ExternalLink> : "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RunsPage({ query }: { query: URLSearchParams }) {
  const live = useLive();
  const all = useMemo(() => [...live.runs.values()].sort(newestFirst), [live.version]);
  const chosen = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? ""])) as Record<Filter, string>;
  const shown = all.filter((r) => FILTERS.every((f) => !chosen[f] || valueOf[f](r) === chosen[f]));
  const setFilter = (f: Filter, v: string) => {
    location.hash = href(["runs"], { ...chosen, [f]: v });
  };
  return (
    <>
      <h1 tabIndex={-1}>Runs</h1>
      <form class="filters" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        {FILTERS.map((f) => (
          <div key={f} class="field">
            <label for={`filter-${f}`}>{f[0]!.toUpperCase() + f.slice(1)}</label>
            <select id={`filter-${f}`} value={chosen[f]} onChange={(e) => setFilter(f, (e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {options(all, f).map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </div>
        ))}
      </form>
      <p class="muted" role="status" aria-live="polite">
        {shown.length} of {all.length} runs{live.connection === "live" ? ", updating live" : ""}
      </p>
      <RunsTable runs={shown} caption="Runs, newest first" />
    </>
  );
}
