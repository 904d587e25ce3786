/**
 * The ceilings' "plain client": @kubernetes/client-node's API clients as the library makes them
 * (its own fetch transport), on one pooled keep-alive connection per cluster. The controller's
 * clients (src/kube/clients.ts makeClients) use a leaner transport; the ceilings keep measuring
 * what a plain client's writes get from the API server.
 */
import { BatchV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { withConnectionPool } from "../src/kube/clients.js";

export function plainClients(kc: KubeConfig): { core: CoreV1Api; batch: BatchV1Api; custom: CustomObjectsApi } {
  withConnectionPool(kc);
  return { core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}
