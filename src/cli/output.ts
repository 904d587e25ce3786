/**
 * What the CLI prints: human tables by default (cli-table3, borderless like kubectl), or the
 * API's objects as JSON or YAML for scripts (`-o json|yaml`). Pure functions from data to text.
 */
import Table from "cli-table3";
import { stringify } from "yaml";
import { Annotations } from "../api/constants.js";
import type { Play } from "../api/play.js";
import type { AnyRun } from "../api/types.js";

export const OutputFormats = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OutputFormats)[number];

/** JSON or YAML of any value; undefined for the table format. */
export function formatData(value: unknown, format: OutputFormat): string | undefined {
  if (format === "json") return JSON.stringify(value, null, 2);
  if (format === "yaml") return stringify(value).trimEnd();
  return undefined;
}

/** A borderless table with an upper-case header row, columns separated by three spaces. */
export function table(head: string[], rows: (string | number | undefined)[][]): string {
  const t = new Table({
    head: head.map((h) => h.toUpperCase()),
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "   ",
    },
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0, compact: true },
  });
  for (const r of rows) t.push(r.map((c) => (c === undefined || c === "" ? "-" : String(c))));
  return t
    .toString()
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n");
}

/** 45s, 3m12s, 2h5m, 3d4h: kubectl-style age. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24 ? `${h % 24}h` : ""}`;
}

export function age(timestamp: string | undefined, now: number): string | undefined {
  return timestamp ? formatDuration(now - new Date(timestamp).getTime()) : undefined;
}

export const phaseOf = (o: { status?: { phase?: string } }) => o.status?.phase ?? "Pending";

/** "$0.1234" or undefined. */
export function cost(usd: number | undefined): string | undefined {
  return usd === undefined ? undefined : `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

const taskOf = (r: AnyRun) => (r.kind === "CodeRun" ? r.spec.taskId : undefined);
const serviceOf = (r: AnyRun) => (r.kind === "CodeRun" ? r.spec.service : undefined);

export function runsTable(runs: AnyRun[], now: number): string {
  return table(
    ["kind", "name", "task", "service", "phase", "attempts", "turns", "cost", "age", "pull request"],
    runs.map((r) => [
      r.kind,
      r.metadata.name,
      taskOf(r),
      serviceOf(r),
      phaseOf(r),
      r.status?.attempts,
      r.status?.result?.turns,
      cost(r.status?.result?.costUsd),
      age(r.metadata.creationTimestamp, now),
      r.status?.pullRequestUrl,
    ]),
  );
}

/** `runs get`: the fields a person looks at, one per line. */
export function runDetail(r: AnyRun, now: number): string {
  const s = r.status ?? {};
  const rows: [string, string | number | undefined][] = [
    ["Name", `${r.kind}/${r.metadata.name}`],
    ["Namespace", r.metadata.namespace],
    ["Phase", phaseOf(r) + (s.reason && s.reason !== phaseOf(r) ? ` (${s.reason})` : "")],
    ["Message", s.message],
    ["Task", taskOf(r)],
    ["Service", serviceOf(r)],
    ["Repository", r.spec.repositoryUrl],
    ["Model", r.spec.model],
    ["Identity", r.spec.githubUser ?? (r.spec.githubApp ? `app ${r.spec.githubApp}` : undefined)],
    ["Attempts", s.attempts],
    ["Job", s.jobName],
    ["Turns", s.result?.turns],
    ["Tools", s.result?.toolCalls],
    ["Cost", cost(s.result?.costUsd)],
    ["Pull request", s.pullRequestUrl],
    ["Age", age(r.metadata.creationTimestamp, now)],
    ["Requested by", r.metadata.annotations?.[Annotations.requestedBy]],
  ];
  return rows
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`)
    .join("\n");
}

export function playsTable(plays: Play[], now: number): string {
  return table(
    ["name", "service", "task", "stage", "agent", "pr", "iteration", "phase", "age"],
    plays.map((p) => [
      p.metadata.name,
      p.spec.service,
      p.status?.currentTask ?? p.spec.tasks[0],
      p.status?.stage,
      p.status?.agent,
      p.status?.pullRequest?.number,
      p.status?.iteration,
      phaseOf(p),
      age(p.metadata.creationTimestamp, now),
    ]),
  );
}

export function playDetail(p: Play, now: number): string {
  const s = p.status ?? {};
  const rows: [string, string | number | undefined][] = [
    ["Name", `Play/${p.metadata.name}`],
    ["Namespace", p.metadata.namespace],
    ["Phase", phaseOf(p) + (s.reason && s.reason !== phaseOf(p) ? ` (${s.reason})` : "")],
    ["Message", s.message],
    ["Service", p.spec.service],
    ["Repository", p.spec.repositoryUrl],
    ["Tasks", p.spec.tasks.join(", ")],
    ["Current task", s.currentTask],
    ["Stage", s.stage],
    ["Agent", s.agent],
    ["Active run", s.activeRun],
    ["Pull request", s.pullRequest?.url],
    ["Iteration", s.iteration],
    ["Age", age(p.metadata.creationTimestamp, now)],
  ];
  const lines = rows.filter(([, v]) => v !== undefined && v !== "").map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`);
  if (s.history?.length) {
    lines.push(
      "",
      "History:",
      table(
        ["task", "stage", "agent", "run", "outcome"],
        s.history.map((h) => [h.taskId, h.stage, h.agent, h.run, h.outcome]),
      ),
    );
  }
  return lines.join("\n");
}
