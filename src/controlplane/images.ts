// The images the local node runs, built from images/*.yaml into the shared cache.
import path from "node:path";
import { buildImages, type BuiltImage } from "../images/index.js";
import { cacheRoot, repoRoot } from "./assets.js";

/** Directory of the image cache (layers and archives). */
export function imageCacheDir(): string {
  return path.join(cacheRoot(), "images");
}

/**
 * Builds (or takes from the cache) the named images, all of images/ when none are named, and
 * returns each image's reference and OCI archive for `ctr -n k8s.io images import <archive>`.
 */
export function ensureImages(
  names?: string[],
  log: (line: string) => void = (l) => process.stderr.write(`[images] ${l}\n`),
): Promise<BuiltImage[]> {
  return buildImages({ repoRoot: repoRoot(), cacheDir: imageCacheDir(), names, log });
}
