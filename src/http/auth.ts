/**
 * Authentication of the REST API: static Bearer tokens (ORCHESTRATOR_API_TOKENS), and optionally
 * Kubernetes ServiceAccount tokens checked with a TokenReview so in-cluster callers need no
 * shared secret.
 *
 * Decision: with no token configured and TokenReview off, the API is disabled and answers 503
 * ("not configured", with what to set), never silently unauthenticated; health, readiness,
 * metrics, the OpenAPI document and the signed webhook stay available.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { TokenBucket } from "../util/rate-limit.js";

/** Who made an authenticated request; `name` goes into logs and the requested-by annotation. */
export interface Principal {
  name: string;
  method: "token" | "serviceaccount";
}

export type AuthResult =
  | { ok: true; principal: Principal }
  /** `status` 401: bad or missing credentials; 403: valid identity, not allowed; 429: too many unknown tokens; 503: cannot decide now. */
  | { ok: false; status: 401 | 403 | 429 | 503; message: string };

/** What the HTTP layer asks of authentication. */
export interface Authenticator {
  /** False when no method is configured: the API then answers 503 with how to configure one. */
  readonly enabled: boolean;
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

/** Port to the Kubernetes TokenReview API (src/kube/run-store.ts implements it). */
export interface TokenReviewer {
  review(token: string, audiences: string[]): Promise<{ authenticated: boolean; username?: string; groups?: string[]; error?: string }>;
}

export interface AuthenticatorOptions {
  tokens: readonly string[];
  tokenReview?: {
    reviewer: TokenReviewer;
    /** Usernames or groups allowed; empty = group system:serviceaccounts:<namespace>. */
    allow: readonly string[];
    audiences: readonly string[];
    namespace: string;
    /** Positive results are cached this long (a TokenReview per request would load the API server). */
    cacheTtlMs?: number;
    /** Rejected tokens are remembered this long, so a repeated random token costs no TokenReview. */
    negativeCacheTtlMs?: number;
    /** TokenReviews per second (burst: `reviewBurst`); beyond it unknown tokens get 429 without one. */
    reviewsPerSecond?: number;
    reviewBurst?: number;
    now?: () => number;
  };
}

export const WWW_AUTHENTICATE = 'Bearer realm="orchestrator"';
const HOW_TO = "Send 'Authorization: Bearer <token>' with a token from ORCHESTRATOR_API_TOKENS";

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Bearer token from an Authorization header, or undefined. */
export function parseBearer(header: string | undefined): string | undefined {
  if (typeof header !== "string") return undefined;
  const m = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i.exec(header);
  return m?.[1];
}

/** Keeps at most 1000 entries: a flood of random tokens must not grow memory. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= 1000) map.clear();
  map.set(key, value);
}

type TokenReviewOptions = NonNullable<AuthenticatorOptions["tokenReview"]>;

/**
 * A token that is not a static one: cached answers first (accepted and rejected tokens both), then
 * a TokenReview, at most `reviewsPerSecond`; beyond that unknown tokens get 429 without one.
 */
function createTokenReviewCheck(tr: TokenReviewOptions, howTo: string): (token: string, key: string) => Promise<AuthResult> {
  const allow = new Set(tr.allow.length > 0 ? tr.allow : [`system:serviceaccounts:${tr.namespace}`]);
  const accepted = new Map<string, { principal: Principal; until: number }>();
  const rejected = new Map<string, { result: AuthResult; until: number }>();
  const now = tr.now ?? Date.now;
  const limiter = new TokenBucket(tr.reviewsPerSecond ?? 5, tr.reviewBurst ?? 20, now);
  const audienceHint = tr.audiences.length
    ? ` ServiceAccount tokens must be issued for the audience ${tr.audiences.join(" or ")} (kubectl create token <sa> --audience ${tr.audiences[0]}).`
    : "";
  return async (token, key) => {
    const hit = accepted.get(key);
    if (hit && hit.until > now()) return { ok: true, principal: hit.principal };
    const miss = rejected.get(key);
    if (miss && miss.until > now()) return miss.result;
    if (!limiter.tryAcquire())
      return { ok: false, status: 429, message: "Too many requests with tokens that are not known yet; retry in a few seconds." };
    let res: Awaited<ReturnType<TokenReviewer["review"]>>;
    try {
      res = await tr.reviewer.review(token, [...tr.audiences]);
    } catch {
      return {
        ok: false,
        status: 503,
        message: "Could not verify the token: the Kubernetes API (TokenReview) is unreachable. Retry later, or use a static API token.",
      };
    }
    if (res.authenticated && res.username && [res.username, ...(res.groups ?? [])].some((x) => allow.has(x))) {
      const principal: Principal = { name: res.username, method: "serviceaccount" };
      remember(accepted, key, { principal, until: now() + (tr.cacheTtlMs ?? 60_000) });
      return { ok: true, principal };
    }
    const result: AuthResult =
      !res.authenticated || !res.username
        ? { ok: false, status: 401, message: `Invalid token. ${howTo}${audienceHint}` }
        : {
            ok: false,
            status: 403,
            message: `ServiceAccount ${res.username} is not allowed to use this API. Add it (or one of its groups) to api.tokenReviewAllow in the controller config.`,
          };
    remember(rejected, key, { result, until: now() + (tr.negativeCacheTtlMs ?? 60_000) });
    return result;
  };
}

/**
 * Static tokens are compared as sha256 digests with timingSafeEqual, so neither the length nor
 * the content of a configured token leaks through timing; every token is compared each time.
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const digests = opts.tokens.filter((t) => t.length > 0).map(digest);
  const tr = opts.tokenReview;
  const howTo = tr ? `${HOW_TO}, or a Kubernetes ServiceAccount token.` : `${HOW_TO}.`;
  const review = tr ? createTokenReviewCheck(tr, howTo) : undefined;
  return {
    enabled: digests.length > 0 || tr !== undefined,
    async authenticate(header) {
      const token = parseBearer(header);
      if (token === undefined) {
        return {
          ok: false,
          status: 401,
          message: header === undefined ? `Authentication required. ${howTo}` : `Malformed Authorization header. ${howTo}`,
        };
      }
      const d = digest(token);
      let match = -1;
      digests.forEach((c, i) => {
        if (timingSafeEqual(c, d) && match < 0) match = i;
      });
      if (match >= 0) return { ok: true, principal: { name: `api-token-${match + 1}`, method: "token" } };
      if (!review) return { ok: false, status: 401, message: `Invalid token. ${howTo}` };
      return review(token, d.toString("hex"));
    },
  };
}

/** Message for a disabled API (no tokens and no TokenReview). */
export const API_DISABLED_MESSAGE =
  "The REST API is disabled because no authentication is configured. Set ORCHESTRATOR_API_TOKENS (comma-separated bearer tokens; Helm: the chart's API token Secret) or enable api.tokenReview in the controller config, then restart.";

/**
 * The dashboard's session cookie. It holds the bearer token itself (there is no server-side
 * session to lose on restart); HttpOnly keeps page scripts from reading it.
 */
export const SESSION_COOKIE = "orchestrator_session";

/**
 * Header the dashboard sends with every write. A cookie is sent by the browser whoever made the
 * page; a custom header cannot be set cross-origin without a CORS preflight this service never
 * grants, so a cookie-authenticated write without it is refused (CSRF).
 */
export const CSRF_HEADER = "x-orchestrator-dashboard";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Where a request's credentials come from: the Authorization header first, else the session cookie. */
export function requestCredentials(req: {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  cookies?: Record<string, string | undefined>;
}): { authorization: string | undefined; csrfRefused: boolean } {
  const header = req.headers.authorization;
  if (typeof header === "string") return { authorization: header, csrfRefused: false };
  const token = req.cookies?.[SESSION_COOKIE];
  if (!token) return { authorization: undefined, csrfRefused: false };
  return { authorization: `Bearer ${token}`, csrfRefused: !SAFE_METHODS.has(req.method) && req.headers[CSRF_HEADER] !== "1" };
}

export const CSRF_MESSAGE = `Writes authenticated by the dashboard's session cookie must carry the header '${CSRF_HEADER}: 1'. API clients should send 'Authorization: Bearer <token>' instead of the cookie.`;
