/**
 * The controller's configuration: the YAML file the chart renders into its ConfigMap
 * (`config.yaml`), plus secrets taken from the environment. Every field has a default so a
 * developer can run `npm start` with no file at all.
 */
import { z } from "zod";
import { defaultGithubUrl, githubUrlProblem } from "../api/github-host.js";
import { SECRET_NAME_PATTERN } from "../api/validation.js";

const quantity = z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$/, "must be a Kubernetes quantity such as 10Gi or 500m");
const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label (lowercase letters, digits, '-')")
  .max(63);

const resourceList = z.record(z.string(), quantity);

const QUANTITY_SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** The number a quantity stands for (cores, bytes), to compare a request with its limit. */
function quantityValue(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(q);
  return m ? Number(m[1]) * (QUANTITY_SUFFIX[m[2]!] ?? Number.NaN) : Number.NaN;
}

/**
 * A container's requests and limits. A request above its limit is refused here, where the message
 * can say which value to change; Kubernetes would otherwise refuse every agent pod at creation.
 */
export const resourcesSchema = z
  .strictObject({ requests: resourceList.optional(), limits: resourceList.optional() })
  .superRefine((r, ctx) => {
    for (const [name, request] of Object.entries(r.requests ?? {})) {
      const limit = r.limits?.[name];
      if (limit !== undefined && quantityValue(request) > quantityValue(limit))
        ctx.addIssue({
          code: "custom",
          path: ["requests", name],
          message: `the request ${request} is above the limit ${limit}; lower requests.${name} or raise limits.${name}`,
        });
    }
  });

/**
 * Leader election between replicas (a coordination.k8s.io/v1 Lease): only the holder reconciles.
 * client-go's defaults are 15 s / 10 s / 2 s; the holder gives up before anyone may take over.
 */
const leaderElectionSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** The Lease's name in the controller's namespace. */
    leaseName: dnsLabel.default("orchestrator-leader"),
    /** How long a Lease holds without renewal; the worst-case takeover after a crash. */
    leaseDurationSeconds: z.number().int().min(2).max(300).default(15),
    /** The holder stops reconciling when it could not renew for this long (< leaseDurationSeconds). */
    renewDeadlineSeconds: z.number().min(1).max(299).default(10),
    /** Time between attempts to acquire or renew (< renewDeadlineSeconds). */
    retryPeriodSeconds: z.number().min(0.1).max(60).default(2),
  })
  .prefault({})
  .refine((l) => l.renewDeadlineSeconds < l.leaseDurationSeconds && l.retryPeriodSeconds < l.renewDeadlineSeconds, {
    message:
      "controller.leaderElection needs retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, or two replicas could reconcile at once",
    path: ["renewDeadlineSeconds"],
  });

/**
 * Execution clusters (docs/clusters.md): registered by cluster Secrets, not here; the config says
 * where runs go by default and how many may be active in each cluster.
 */
const clustersSchema = z
  .strictObject({
    /** Per service: the cluster its CodeRuns run in when spec.cluster is not set (else the home cluster). */
    serviceDefaults: z.record(dnsLabel.max(53), dnsLabel).default({}),
    /** Per cluster (its name, or "home"): unfinished Jobs at once; more runs wait (WaitingForCluster). Absent = no limit. */
    maxActiveRuns: z.record(dnsLabel, z.number().int().min(1)).default({}),
  })
  .prefault({});

/** A regular expression from the config; compiled once at start, so a typo fails there. */
const regexSource = z
  .string()
  .min(1)
  .max(1000)
  .refine(
    (src) => {
      try {
        new RegExp(src, "u");
        return true;
      } catch {
        return false;
      }
    },
    { message: "must be a valid JavaScript regular expression (u flag); use (?<prompt>...) for the request text" },
  );

/** The GitHub web or API URL: https (plain http only on a loopback address), without credentials. */
const githubUrl = z.string().superRefine((url, ctx) => {
  const problem = githubUrlProblem(url);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A webhook rule turns a GitHub event into intent (a CodeRun), without code. The first matching rule wins. */
export const webhookRuleSchema = z.strictObject({
  name: z.string().min(1),
  /** GitHub event name (X-GitHub-Event), e.g. issue_comment, issues, pull_request. */
  event: z.string().min(1),
  /** Allowed payload actions (e.g. created, labeled). Empty = `created` for comment rules, `labeled` for label rules, any action otherwise. */
  actions: z.array(z.string()).default([]),
  /**
   * Comment events (issue_comment, pull_request_review_comment, ...): a regular expression the
   * comment's first line must match, e.g. `^/agent run\b(?<prompt>.*)` or `@rex\b(?<prompt>.*)`.
   * Named group `prompt` is the request (the comment's other lines are appended); named group
   * `task` overrides the task id. Without a pattern, a comment rule matches every comment.
   */
  commentPattern: regexSource.optional(),
  /** issues / pull_request labeled: the label that triggers (case-insensitive). */
  label: z.string().min(1).optional(),
  /** Values for the CodeRun created by this rule (over webhook.defaults, then the event). */
  run: z
    .strictObject({
      service: dnsLabel.max(53).optional(),
      /** Use the repository of the event when absent. */
      repositoryUrl: z.string().optional(),
      docsRepositoryUrl: z.string().optional(),
      docsProjectDirectory: z.string().optional(),
      workingDirectory: z.string().optional(),
      model: z.string().optional(),
      githubUser: z.string().optional(),
      githubApp: z.string().optional(),
      /** Key of config.agents: supplies githubUser/githubApp and model unless set here. */
      agent: z.string().optional(),
      /** Execution cluster of the runs (spec.cluster); default: the service's, else home. */
      cluster: dnsLabel.optional(),
    })
    .prefault({}),
});
export type WebhookRule = z.infer<typeof webhookRuleSchema>;

/** An agent of the roster (multi-agent Plays). */
export const agentSchema = z
  .strictObject({
    githubUser: z.string().min(1).optional(),
    githubApp: z.string().min(1).optional(),
    role: z.string().default(""),
    model: z.string().optional(),
    systemPrompt: z.string().default(""),
    tools: z.strictObject({ allow: z.array(z.string()).optional(), deny: z.array(z.string()).optional() }).prefault({}),
  })
  .refine((a) => Boolean(a.githubUser) !== Boolean(a.githubApp), { message: "set exactly one of githubUser or githubApp" });

/**
 * Upstream's remediation triggers (remediation-feedback-sensor), as JavaScript regular
 * expressions matched case-insensitively against PR comments and review bodies.
 */
export const DEFAULT_REMEDIATION_PATTERNS = [
  "^\\s*/remediate\\b",
  "🔴.*required changes",
  "\\bfix required\\b",
  "\\bneeds changes\\b",
  "\\bchanges requested\\b",
];

/** Multi-agent Plays (docs/play.md): roster defaults per role, remediation and GitHub reporting. */
export const playSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Play reconciles running at once (different Plays). */
    workers: z.number().int().min(1).max(16).default(2),
    /** Every active Play re-reads GitHub this often, so a webhook delivery that never came is caught up. */
    resyncSeconds: z.number().int().min(1).default(60),
    /** Roster names (config agents, case-insensitive) used when a Play's spec.agents leaves a role out. */
    implementationAgent: z.string().min(1).default("rex"),
    qualityAgent: z.string().min(1).default("cleo"),
    testingAgent: z.string().min(1).default("tess"),
    /** Remediation runs per task before a Play stops (spec.maxRemediationIterations overrides). */
    maxRemediationIterations: z.number().int().min(0).max(50).default(3),
    /** The label the quality agent adds when the PR may go to testing. */
    readyForQaLabel: z.string().min(1).default("ready-for-qa"),
    /** Comments (and review bodies) matching one of these start a remediation run (flags i, m, u). */
    remediationPatterns: z.array(regexSource).default(DEFAULT_REMEDIATION_PATTERNS),
    /** External base URL of this service; check runs link to `<publicUrl>/api/v1/runs/CodeRun/<run>/logs`. Empty = no link. */
    publicUrl: z.union([z.url(), z.literal("")]).default(""),
  })
  .prefault({});

/** One authorization rule: which requesters may use which identities, repositories and Secrets (`*` is a wildcard). */
export const authorizationRuleSchema = z.strictObject({
  /**
   * Who: API token principals (`api-token-1`), ServiceAccounts (`system:serviceaccount:ci:bot`),
   * webhook rules (`webhook:<rule name>`), or `kubernetes` for runs created with kubectl.
   */
  requesters: z.array(z.string().min(1)).min(1),
  /** GitHub identities: `user:<login>`, `app:<name>` (case-insensitive). */
  identities: z.array(z.string().min(1)).default(["*"]),
  /** Repositories on the configured GitHub host: `owner/repo` (case-insensitive). */
  repositories: z.array(z.string().min(1)).default(["*"]),
  /** Secrets (names) this requester's runs may mount; they must also be in mountableSecrets. */
  secrets: z.array(z.string().min(1)).default([]),
  /**
   * Execution clusters this requester's runs may name in spec.cluster (`home` = the controller's
   * own). Runs without spec.cluster go where the config places them and are not checked.
   */
  clusters: z.array(z.string().min(1)).default(["*"]),
});

export const fileConfigSchema = z.strictObject({
  namespace: dnsLabel.default("orchestrator"),
  server: z
    .strictObject({ host: z.string().default("0.0.0.0"), port: z.coerce.number().int().min(1).max(65535).default(8080) })
    .prefault({}),
  controller: z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * Reconciles running at once (different keys). A reconcile mostly waits on the API server,
       * so this is how many requests can be in flight: enough that the API server, not the
       * workers, bounds a burst (docs/controller.md#throughput-defaults).
       */
      workers: z.number().int().min(1).max(256).default(64),
      resyncSeconds: z.number().int().min(10).default(300),
      /**
       * Client-side rate limit to the API server (like client-go's QPS/Burst): a guard against a
       * runaway loop, set above what one API server sustains for the controller's writes. The API
       * server's Priority and Fairness protects it from overload, as controller-runtime relies on.
       */
      qps: z.number().min(1).default(1000),
      burst: z.number().int().min(1).default(2000),
      leaderElection: leaderElectionSchema,
      clusters: clustersSchema,
    })
    .prefault({}),
  agent: z
    .strictObject({
      image: z
        .strictObject({
          repository: z.string().min(1).default("ghcr.io/5dlabs/cto/claude-code"),
          tag: z.string().min(1).default("latest"),
          pullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
        })
        .prefault({}),
      imagePullSecrets: z.array(z.string()).default([]),
      resources: resourcesSchema.default({ requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2", memory: "4Gi" } }),
      /** The channel container's resources (model proxy, git, delivery); the agent container's are `resources`. */
      channelResources: resourcesSchema.default({ requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "2", memory: "1Gi" } }),
      serviceAccountName: z.string().optional(),
      /** Command that starts the agent runner in the agent image. */
      command: z.array(z.string()).min(1).default(["orchestrator-agent-runner"]),
      /** Command that starts the agent's channel (the credentialed container) in the agent image. */
      channelCommand: z.array(z.string()).min(1).default(["orchestrator-agent-channel"]),
      branchPrefix: z.string().default("feature/"),
      baseBranch: z.string().default("main"),
      /** Messages API base URL for agents (ANTHROPIC_BASE_URL in the Job); empty = Anthropic's. */
      anthropicBaseUrl: z.union([z.url(), z.literal("")]).default(""),
    })
    .prefault({}),
  job: z
    .strictObject({
      activeDeadlineSeconds: z.number().int().min(60).default(3600),
      ttlSecondsAfterFinished: z.number().int().min(0).default(3600),
      maxRetries: z.number().int().min(0).max(20).default(2),
      retryBackoffSeconds: z.number().min(0).default(30),
      retryBackoffMaxSeconds: z.number().min(0).default(600),
      maxTurns: z.number().int().min(1).default(200),
      /** Dollar budget of one attempt (model tokens at list prices, metered by the run's model proxy); 0 = none. */
      maxCostUsd: z.number().min(0).default(0),
      /** Per-service defaults of maxCostUsd (CodeRuns and Play stages of that service), over maxCostUsd. */
      maxCostUsdByService: z.record(z.string(), z.number().min(0)).default({}),
      /** Seconds before the deadline at which the runner stops the agent and pushes its work. */
      budgetMarginSeconds: z.number().int().min(0).default(120),
    })
    .prefault({}),
  secrets: z
    .strictObject({
      apiKeySecretName: z.string().min(1).default("orchestrator-secrets"),
      apiKeySecretKey: z.string().min(1).default("ANTHROPIC_API_KEY"),
    })
    .prefault({}),
  storage: z
    .strictObject({
      storageClassName: z.string().default(""),
      workspaceSize: quantity.default("10Gi"),
    })
    .prefault({}),
  concurrency: z
    .strictObject({
      /** Active runs per service; the workspace is one ReadWriteOnce volume, hence 1. */
      perService: z.number().int().min(1).default(1),
    })
    .prefault({}),
  templates: z
    .strictObject({
      /** Directory of the chart's templates ConfigMap; files there override built-in templates. */
      dir: z.string().default("/claude-templates"),
    })
    .prefault({}),
  models: z
    .strictObject({
      defaultCodeModel: z.string().min(1).default("claude-sonnet-4-20250514"),
      defaultDocsModel: z.string().min(1).default("claude-opus-4-20250514"),
    })
    .prefault({}),
  permissions: z
    .strictObject({
      allow: z
        .array(z.string())
        .default(["Bash", "Edit", "Read", "Write", "MultiEdit", "Glob", "Grep", "LS", "Task", "TodoWrite", "WebFetch", "WebSearch"]),
      deny: z.array(z.string()).default([]),
    })
    .prefault({}),
  github: z
    .strictObject({
      apiUrl: githubUrl.default("https://api.github.com"),
      /**
       * The GitHub web and git host (scheme://host[:port]): the only place run credentials are
       * sent. Default: https://github.com for api.github.com, else the API URL's origin (GHES).
       */
      url: githubUrl.optional(),
      /**
       * Answer on GitHub for deliveries that start runs: 👀 reaction, a tracking comment kept up to
       * date, a check run on the PR head, and a short reply to refused requests (needs GITHUB_TOKEN
       * or a GitHub App). Log links use play.publicUrl.
       */
      replies: z.boolean().default(true),
      /**
       * PEM certificates of the CA that signed the GitHub host's certificate, when it is not a
       * public one (GitHub Enterprise Server behind a private CA). The agent's git and Node trust
       * it on top of the system CAs; the controller Deployment trusts it too (chart).
       */
      caBundle: z
        .string()
        .refine((pem) => /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem), {
          message: "must be PEM certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)",
        })
        .optional(),
    })
    .prefault({})
    .transform((g) => ({
      apiUrl: g.apiUrl,
      url: new URL(g.url ?? defaultGithubUrl(g.apiUrl)).origin,
      replies: g.replies,
      ...(g.caBundle ? { caBundle: g.caBundle } : {}),
    })),
  api: z
    .strictObject({
      /** Accept Kubernetes ServiceAccount tokens through TokenReview, besides the static tokens. */
      tokenReview: z.boolean().default(false),
      /**
       * TokenReview: usernames (system:serviceaccount:NS:NAME) or groups (system:serviceaccounts:NS)
       * allowed to call the API. Empty = the ServiceAccounts of the controller's own namespace.
       */
      tokenReviewAllow: z.array(z.string().min(1)).default([]),
      /**
       * TokenReview audiences: callers need tokens issued for one of them (kubectl create token SA
       * --audience orchestrator), so a ServiceAccount token meant for the Kubernetes API (or stolen
       * from any pod) is not accepted here. Empty = the API server's own audience (not recommended).
       */
      tokenReviewAudiences: z.array(z.string().min(1)).default(["orchestrator"]),
      /** Upper bound for request bodies. */
      maxBodyBytes: z.number().int().min(1024).default(1_048_576),
    })
    .prefault({}),
  webhook: z
    .strictObject({
      maxBodyBytes: z.number().int().min(1024).default(26_214_400),
      /**
       * Deliveries whose body is being read before its signature is known, at once; past it a
       * delivery is answered 503 (with Retry-After) without reading its body.
       */
      maxUnverifiedBodies: z.number().int().min(1).default(16),
      /** Bytes those bodies may keep in memory together (at least maxBodyBytes); past it, 503 too. */
      maxUnverifiedBytes: z.number().int().min(1024).default(67_108_864),
      /** A body slower than this is answered 408 (GitHub gives up after 10 s). */
      bodyTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
      /** author_association values that count as write access. */
      allowedAssociations: z.array(z.string()).default(["OWNER", "MEMBER", "COLLABORATOR"]),
      /** Users allowed to trigger regardless of association. Bots only trigger when listed here. */
      allowUsers: z.array(z.string()).default([]),
      /**
       * How long a delivery waits for its CodeRun create before it is acknowledged anyway (202,
       * the create goes on in the background). GitHub gives up after 10 s.
       */
      ackTimeoutMs: z.number().int().min(100).max(9000).default(3000),
      /** Delivery ids remembered in memory to answer redeliveries without an API call. */
      dedupeCacheSize: z.number().int().min(0).default(1000),
      /** Longest request text (bytes) taken from a comment into promptModification. */
      maxPromptBytes: z.number().int().min(256).default(16_384),
      /** Defaults for CodeRuns created from events. */
      defaults: z
        .strictObject({
          service: dnsLabel.max(53).optional(),
          githubUser: z.string().optional(),
          githubApp: z.string().optional(),
          model: z.string().optional(),
          docsProjectDirectory: z.string().optional(),
        })
        .prefault({}),
      rules: z.array(webhookRuleSchema).default([]),
    })
    .prefault({})
    .refine((w) => w.maxUnverifiedBytes >= w.maxBodyBytes, {
      message: "webhook.maxUnverifiedBytes must be at least webhook.maxBodyBytes, or no delivery of the largest size could be read",
      path: ["maxUnverifiedBytes"],
    }),
  agents: z.record(z.string(), agentSchema).default({}),
  play: playSchema,
  /** Who may use what (docs/security.md). Enforced at intake and again before every attempt. */
  authorization: z
    .strictObject({
      /**
       * Secrets runs may mount through envFromSecrets, besides those labelled
       * orchestrator.platform/mountable: "true". The controller's own Secret and identity Secrets
       * (github-token-*, github-ssh-*, github-app-*) are never mountable, whatever their labels.
       */
      mountableSecrets: z.array(z.string().regex(new RegExp(SECRET_NAME_PATTERN), "must be a Secret name (DNS subdomain)")).default([]),
      /** Empty = one rule for every requester: any identity, any repository on github.url, the mountable Secrets. */
      rules: z.array(authorizationRuleSchema).default([]),
      /** Per requester: each API token, ServiceAccount, webhook rule and `kubernetes` on its own. */
      quotas: z
        .strictObject({
          /** Runs (CodeRuns and DocsRuns) not yet finished; more are refused at intake with 429. */
          maxActiveRuns: z.number().int().min(1).default(20),
          /** Size of a run's spec as JSON (mostly its prompt); larger is refused with 413 at intake and fails at reconcile. */
          maxSpecBytes: z.number().int().min(4096).max(1_048_576).default(131_072),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type FileConfig = z.infer<typeof fileConfigSchema>;

/** Secrets come from the environment (the chart maps its Secret there), never from the config file. */
export interface SecretConfig {
  /** Bearer tokens accepted by the REST API. Empty = API disabled unless TokenReview is on. */
  apiTokens: string[];
  /** Webhook secrets; two during rotation. */
  webhookSecrets: string[];
  /** GITHUB_TOKEN: the controller's own GitHub calls (Play state, comments). Empty = none. */
  githubToken: string;
  /** ANTHROPIC_API_KEY: only read to create the agents' Secret on a local development cluster. */
  anthropicApiKey: string;
  /** GITHUB_USER: whose GITHUB_TOKEN it is; names the local cluster's Secret github-token-<user>. */
  githubUser: string;
  /**
   * GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY (+ optional GITHUB_APP_INSTALLATION_ID): the controller
   * as a GitHub App, preferred over githubToken; check runs on github.com need an App.
   */
  githubApp?: { appId: string; privateKey: string; installationId?: number };
}

/** Where the process runs, from the environment (the chart's downward API). */
export interface IdentityConfig {
  /** POD_NAME, else the host name: the replica's name in the leader Lease and readiness. */
  podName: string;
}

export type Config = Readonly<FileConfig & SecretConfig & IdentityConfig & { configPath: string | null }>;
