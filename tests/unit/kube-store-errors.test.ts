import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { callApi, retryAfter429Ms, toStoreError } from "../../src/kube/run-store.js";

/** A 409 as client-node throws it: the API server's Status as the (string) body. */
const conflict409 = (reason: string, message: string) =>
  new ApiException(
    409,
    `HTTP-Code: 409`,
    JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code: 409 }),
    {},
  );

describe("toStoreError: 409 from the API server", () => {
  it.each([
    ["AlreadyExists", 'coderuns.orchestrator.platform "code-1" already exists', "AlreadyExists"],
    [
      "Conflict",
      'Operation cannot be fulfilled on coderuns.orchestrator.platform "code-1": the object has been modified; please apply your changes to the latest version and try again',
      "Conflict",
    ],
    ["Conflict", "Operation cannot be fulfilled: the object is being deleted", "Conflict"],
  ])("maps Status reason %s (%s) to %s", (reason, message, expected) => {
    const err = toStoreError(conflict409(reason, message));
    expect(err.reason).toBe(expected);
    expect(err.message).toBe(message);
  });
});

/** A 429 as client-node throws it, with the API server's Retry-After. */
const tooMany429 = (retryAfter?: string) =>
  new ApiException(
    429,
    "HTTP-Code: 429",
    JSON.stringify({ kind: "Status", status: "Failure", reason: "TooManyRequests", message: "storage is (re)initializing", code: 429 }),
    retryAfter === undefined ? {} : { "retry-after": retryAfter },
  );

describe("callApi: a 429 is asked again, as client-go does", () => {
  it("honours Retry-After (1 s without one, at most 2 s) and only for 429", () => {
    expect(retryAfter429Ms(tooMany429("0"))).toBe(0);
    expect(retryAfter429Ms(tooMany429())).toBe(1000);
    expect(retryAfter429Ms(tooMany429("30"))).toBe(2000);
    expect(retryAfter429Ms(tooMany429("soon"))).toBe(1000);
    expect(retryAfter429Ms(conflict409("Conflict", "modified"))).toBeUndefined();
    expect(retryAfter429Ms(new Error("ECONNREFUSED"))).toBeUndefined();
  });

  it("succeeds once the API server answers, and reports Unavailable after three retries", async () => {
    let calls = 0;
    await expect(
      callApi(async () => {
        if (++calls < 3) throw tooMany429("0");
        return "created";
      }),
    ).resolves.toBe("created");
    expect(calls).toBe(3);

    calls = 0;
    const always = callApi(async () => {
      calls++;
      throw tooMany429("0");
    });
    await expect(always).rejects.toMatchObject({ reason: "Unavailable", message: "HTTP 429: storage is (re)initializing" });
    expect(calls).toBe(4);
  });

  it("does not ask again after any other failure", async () => {
    let calls = 0;
    const once = callApi(async () => {
      calls++;
      throw conflict409("AlreadyExists", "exists");
    });
    await expect(once).rejects.toMatchObject({ reason: "AlreadyExists" });
    expect(calls).toBe(1);
  });
});
