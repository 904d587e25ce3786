/** observeJob: which container's termination message is the run's result, on the pod shapes agent Jobs have had. */
import type { V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { observeJob } from "../../src/controller/status.js";

const at = "2026-01-02T03:04:05Z";
const job = (type: "Complete" | "Failed"): V1Job => ({
  metadata: { name: "j", creationTimestamp: new Date(at) },
  status: {
    startTime: new Date(at),
    conditions: [{ type, status: "True", lastTransitionTime: new Date(at), reason: "BackoffLimitExceeded" }],
  },
});
const ended = (name: string, exitCode: number, message?: string): V1ContainerStatus => ({
  name,
  image: "agent:test",
  imageID: "",
  ready: false,
  restartCount: 0,
  state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", ...(message ? { message } : {}) } },
});
const pod = (status: V1Pod["status"]): V1Pod => ({ metadata: { name: "p", creationTimestamp: new Date(at) }, status });

const channelRecord = { outcome: "succeeded", pullRequestUrl: "https://github.com/acme/api/pull/7" };
const forged = { outcome: "succeeded", pullRequestUrl: "https://github.com/acme/api/pull/666" };

describe("observeJob", () => {
  it("takes the channel's record from the channel container, listed before the agent's", () => {
    const p = pod({
      phase: "Succeeded",
      containerStatuses: [ended("channel", 0, JSON.stringify(channelRecord)), ended("claude-code", 0, JSON.stringify(forged))],
    });
    expect(observeJob(job("Complete"), [p])).toMatchObject({ state: "succeeded", result: channelRecord, resultFrom: "channel" });
  });

  it("reads the channel's record from a pod made when the channel was an init container", () => {
    const p = pod({
      phase: "Succeeded",
      initContainerStatuses: [ended("channel", 0, JSON.stringify(channelRecord))],
      containerStatuses: [ended("claude-code", 0, JSON.stringify(forged))],
    });
    expect(observeJob(job("Complete"), [p])).toMatchObject({ result: channelRecord, resultFrom: "channel" });
  });

  it("names the agent container's exit, not the channel's, when neither wrote a result", () => {
    const p = pod({ phase: "Failed", containerStatuses: [ended("channel", 0), ended("claude-code", 137)] });
    expect(observeJob(job("Failed"), [p])).toMatchObject({
      state: "failed",
      reason: "Error",
      message: "container exited with code 137 (Error)",
    });
  });

  it("falls back to the agent container's message when the channel wrote none", () => {
    const agentResult = { outcome: "failed", reason: "InternalError", message: "The channel did not accept the agent's outcome" };
    const p = pod({ phase: "Failed", containerStatuses: [ended("channel", 1), ended("claude-code", 1, JSON.stringify(agentResult))] });
    expect(observeJob(job("Failed"), [p])).toMatchObject({ result: agentResult, resultFrom: "agent", reason: "InternalError" });
  });
});
