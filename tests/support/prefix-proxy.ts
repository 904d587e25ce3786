/**
 * A reverse proxy that serves a backend under a path prefix and strips it, as an Ingress with a
 * rewrite does (ingress-nginx `rewrite-target` + `x-forwarded-prefix`). Responses are piped, so
 * server-sent events pass through unbuffered.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** `host`: where the proxy listens; another loopback address than the backend's keeps their cookies apart. */
export async function startPrefixProxy(
  backend: string,
  prefix: string,
  host = "127.0.0.2",
): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(backend);
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (url !== prefix && !url.startsWith(`${prefix}/`)) {
      res.writeHead(404).end("outside the prefix");
      return;
    }
    const path = url.slice(prefix.length) || "/";
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path,
        headers: { ...req.headers, host: target.host, "x-forwarded-prefix": prefix },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}${prefix}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
