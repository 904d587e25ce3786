/**
 * The shape of src/: folders depend one way, and the vocabulary (label and annotation keys)
 * lives once in src/api. Reads the sources; no build needed.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0] ?? "";

/** Folder → folders it imports (relative imports only). */
function folderEdges(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    for (const m of fs.readFileSync(file, "utf8").matchAll(/from "(\.{1,2}\/[^"]+)"/g)) {
      const to = folderOf(path.resolve(path.dirname(file), m[1] ?? ""));
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  return edges;
}

/** Pairs of folders that import each other. */
function mutualImports(): string[] {
  const edges = folderEdges();
  const pairs: string[] = [];
  for (const [a, tos] of edges) for (const b of tos) if (a < b && edges.get(b)?.has(a)) pairs.push(`${a}<->${b}`);
  return pairs.sort();
}

describe("folder dependencies", () => {
  it("has no folders that import each other", () => {
    expect(mutualImports()).toEqual([]);
  });

  it("calls the Kubernetes and GitHub SDKs only from src/kube, src/github (and the runner's own adapter)", () => {
    const allowed: Record<string, string[]> = {
      "@kubernetes/client-node": ["kube", "controlplane", "cmd"],
      "@octokit/": ["github", "runner"],
    };
    const offenders = sourceFiles(SRC).flatMap((f) =>
      [...fs.readFileSync(f, "utf8").matchAll(/^import (?!type )[^;]*from "(@kubernetes\/client-node|@octokit\/[^"]+)"/gm)]
        .filter((m) => !Object.entries(allowed).some(([sdk, folders]) => (m[1] ?? "").startsWith(sdk) && folders.includes(folderOf(f))))
        .map((m) => `${path.relative(SRC, f)}: ${m[1]}`),
    );
    expect(offenders).toEqual([]);
  });

  it("keeps src/api free of internal imports", () => {
    expect([...(folderEdges().get("api") ?? [])]).toEqual([]);
  });
});

describe("one vocabulary", () => {
  it("defines orchestrator.platform/ label and annotation keys only in src/api", () => {
    const offenders = sourceFiles(SRC)
      .filter((f) => folderOf(f) !== "api")
      .flatMap((f) =>
        [...fs.readFileSync(f, "utf8").matchAll(/"orchestrator\.platform\/(?!v1")[a-z-]+"/g)].map(
          (m) => `${path.relative(SRC, f)}: ${m[0]}`,
        ),
      );
    expect(offenders).toEqual([]);
  });
});
