/** buildJob: the agent Job of one attempt. Pure: same inputs, byte-identical output. */
import type { V1Container, V1EnvVar, V1Job, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { Labels } from "../api/constants.js";
import { AgentEnv, AgentPaths, TaskFileKeys } from "../api/runner-contract.js";
import type { AnyRun } from "../api/types.js";
import { ownerReference, runLabels } from "./labels.js";
import { configMapName, githubAppSecretName, githubSshSecretName, githubTokenSecretName, jobName } from "./names.js";
import { computeLimits, type BuilderConfig } from "./run-params.js";

/** Container names kept from the original so `kubectl logs -c` habits keep working. */
export const CONTAINER_NAME = { CodeRun: "claude-code", DocsRun: "claude-docs" } as const;

/** UID of the non-root user in the agent image. */
export const AGENT_UID = 1000;

function envFor(run: AnyRun, config: BuilderConfig): V1EnvVar[] {
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

/** The Job's volumes and the agent container's mounts: workspace, run files, /tmp and the identity's Secret. */
function volumesFor(run: AnyRun, attempt: number, workspaceClaim: string): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const volumes: V1Volume[] = [
    run.kind === "CodeRun"
      ? { name: "workspace", persistentVolumeClaim: { claimName: workspaceClaim } }
      : { name: "workspace", emptyDir: {} },
    { name: "task-files", configMap: { name: configMapName(run, attempt) } },
    { name: "tmp", emptyDir: {} },
  ];
  const mounts: V1VolumeMount[] = [
    { name: "workspace", mountPath: AgentPaths.workspace },
    { name: "task-files", mountPath: AgentPaths.taskFiles, readOnly: true },
    { name: "task-files", mountPath: AgentPaths.managedSettings, subPath: TaskFileKeys.managedSettings, readOnly: true },
    { name: "tmp", mountPath: "/tmp" },
  ];
  if (run.spec.githubUser) {
    // Optional: token-only users clone over HTTPS; the token secret itself is required (checked before the Job is created).
    volumes.push({ name: "ssh-key", secret: { secretName: githubSshSecretName(run.spec.githubUser), defaultMode: 0o400, optional: true } });
    mounts.push({ name: "ssh-key", mountPath: AgentPaths.sshSecret, readOnly: true });
  }
  if (run.spec.githubApp) {
    volumes.push({ name: "github-app", secret: { secretName: githubAppSecretName(run.spec.githubApp), defaultMode: 0o400 } });
    mounts.push({ name: "github-app", mountPath: AgentPaths.githubAppSecret, readOnly: true });
  }
  return { volumes, mounts };
}

/** The agent container: the image, the runner command, the run's env, no privileges. */
function agentContainer(run: AnyRun, config: BuilderConfig, mounts: V1VolumeMount[]): V1Container {
  return {
    name: CONTAINER_NAME[run.kind],
    image: `${config.agent.image.repository}:${config.agent.image.tag}`,
    imagePullPolicy: config.agent.image.pullPolicy,
    command: [...config.agent.command],
    workingDir: AgentPaths.workspace,
    env: envFor(run, config),
    resources: structuredClone(config.agent.resources) as never,
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    terminationMessagePath: AgentPaths.terminationMessage,
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: mounts,
  };
}

/**
 * The agent Job of `attempt`, owned by the run, mounting the workspace and the run's files.
 * `workspaceClaim`: the CodeRun's workspace PVC as the reconciler resolved it (unused for DocsRuns,
 * which get an emptyDir).
 */
export function buildJob(run: AnyRun, attempt: number, config: BuilderConfig, workspaceClaim: string): V1Job {
  const limits = computeLimits(run, config);
  const labels = { ...runLabels(run), [Labels.attempt]: String(attempt) };
  const { volumes, mounts } = volumesFor(run, attempt, workspaceClaim);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobName(run, attempt),
      namespace: run.metadata.namespace,
      labels,
      ownerReferences: [ownerReference(run)],
    },
    spec: {
      // Retries are the controller's: each attempt is a new Job with its own name and status entry.
      backoffLimit: 0,
      activeDeadlineSeconds: limits.timeoutSeconds,
      ttlSecondsAfterFinished: config.job.ttlSecondsAfterFinished,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          ...(config.agent.serviceAccountName ? { serviceAccountName: config.agent.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          imagePullSecrets: config.agent.imagePullSecrets.map((name) => ({ name })),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: AGENT_UID,
            runAsGroup: AGENT_UID,
            fsGroup: AGENT_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [agentContainer(run, config, mounts)],
          volumes,
        },
      },
    },
  };
}
