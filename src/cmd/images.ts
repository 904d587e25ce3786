// `npm run images:build [-- name...]`: builds the images defined in images/*.yaml (cached by
// content) and prints one line per image: "<reference> <archive>".
// `npm run images:publish -- --registry <prefix> [--dry-run] [name...]`: builds the same way, then
// pushes each archive with skopeo to <prefix>/<repository>:<tag>.
import { parseArgs } from "node:util";
import { ensureImages } from "../controlplane/images.js";
import { buildPublishCommand, computePublishTarget, publishImage } from "../images/publish.js";

const USAGE = `usage: npm run images:build [-- name...]
       npm run images:publish -- --registry <prefix> [--dry-run] [name...]
Builds images/<name>.yaml (every definition when no name is given) and prints "<reference> <archive>"
per image. publish then pushes each archive with skopeo to <prefix>/<repository>:<tag>.
`;

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { registry: { type: "string" }, "dry-run": { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help || (command !== "build" && command !== "publish")) {
    process.stdout.write(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  if (command === "publish" && !values.registry) throw new Error("images:publish needs --registry <prefix>, e.g. --registry ghcr.io/acme");
  const started = performance.now();
  const images = await ensureImages(positionals);
  const cached = images.filter((i) => i.cached).length;
  process.stderr.write(
    `[images] ${images.length} image(s), ${cached} from cache, in ${((performance.now() - started) / 1000).toFixed(1)}s\n`,
  );
  for (const img of images) {
    if (command === "build") {
      process.stdout.write(`${img.ref} ${img.archive}\n`);
      continue;
    }
    const target = computePublishTarget(values.registry ?? "", img.ref);
    if (values["dry-run"]) {
      process.stdout.write(`${buildPublishCommand(img, target).join(" ")}\n`);
      continue;
    }
    await publishImage(img, target);
    process.stdout.write(`${target} ${img.digest}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[images] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
