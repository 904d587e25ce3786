/**
 * Serves bare repositories over smart HTTP (`git http-backend` as a CGI) on 127.0.0.1, with Basic
 * authentication: the password must be one of `tokens`, as GitHub checks a token. Lets tests drive
 * the runner's real HTTPS credential path (credential helper, token in the environment) locally.
 */
import { spawn } from "node:child_process";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { createTestServer, type TlsFiles } from "./tls.js";

export interface GitHttpServer {
  url: string;
  /** Basic-auth usernames/passwords seen, for assertions (passwords redacted to validity). */
  attempts: { path: string; user: string | null; accepted: boolean }[];
  /** The next `count` pushes (git-receive-pack) are refused with HTTP `status`, as a flaky server would. */
  refusePushes(count: number, status?: number): void;
  /** Requests below `from` (a repository path such as /org/old.git) are answered 301 to `to` plus the rest, as for a moved repository. */
  redirectRepository(from: string, to: string): void;
  close(): Promise<void>;
}

/** `tokens`: the accepted passwords, or a predicate (e.g. "minted by the fake GitHub"). */
/** `host`: the address to listen on (pods on a real node reach the host's IP, never its loopback). */
export async function startGitHttpServer(
  projectRoot: string,
  tokens: string[] | ((password: string) => boolean),
  opts: { host?: string; tls?: TlsFiles } = {},
): Promise<GitHttpServer> {
  const host = opts.host ?? "127.0.0.1";
  const isValid = typeof tokens === "function" ? tokens : (p: string) => tokens.includes(p);
  const attempts: GitHttpServer["attempts"] = [];
  let refuse = { count: 0, status: 503 };
  const redirects = new Map<string, string>();
  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    for (const [from, to] of redirects) {
      if (!url.pathname.startsWith(`${from}/`)) continue;
      req.resume();
      res.writeHead(301, { location: `${to}${url.pathname.slice(from.length)}${url.search}` }).end();
      return;
    }
    const header = req.headers.authorization ?? "";
    const basic = /^Basic\s+(.+)$/i.exec(header)?.[1];
    const [user, password] = basic ? Buffer.from(basic, "base64").toString("utf8").split(/:(.*)/s) : [null, null];
    const accepted = Boolean(password && isValid(password));
    attempts.push({ path: url.pathname, user: user ?? null, accepted });
    if (!accepted) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end("Unauthorized\n");
      return;
    }
    if (refuse.count > 0 && req.method === "POST" && url.pathname.endsWith("/git-receive-pack")) {
      refuse.count--;
      req.resume();
      res.writeHead(refuse.status).end("temporarily unavailable\n");
      return;
    }
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ""),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
        REMOTE_USER: user ?? "",
        REMOTE_ADDR: "127.0.0.1",
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    req.pipe(cgi.stdin);
    let buffer = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of buffer.subarray(0, end).toString("utf8").split("\r\n")) {
        const i = line.indexOf(":");
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(buffer.subarray(end + 4));
    });
    cgi.on("close", () => {
      if (!headersDone) res.writeHead(500).end("http-backend produced no response\n");
      else res.end();
    });
  };
  const { server, scheme } = createTestServer(handler, opts.tls);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://${host}:${port}`,
    attempts,
    refusePushes: (count, status = 503) => {
      refuse = { count, status };
    },
    redirectRepository: (from, to) => redirects.set(from, to),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
