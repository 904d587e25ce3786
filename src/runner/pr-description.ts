/** PR_DESCRIPTION.md → pull request title and body (pure). */

export interface PullRequestText {
  title: string;
  body: string;
}

const MAX_TITLE = 256;

/**
 * The first Markdown heading (any level) is the title, everything else the body. Without a
 * heading the whole file is the body and the title is `fallbackTitle`. An empty file gives null.
 */
export function parsePrDescription(text: string, fallbackTitle: string): PullRequestText | null {
  const normalized = text.replace(/\r\n/g, "\n");
  if (!normalized.trim()) return null;
  const lines = normalized.split("\n");
  let inFence = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const heading = /^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (heading && heading[1]!.trim()) {
      const body = [...lines.slice(0, i), ...lines.slice(i + 1)].join("\n").trim();
      return { title: heading[1]!.trim().slice(0, MAX_TITLE), body };
    }
  }
  return { title: fallbackTitle, body: normalized.trim() };
}
