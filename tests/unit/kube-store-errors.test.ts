import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { toStoreError } from "../../src/kube/run-store.js";

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
