// Public surface of the test/local control plane.
export {
  ControlPlane,
  KWOK_NODE_NAME,
  kubeconfigYaml,
  readCRDs,
  type Component,
  type ControlPlaneOptions,
  type Mode,
  type NodeChoice,
  type NodeImages,
  type StartupTimes,
} from "./controlplane.js";
export { checkNodeSupport, RealNode, type ImageArchive } from "./real-node.js";
export {
  ensureControlPlaneBinaries,
  ensureKubeTools,
  pinnedVersions,
  cacheRoot,
  repoRoot,
  type ControlPlaneBinaries,
  type KubeTools,
} from "./assets.js";
export { KWOK_ENV, kwokStages, kwokConfigYaml, type KwokStageOptions } from "./kwok-stages.js";
export { generateCerts, type ControlPlaneCerts } from "./certs.js";
export { freePorts } from "./net.js";
