export * from "./constants.js";
export * from "./types.js";
export * from "./runner-contract.js";
export * from "./play.js";
export * from "./reasons.js";
export * from "./predicates.js";
export * from "./github-host.js";
export * from "./validation.js";
