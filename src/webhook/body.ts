/**
 * Reading a delivery's body while its signature is unknown. Anyone can send bytes to the webhook
 * URL, so what an unauthenticated sender can make the process hold is bounded:
 * - a request without a well-formed signature header, or while no secret is configured, is
 *   answered without reading its body;
 * - the signature is checked while the body streams in; the bytes are kept only when the event
 *   needs its payload (a rule or the delivery listener wants it), others are hashed and dropped;
 * - bodies being read at once and the bytes they may keep are capped (UnverifiedBudget): past the
 *   cap a delivery is refused with 503 before its body is read;
 * - a body must arrive within webhook.bodyTimeoutMs (GitHub itself gives up after 10 s).
 */
import type { Readable } from "node:stream";
import type { ProblemType } from "../intake/problem.js";
import { createSignatureCheck } from "./signature.js";

/** A failure while reading a body; the app's error handler answers it as a problem. */
export class BodyError extends Error {
  constructor(
    readonly statusCode: number,
    readonly problem: ProblemType,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** One body's share of the budget: its slot and the bytes it may keep. Released once. */
export interface Lease {
  /** Reserves `bytes` more; false when the budget has no room. */
  grow(bytes: number): boolean;
  release(): void;
}

/** Bodies being read before their signature is known, and the bytes they keep: both capped. */
export class UnverifiedBudget {
  private bodies = 0;
  private bytes = 0;

  constructor(
    readonly maxBodies: number,
    readonly maxBytes: number,
  ) {}

  /** A lease with `expectedBytes` (the Content-Length) reserved, or undefined when either cap is reached. */
  tryAcquire(expectedBytes: number): Lease | undefined {
    if (this.bodies >= this.maxBodies || this.bytes + expectedBytes > this.maxBytes) return undefined;
    this.bodies++;
    this.bytes += expectedBytes;
    let held = expectedBytes;
    let released = false;
    return {
      grow: (n) => {
        if (released) return true;
        if (this.bytes + n > this.maxBytes) return false;
        this.bytes += n;
        held += n;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.bodies--;
        this.bytes -= held;
      },
    };
  }

  /** What is held now (for tests and metrics). */
  get usage(): { bodies: number; bytes: number } {
    return { bodies: this.bodies, bytes: this.bytes };
  }
}

export interface ReadOptions {
  signature: unknown;
  secrets: readonly string[];
  /** Keep the bytes (the payload will be parsed); otherwise only the signature is computed. */
  keep: boolean;
  maxBytes: number;
  timeoutMs: number;
  /** Bytes already reserved for this body (its Content-Length); more is reserved as it arrives. */
  reserved: number;
  lease: Lease;
}

/** What the receiver gets instead of a parsed body. */
export interface SignedBody {
  /** False when the body was left unread (no secret configured, no well-formed signature header). */
  read: boolean;
  /** The bytes, when kept; else empty. */
  raw: Buffer;
  /** Bytes received. */
  bytes: number;
  signatureValid: boolean;
}

/** The body of a request that is answered without reading it. */
export const UNREAD: SignedBody = { read: false, raw: Buffer.alloc(0), bytes: 0, signatureValid: false };

/** Reads `stream`, checking the signature on the way; rejects with BodyError (413, 408, 503). */
export function readSignedBody(stream: Readable, o: ReadOptions): Promise<SignedBody> {
  const check = createSignatureCheck(o.signature, o.secrets);
  const chunks: Buffer[] = [];
  let bytes = 0;
  return new Promise<SignedBody>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new BodyError(408, "timeout", `The delivery's body did not arrive within ${o.timeoutMs} ms (webhook.bodyTimeoutMs).`)),
      o.timeoutMs,
    );
    const finish = () => {
      clearTimeout(timer);
      stream.off("data", onData).off("end", onEnd).off("error", onError);
    };
    const fail = (err: Error) => {
      finish();
      stream.resume(); // drain whatever else arrives; the answer closes the connection
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > o.maxBytes)
        return fail(new BodyError(413, "tooLarge", "The request body is larger than the limit (webhook.maxBodyBytes)."));
      if (o.keep && bytes > o.reserved && !o.lease.grow(Math.min(chunk.length, bytes - o.reserved)))
        return fail(overloaded("the bytes of unverified deliveries being read reached webhook.maxUnverifiedBytes"));
      check.update(chunk);
      if (o.keep) chunks.push(chunk);
    };
    const onEnd = () => {
      finish();
      resolve({ read: true, raw: Buffer.concat(chunks), bytes, signatureValid: check.matches() });
    };
    const onError = (err: Error) => fail(err);
    stream.on("data", onData).on("end", onEnd).on("error", onError);
  });
}

/** The 503 of a full budget: GitHub shows the delivery as failed, and it can be redelivered. */
export function overloaded(why: string): BodyError {
  return new BodyError(
    503,
    "overloaded",
    `Too many webhook deliveries are being received at once (${why}); nothing was read or created. Redeliver it from the GitHub webhook settings in a moment, or raise webhook.maxUnverifiedBodies / webhook.maxUnverifiedBytes.`,
    1,
  );
}
