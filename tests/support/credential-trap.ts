/**
 * A hostile HTTP server standing in for "some other host": it answers every request with a
 * Basic/Bearer authentication challenge, the way a git server or an API asks for credentials, and
 * records every request and every credential it is offered. Tests assert it saw nothing.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TrapRequest {
  method: string;
  path: string;
  /** The Authorization header, verbatim, when one was sent. */
  authorization?: string;
}

export interface CredentialTrap {
  url: string;
  requests: TrapRequest[];
  /** Requests that carried credentials. */
  offered(): TrapRequest[];
  close(): Promise<void>;
}

export async function startCredentialTrap(): Promise<CredentialTrap> {
  const requests: TrapRequest[] = [];
  const server = http.createServer((req, res) => {
    const authorization = req.headers.authorization;
    requests.push({ method: req.method ?? "GET", path: req.url ?? "/", ...(authorization ? { authorization } : {}) });
    req.resume();
    res
      .writeHead(401, { "www-authenticate": ['Basic realm="git"', 'Bearer realm="api"'], "content-type": "text/plain" })
      .end("Unauthorized\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    offered: () => requests.filter((r) => r.authorization !== undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
