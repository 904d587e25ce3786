// Display helpers: times, durations, money, phases.
import type { AnyRun } from "../../src/api/types.js";
import { Annotations, type Phase } from "../../src/api/constants.js";
import { isTerminalPhase } from "../../src/api/predicates.js";

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "–";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function duration(from: string | undefined, to: string | undefined): string {
  if (!from) return "–";
  const s = Math.max(0, Math.round(((to ? new Date(to).getTime() : Date.now()) - new Date(from).getTime()) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export const clock = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : "–");
export const usd = (n: number | null | undefined) => (n === null || n === undefined ? "–" : `$${n.toFixed(n < 1 ? 4 : 2)}`);
export const count = (n: number | null | undefined) => (n === null || n === undefined ? "–" : n.toLocaleString());

export const phaseOf = (r: { status?: { phase?: Phase } }): Phase => r.status?.phase ?? "Pending";
export const isFinished = (r: { status?: { phase?: Phase } }) => isTerminalPhase(r.status?.phase);
export const requesterOf = (r: AnyRun) => r.metadata.annotations?.[Annotations.requestedBy] ?? "";
export const serviceOf = (r: AnyRun) => (r.kind === "CodeRun" ? r.spec.service : "");
/** "org/repo" of a repository URL, for compact tables. */
export function repoName(url: string): string {
  const m = /([^/:]+\/[^/]+?)(\.git)?\/?$/.exec(url);
  return m?.[1] ?? url;
}
