// Small shared components.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api.js";
import { age, clock } from "./format.js";

export function PhaseBadge({ phase }: { phase: string }) {
  return <span class={`badge phase-${phase.toLowerCase()}`}>{phase}</span>;
}

/** A relative time that keeps itself current; the exact time is in its title and datetime. */
export function Ago({ iso }: { iso: string | undefined }) {
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 10_000);
    return () => clearInterval(t);
  }, []);
  if (!iso) return <span>–</span>;
  return (
    <time dateTime={iso} title={clock(iso)}>
      {age(iso)}
    </time>
  );
}

export function ExternalLink({ url, children }: { url: string; children?: ComponentChildren }) {
  // Only http(s) links from status fields are rendered as links.
  if (!/^https?:\/\//i.test(url)) return <span>{url}</span>;
  return (
    <a href={url} target="_blank" rel="noopener noreferrer">
      {children ?? url}
    </a>
  );
}

/** An error from the API, as an alert with the problem's detail. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : String((error as Error).message ?? error);
  return (
    <p class="note error" role="alert">
      {text}
    </p>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const hid = `h-${id ?? title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <section aria-labelledby={hid} class="card">
      <h2 id={hid}>{title}</h2>
      {children}
    </section>
  );
}

/** Label/value pairs. */
export function Facts({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {items.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v ?? "–"}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}
