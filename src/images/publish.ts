// Publishing: the archives the local build makes (and the tests run) are copied as they are to a
// registry with skopeo, so what is published is byte for byte what was tested.
import { execa } from "execa";
import type { BuiltImage } from "./build.js";
import { LayerBuildError } from "./layers.js";

/** Where an image goes: <registry prefix>/<repository>:<tag>, e.g. ghcr.io/acme/orchestrator/agent:0.1.0. */
export function computePublishTarget(prefix: string, ref: string): string {
  const clean = prefix.replace(/^docker:\/\//, "").replace(/\/+$/, "");
  if (!/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/.test(clean))
    throw new LayerBuildError(`--registry ${prefix} is not a registry prefix such as ghcr.io/acme or localhost:5000`);
  return `${clean}/${ref.replace(/^docker\.io\//, "")}`;
}

/** The skopeo command that pushes one archive; layers are gzip-compressed on the way. */
export function buildPublishCommand(image: BuiltImage, target: string): string[] {
  return ["skopeo", "copy", "--retry-times=3", "--dest-compress-format=gzip", `oci-archive:${image.archive}`, `docker://${target}`];
}

/** Pushes one image; credentials come from `skopeo login <registry>` (or REGISTRY_AUTH_FILE). */
export async function publishImage(image: BuiltImage, target: string): Promise<void> {
  const [cmd = "skopeo", ...args] = buildPublishCommand(image, target);
  const r = await execa(cmd, args, { reject: false, all: true });
  if ((r as { code?: string }).code === "ENOENT") throw new LayerBuildError("skopeo is not installed: apt-get install skopeo");
  if (r.exitCode !== 0)
    throw new LayerBuildError(
      `pushing ${image.ref} to ${target} failed (skopeo exit code ${r.exitCode}); log in with 'skopeo login ${target.split("/")[0]}'.\n${String(r.all)}`,
    );
}
