/** buildJob: the agent Job of one attempt. Pure: same inputs, byte-identical output. */
import type { V1Container, V1EnvVar, V1Job, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { Labels } from "../api/constants.js";
import {
  AgentEnv,
  AgentPaths,
  CHANNEL_CONTAINER,
  CONTAINER_NAME,
  DEFAULT_CONTAINER_ANNOTATION,
  identityHomeName,
  TaskFileKeys,
  VolumeLayout,
  WorkspaceLayout,
} from "../api/runner-contract.js";
import type { AnyRun } from "../api/types.js";
import { ownerReference, runLabels } from "./labels.js";
import { configMapName, githubAppSecretName, githubSshSecretName, githubTokenSecretName, jobName } from "./names.js";
import { computeLimits, type BuilderConfig } from "./run-params.js";

/** UID of the non-root user in the agent image: the agent container runs as it. */
export const AGENT_UID = 1000;
/** The channel container's uid: not the agent's, so the agent cannot signal it or read its files. */
export const CHANNEL_UID = 1001;
/** Group shared by both containers: the agent can change the files the channel prepares, and back. */
const SHARED_GID = 1000;

/** The channel's variables: the model key and upstream, the GitHub identity and token, the CA bundle. */
function channelEnv(run: AnyRun, config: BuilderConfig): V1EnvVar[] {
  const env: V1EnvVar[] = [
    {
      name: AgentEnv.anthropicApiKey,
      valueFrom: { secretKeyRef: { name: config.secrets.apiKeySecretName, key: config.secrets.apiKeySecretKey } },
    },
  ];
  if (config.agent.anthropicBaseUrl) env.push({ name: AgentEnv.anthropicBaseUrl, value: config.agent.anthropicBaseUrl });
  if (config.github.caBundle) env.push({ name: AgentEnv.nodeExtraCaCerts, value: `${AgentPaths.taskFiles}/${TaskFileKeys.githubCa}` });
  if (run.spec.githubUser) {
    env.push({
      name: AgentEnv.githubToken,
      valueFrom: { secretKeyRef: { name: githubTokenSecretName(run.spec.githubUser), key: "token" } },
    });
    env.push({ name: "GITHUB_USER", value: run.spec.githubUser });
  }
  if (run.spec.githubApp) env.push({ name: "GITHUB_APP", value: run.spec.githubApp });
  return env;
}

/** The agent's variables: the run's own (spec.env, envFromSecrets) and no credential of the orchestrator's. */
function agentEnv(run: AnyRun): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  if (run.kind === "CodeRun") {
    env.push({ name: "TASK_ID", value: String(run.spec.taskId) }, { name: "SERVICE_NAME", value: run.spec.service });
    if (run.spec.localTools) env.push({ name: "LOCAL_TOOLS", value: run.spec.localTools });
    if (run.spec.remoteTools) env.push({ name: "REMOTE_TOOLS", value: run.spec.remoteTools });
    // Sorted so the Job is byte-identical for the same spec regardless of map order.
    for (const [name, value] of Object.entries(run.spec.env ?? {}).sort(([a], [b]) => a.localeCompare(b))) env.push({ name, value });
    for (const e of run.spec.envFromSecrets ?? [])
      env.push({ name: e.name, valueFrom: { secretKeyRef: { name: e.secretName, key: e.secretKey } } });
  }
  return env;
}

/** Restricted (Pod Security Standard) container settings, with the container's own uid. */
function restricted(uid: number) {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: SHARED_GID,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The agent's work tree: the clone's directory of the workspace, where the container starts. */
const AGENT_WORK_TREE = `${AgentPaths.workspace}/${WorkspaceLayout.repo}`;

/**
 * Volumes and the mounts of each container. The agent's have no Secret, no channel directory and
 * of the workspace volume only the clone's work tree and its own identity's home: every agent runs
 * as the same uid, so only what is not mounted stays out of its reach (another identity's home,
 * homes an earlier version kept under the workspace).
 */
function buildVolumes(run: AnyRun, attempt: number, workspaceClaim: string) {
  const isCode = run.kind === "CodeRun";
  const volumes: V1Volume[] = [
    isCode ? { name: "workspace", persistentVolumeClaim: { claimName: workspaceClaim } } : { name: "workspace", emptyDir: {} },
    { name: "task-files", configMap: { name: configMapName(run, attempt) } },
    { name: "tmp", emptyDir: {} },
    { name: "channel-tmp", emptyDir: {} },
  ];
  const home: V1VolumeMount = {
    name: "workspace",
    mountPath: AgentPaths.home,
    subPath: `${VolumeLayout.homes}/${identityHomeName(run.spec)}`,
  };
  const taskFiles: V1VolumeMount = { name: "task-files", mountPath: AgentPaths.taskFiles, readOnly: true };
  const agent: V1VolumeMount[] = [
    { name: "workspace", mountPath: AGENT_WORK_TREE, subPath: `${VolumeLayout.workspace}/${WorkspaceLayout.repo}` },
    home,
    taskFiles,
    { name: "task-files", mountPath: AgentPaths.managedSettings, subPath: TaskFileKeys.managedSettings, readOnly: true },
    { name: "tmp", mountPath: "/tmp" },
  ];
  const channel: V1VolumeMount[] = [
    { name: "workspace", mountPath: AgentPaths.workspace, subPath: VolumeLayout.workspace },
    home,
    taskFiles,
    { name: "workspace", mountPath: AgentPaths.channel, subPath: VolumeLayout.channel },
    { name: "channel-tmp", mountPath: "/tmp" },
  ];
  if (run.spec.githubUser) {
    // Optional: token-only users clone over HTTPS; the token secret itself is required (checked before the Job is created).
    volumes.push({ name: "ssh-key", secret: { secretName: githubSshSecretName(run.spec.githubUser), defaultMode: 0o400, optional: true } });
    channel.push({ name: "ssh-key", mountPath: AgentPaths.sshSecret, readOnly: true });
  }
  if (run.spec.githubApp) {
    volumes.push({ name: "github-app", secret: { secretName: githubAppSecretName(run.spec.githubApp), defaultMode: 0o400 } });
    channel.push({ name: "github-app", mountPath: AgentPaths.githubAppSecret, readOnly: true });
  }
  return { volumes, agent, channel };
}

/**
 * The channel: the pod's first container, so kubelet starts it and then the agent container in one
 * pass (a native sidecar held the agent container back until kubelet's next relist noticed the
 * sidecar running, up to a second). It has no readiness or startup probe: the agent container asks
 * on loopback for its task (GET /task), so the agent's start-up overlaps the workspace's
 * preparation, and nothing the agent is told runs before the task is handed out. The channel ends
 * once the agent container is gone (the GET /attach its runner holds has closed).
 */
function buildChannelContainer(run: AnyRun, config: BuilderConfig, mounts: V1VolumeMount[]): V1Container {
  return {
    name: CHANNEL_CONTAINER,
    image: `${config.agent.image.repository}:${config.agent.image.tag}`,
    imagePullPolicy: config.agent.image.pullPolicy,
    command: [...config.agent.channelCommand],
    workingDir: "/tmp",
    env: channelEnv(run, config),
    resources: structuredClone(config.agent.channelResources) as never,
    securityContext: restricted(CHANNEL_UID),
    // The run's result as the channel knows it: the controller prefers it to the agent's.
    terminationMessagePath: AgentPaths.channelTerminationMessage,
    terminationMessagePolicy: "File",
    volumeMounts: mounts,
  };
}

/**
 * The agent Job of `attempt`, owned by the run: the channel container (credentials) and the agent
 * container (none). `workspaceClaim`: the CodeRun's workspace PVC as the reconciler resolved it
 * (unused for DocsRuns, which get an emptyDir).
 */
export function buildJob(run: AnyRun, attempt: number, config: BuilderConfig, workspaceClaim: string): V1Job {
  const limits = computeLimits(run, config);
  const labels = { ...runLabels(run), [Labels.attempt]: String(attempt) };
  const { volumes, agent, channel } = buildVolumes(run, attempt, workspaceClaim);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: jobName(run, attempt), namespace: run.metadata.namespace, labels, ownerReferences: [ownerReference(run)] },
    spec: {
      // Retries are the controller's: each attempt is a new Job with its own name and status entry.
      backoffLimit: 0,
      activeDeadlineSeconds: limits.timeoutSeconds,
      ttlSecondsAfterFinished: config.job.ttlSecondsAfterFinished,
      template: {
        // `kubectl logs` without -c shows the agent, not the channel.
        metadata: { labels, annotations: { [DEFAULT_CONTAINER_ANNOTATION]: CONTAINER_NAME[run.kind] } },
        spec: {
          restartPolicy: "Never",
          ...(config.agent.serviceAccountName ? { serviceAccountName: config.agent.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          shareProcessNamespace: false,
          imagePullSecrets: config.agent.imagePullSecrets.map((name) => ({ name })),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: AGENT_UID,
            runAsGroup: SHARED_GID,
            fsGroup: SHARED_GID,
            // Once the volume's root has the group, kubelet leaves the rest alone: the channel's
            // private directory keeps mode 0700 instead of being opened to the group on every mount.
            fsGroupChangePolicy: "OnRootMismatch",
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            buildChannelContainer(run, config, channel),
            {
              name: CONTAINER_NAME[run.kind],
              image: `${config.agent.image.repository}:${config.agent.image.tag}`,
              imagePullPolicy: config.agent.image.pullPolicy,
              command: [...config.agent.command],
              workingDir: AGENT_WORK_TREE,
              env: agentEnv(run),
              resources: structuredClone(config.agent.resources) as never,
              securityContext: restricted(AGENT_UID),
              terminationMessagePath: AgentPaths.terminationMessage,
              terminationMessagePolicy: "FallbackToLogsOnError",
              volumeMounts: agent,
            },
          ],
          volumes,
        },
      },
    },
  };
}
