import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";

const repo = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(repo, "hack", "bundle.mjs");
const bundle = (dist: string) => execa(process.execPath, [SCRIPT, dist, "controller"]);

describe("hack/bundle.mjs controller", () => {
  it("replaces the entry point with one module that keeps its shebang, its CommonJS dependencies, its paths and a lazy sibling", async () => {
    // A miniature dist/: cmd/main.js imports a module beside it, a CommonJS package (yaml), reads
    // ../../package.json relative to its own location, and imports ../controlplane/ on demand.
    // Outside the checkout, like the image build's staging directory: packages come from the checkout.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-"));
    try {
      const dist = path.join(root, "dist");
      fs.mkdirSync(path.join(dist, "cmd"), { recursive: true });
      fs.mkdirSync(path.join(dist, "util"));
      fs.mkdirSync(path.join(dist, "controlplane"));
      fs.writeFileSync(path.join(root, "package.json"), '{"type": "module", "version": "9.9.9"}');
      fs.writeFileSync(path.join(dist, "util", "greet.js"), "export const greet = (n) => `hello ${n}`;\n");
      fs.writeFileSync(path.join(dist, "controlplane", "index.js"), 'export const where = "separate";\n');
      const entry = path.join(dist, "cmd", "main.js");
      fs.writeFileSync(
        entry,
        [
          "#!/usr/bin/env node",
          'import { readFileSync } from "node:fs";',
          'import YAML from "yaml";',
          'import { greet } from "../util/greet.js";',
          'const version = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;',
          'const { where } = await import("../controlplane/index.js");',
          'console.log(JSON.stringify({ greeting: greet("bundle"), yaml: YAML.parse("a: 1"), version, where }));',
          "",
        ].join("\n"),
      );
      await bundle(dist);
      const text = fs.readFileSync(entry, "utf8");
      expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
      expect(text).not.toContain('from "../util/greet.js"');
      expect(text).toContain("../controlplane/index.js");
      const out = await execa(process.execPath, [entry]);
      expect(JSON.parse(out.stdout)).toEqual({ greeting: "hello bundle", yaml: { a: 1 }, version: "9.9.9", where: "separate" });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("says what to do when the entry point was not compiled", async () => {
    const r = await execa(process.execPath, [SCRIPT, path.join(os.tmpdir(), "no-such-dir"), "controller"], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/compile src\/ first/);
  });
});
