export * from "./names.js";
export * from "./labels.js";
export * from "./run-params.js";
export * from "./job.js";
export * from "./configmap.js";
export * from "./pvc.js";
