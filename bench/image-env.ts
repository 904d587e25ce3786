/**
 * The controller image's environment (images/controller.yaml), so the benchmarks run the
 * controller process as a pod does: its Node flags and allocator settings.
 */
import { readFileSync } from "node:fs";
import { parseImageDefinition } from "../src/images/definition.js";

const IMAGE_ENV = parseImageDefinition(readFileSync("images/controller.yaml", "utf8"), "images/controller.yaml").config.env ?? {};

/** Node flags of the controller process: the image's NODE_OPTIONS unless BENCH_NODE_OPTIONS replaces them (profiling). */
export const NODE_FLAGS = (process.env.BENCH_NODE_OPTIONS ?? IMAGE_ENV.NODE_OPTIONS ?? "").split(" ").filter(Boolean);

/** The rest of the image's environment (allocator settings), minus what the benchmark's own process sets. */
export const CONTROLLER_ENV = Object.fromEntries(Object.entries(IMAGE_ENV).filter(([k]) => !["PATH", "NODE_OPTIONS"].includes(k)));
