/** The `play` config section and the controller's GitHub credentials from the environment. */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/config.js";
import { compilePlaySettings } from "../../src/play/settings.js";

describe("play config", () => {
  it("has defaults for every key", () => {
    const c = parseConfig(null, {});
    expect(c.play).toMatchObject({
      enabled: true,
      resyncSeconds: 60,
      implementationAgent: "rex",
      qualityAgent: "cleo",
      testingAgent: "tess",
      maxRemediationIterations: 3,
      readyForQaLabel: "ready-for-qa",
      publicUrl: "",
    });
    expect(c.githubToken).toBe("");
    expect(c.githubApp).toBeUndefined();
  });

  it("compiles the remediation patterns once, case-insensitively per line", () => {
    const s = compilePlaySettings(parseConfig(null, {}));
    const hit = (t: string) => s.remediationPatterns.some((re) => re.test(t));
    expect(hit("/remediate")).toBe(true);
    expect(hit("Thanks!\n/Remediate the failing test")).toBe(true);
    expect(hit("🔴 REQUIRED CHANGES below")).toBe(true);
    expect(hit("please do not /remediatex")).toBe(false);
  });

  it.each([
    ["an unknown key", "play: {resync: 5}", /play: Unrecognized key/],
    [
      "a broken pattern",
      "play: {remediationPatterns: ['(unclosed']}",
      /play.remediationPatterns.0: must be a valid JavaScript regular expression/,
    ],
    ["a resync of 0", "play: {resyncSeconds: 0}", /play.resyncSeconds/],
    ["a public URL that is not one", "play: {publicUrl: orchestrator}", /play.publicUrl/],
  ])("rejects %s", (_what, yaml, message) => {
    expect(() => parseConfig(yaml, {})).toThrow(message);
  });

  it("reads GITHUB_TOKEN and the GitHub App credentials from the environment", () => {
    expect(parseConfig(null, { GITHUB_TOKEN: " ghp_x " }).githubToken).toBe("ghp_x");
    const app = parseConfig(null, {
      GITHUB_APP_ID: "123",
      GITHUB_APP_PRIVATE_KEY: "-----BEGIN KEY-----\\nabc\\n-----END KEY-----",
      GITHUB_APP_INSTALLATION_ID: "9",
    }).githubApp;
    expect(app).toEqual({ appId: "123", privateKey: "-----BEGIN KEY-----\nabc\n-----END KEY-----", installationId: 9 });
    expect(() => parseConfig(null, { GITHUB_APP_ID: "123" })).toThrow(ConfigError);
    expect(() => parseConfig(null, { GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: "k", GITHUB_APP_INSTALLATION_ID: "x" })).toThrow(
      /GITHUB_APP_INSTALLATION_ID=x is not a number/,
    );
  });
});
