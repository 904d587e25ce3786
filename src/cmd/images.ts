// `npm run images:build [-- name...]`: builds the images defined in images/*.yaml (cached by
// content) and prints one line per image: "<reference> <archive>".
import { ensureImages } from "../controlplane/images.js";

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  if (names.includes("--help") || names.includes("-h")) {
    process.stdout.write("usage: npm run images:build [-- name...]\nBuilds images/<name>.yaml (all when none given) and prints \"<reference> <archive>\" per image.\n");
    return;
  }
  const started = performance.now();
  const images = await ensureImages(names);
  for (const img of images) process.stdout.write(`${img.ref} ${img.archive}\n`);
  const cached = images.filter((i) => i.cached).length;
  process.stderr.write(`[images] ${images.length} image(s), ${cached} from cache, in ${((performance.now() - started) / 1000).toFixed(1)}s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`[images] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
