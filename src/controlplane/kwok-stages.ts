// kwok Stage definitions used by the "full" test control plane.
//
// kwok (Kubernetes WithOut Kubelet) plays the kubelet for pods bound to nodes it manages:
// it watches objects and, when a Stage's `selector` matches, waits `delay` and then patches
// the status from the Go-template `statusTemplate` (or deletes the object). Selector keys are
// jq expressions (gojq) evaluated on the object; a query that errors or yields nothing counts
// as "absent" (so `NotIn` matches and `In` does not). When several stages match one object
// kwok picks one at random, so the pod stages below are written to be mutually exclusive.
// Template functions: Go text/template + sprig + kwok's Now, Quote (JSON-quotes a value),
// YAML, NodeIPsWith, PodIPsWith, NodeConditions, NodeIP, NodeName, Version.
// Stage format: https://kwok.sigs.k8s.io/docs/user/stages-configuration/ (kwok v0.8.0); the
// node stages and pod-ready are adapted from kwok's kustomize/stage/{node,pod}/fast sets.
//
// Pod lifecycle simulated here (a pod is only touched once it is bound to a kwok node):
//   Pending --pod-ready (readyDelayMs)--> Running
//   Running, owned by a Job, no container with KWOK_FAIL=true
//           --pod-complete (runDelayMs or env KWOK_RUN_DURATION)--> Succeeded, exitCode 0
//   Running, a container has env KWOK_FAIL=true (any owner)
//           --pod-fail (same delay)--> Failed, exitCode 1, reason "Error"
//   deletionTimestamp set --pod-delete--> deleted (finalizers are left to their owners)
// Pods not owned by a Job stay Running, like a long-lived server would.
// In both terminal stages the terminated state's `message` is copied from the container's
// env var KWOK_TERMINATION_MESSAGE when present: that is how tests simulate an agent writing
// its termination-message file, which controllers read from `state.terminated.message`.
import { stringify } from "yaml";

/** Env var names understood by the stages (set them on any one of the pod's containers). */
export const KWOK_ENV = {
  /** "true": the pod fails (phase Failed, exitCode 1, reason Error) instead of succeeding. */
  fail: "KWOK_FAIL",
  /** Copied into `status.containerStatuses[].state.terminated.message`. */
  terminationMessage: "KWOK_TERMINATION_MESSAGE",
  /**
   * Set on one container, copied into the terminated `message` of the pod's other containers (init
   * containers included): how tests simulate the agent pod's channel writing its own termination
   * message, since a run's env reaches the agent container only.
   */
  othersTerminationMessage: "KWOK_OTHERS_TERMINATION_MESSAGE",
  /** Go duration ("30s", "10m") the pod stays Running before completing/failing. */
  runDuration: "KWOK_RUN_DURATION",
} as const;

export interface KwokStageOptions {
  /** Pending → Running delay. */
  readyDelayMs?: number;
  /** Running → Succeeded/Failed delay, unless the pod sets KWOK_RUN_DURATION. */
  runDelayMs?: number;
}

export const DEFAULT_READY_DELAY_MS = 1000;
export const DEFAULT_RUN_DELAY_MS = 1500;

type Requirement = { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] };

export interface KwokStage {
  apiVersion: "kwok.x-k8s.io/v1alpha1";
  kind: "Stage";
  metadata: { name: string };
  spec: {
    resourceRef: { apiGroup: "v1"; kind: "Pod" | "Node" };
    selector: { matchExpressions: Requirement[] };
    delay?: {
      durationMilliseconds?: number;
      jitterDurationMilliseconds?: number;
      durationFrom?: { jq: { expression: string } };
    };
    next: { statusTemplate?: string; delete?: boolean };
    immediateNextStage?: boolean;
  };
}

/** jq: value of env var `name` on the first of the pod's containers that sets it (nothing if none does). */
export function containerEnv(name: string): string {
  return `first( .spec.containers.[].env.[]? | select( .name == "${name}" ) | .value )`;
}

const notDeleting: Requirement = { key: ".metadata.deletionTimestamp", operator: "DoesNotExist" };
const phase = (p: string): Requirement => ({ key: ".status.phase", operator: "In", values: [p] });
const failRequested: Requirement = { key: containerEnv(KWOK_ENV.fail), operator: "In", values: ["true"] };
const failNotRequested: Requirement = { ...failRequested, operator: "NotIn" };

function stage(
  name: string,
  kind: "Pod" | "Node",
  match: Requirement[],
  next: KwokStage["spec"]["next"],
  delay?: KwokStage["spec"]["delay"],
): KwokStage {
  return {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "Stage",
    metadata: { name },
    spec: { resourceRef: { apiGroup: "v1", kind }, selector: { matchExpressions: match }, ...(delay ? { delay } : {}), next },
  };
}

const nodeConditions = `{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
`;

// Marks a new node Ready and fills addresses/nodeInfo; keeps capacity/allocatable we set.
const nodeInitializeTemplate = `${nodeConditions}
addresses:
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 256Gi
  pods: "110"
{{ end }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: "32"
  memory: 256Gi
  pods: "110"
{{ end }}
{{ $kwokVersion := printf "kwok-%s" Version }}
nodeInfo:
  architecture: amd64
  bootID: ""
  containerRuntimeVersion: {{ $kwokVersion }}
  kernelVersion: {{ $kwokVersion }}
  kubeProxyVersion: {{ $kwokVersion }}
  kubeletVersion: {{ $kwokVersion }}
  machineID: ""
  operatingSystem: linux
  osImage: ""
  systemUUID: ""
phase: Running
`;

const podReadyTemplate = `{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
`;

/**
 * Terminal status for every container. A container fails (exitCode 1, reason Error) when
 * `podFailed` and its own env has KWOK_FAIL=true; the others complete with exitCode 0.
 */
function terminatedTemplate(podFailed: boolean): string {
  return `{{ $now := Now }}
{{ $root := . }}
{{ $othersMessage := "" }}
{{ $othersFrom := "" }}
{{ range .spec.containers }}
{{ $name := .name }}
{{ range .env }}
{{ if eq .name "${KWOK_ENV.othersTerminationMessage}" }}{{ with .value }}{{ $othersMessage = toString . }}{{ $othersFrom = $name }}{{ end }}{{ end }}
{{ end }}
{{ end }}
containerStatuses:
{{ range $item := .spec.containers }}
{{ $fail := false }}
{{ $message := "" }}
{{ if ne $item.name $othersFrom }}{{ $message = $othersMessage }}{{ end }}
{{ range $item.env }}
{{ if and (eq .name "${KWOK_ENV.fail}") (eq (toString .value) "true") }}{{ $fail = ${podFailed ? "true" : "false"} }}{{ end }}
{{ if eq .name "${KWOK_ENV.terminationMessage}" }}{{ with .value }}{{ $message = toString . }}{{ end }}{{ end }}
{{ end }}
{{ $started := $now }}
{{ range $root.status.containerStatuses }}
{{ if eq .name $item.name }}{{ with .state }}{{ with .running }}{{ $started = .startedAt }}{{ end }}{{ end }}{{ end }}
{{ end }}
- image: {{ $item.image | Quote }}
  name: {{ $item.name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: {{ if $fail }}1{{ else }}0{{ end }}
      reason: {{ if $fail }}Error{{ else }}Completed{{ end }}
      startedAt: {{ $started | Quote }}
      finishedAt: {{ $now | Quote }}
{{ if $message }}
      message: {{ $message | Quote }}
{{ end }}
{{ end }}
{{ with .spec.initContainers }}
initContainerStatuses:
{{ range . }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ if $othersMessage }}
      message: {{ $othersMessage | Quote }}
{{ end }}
{{ end }}
{{ end }}
phase: ${podFailed ? "Failed" : "Succeeded"}
`;
}

/** The stage set, as objects (see the file comment for the lifecycle). */
export function kwokStages(opts: KwokStageOptions = {}): KwokStage[] {
  const readyDelay = opts.readyDelayMs ?? DEFAULT_READY_DELAY_MS;
  const runDelay = opts.runDelayMs ?? DEFAULT_RUN_DELAY_MS;
  const runDelaySpec: KwokStage["spec"]["delay"] = {
    durationMilliseconds: runDelay,
    durationFrom: { jq: { expression: containerEnv(KWOK_ENV.runDuration) } },
  };
  const nodeReady: Requirement = { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "In", values: ["True"] };
  const heartbeat = stage(
    "node-heartbeat-with-lease",
    "Node",
    [phase("Running"), nodeReady],
    { statusTemplate: nodeConditions },
    {
      // With node leases (kwok's default) the status only needs an occasional refresh.
      durationMilliseconds: 600_000,
      jitterDurationMilliseconds: 610_000,
    },
  );
  heartbeat.spec.immediateNextStage = true;
  return [
    stage("node-initialize", "Node", [{ ...nodeReady, operator: "NotIn" }], { statusTemplate: nodeInitializeTemplate }),
    heartbeat,
    stage(
      "pod-ready",
      "Pod",
      [
        notDeleting,
        phase("Pending"),
        { key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: "NotIn", values: ["True"] },
      ],
      { statusTemplate: podReadyTemplate },
      { durationMilliseconds: readyDelay },
    ),
    stage(
      "pod-complete",
      "Pod",
      [notDeleting, phase("Running"), { key: ".metadata.ownerReferences.[].kind", operator: "In", values: ["Job"] }, failNotRequested],
      { statusTemplate: terminatedTemplate(false) },
      runDelaySpec,
    ),
    stage("pod-fail", "Pod", [notDeleting, phase("Running"), failRequested], { statusTemplate: terminatedTemplate(true) }, runDelaySpec),
    stage("pod-delete", "Pod", [{ key: ".metadata.deletionTimestamp", operator: "Exists" }], { delete: true }),
  ];
}

/** Multi-document YAML for `kwok --config`. */
export function kwokConfigYaml(opts: KwokStageOptions = {}): string {
  return kwokStages(opts)
    .map((s) => stringify(s, { lineWidth: 0 }))
    .join("---\n");
}
