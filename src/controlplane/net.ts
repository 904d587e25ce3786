// Small networking helpers: free loopback ports and TLS GETs for readiness polling.
import fs from "node:fs";
import https from "node:https";
import http from "node:http";
import net from "node:net";

/**
 * Picks `count` distinct free ports on 127.0.0.1. All listeners are held open until every
 * port is known, so the same port cannot be handed out twice; a race with other processes
 * between close and the child's bind remains possible but is rare.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      });
      const addr = srv.address();
      if (!addr || typeof addr === "string") throw new Error("could not read a free port");
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
  /** Only for polling components with self-signed serving certs (kcm, scheduler). */
  insecure?: boolean;
}

export function loadTlsClient(files: { ca: string; cert: string; key: string }): TlsClient {
  return { ca: fs.readFileSync(files.ca, "utf8"), cert: fs.readFileSync(files.cert, "utf8"), key: fs.readFileSync(files.key, "utf8") };
}

export interface HttpResult {
  status: number;
  body: string;
}

/** GET over http(s); resolves for any HTTP status, rejects on connection errors/timeouts. */
export function httpGet(url: string, tls: TlsClient = {}, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const onResponse = (res: http.IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    };
    const req =
      u.protocol === "https:"
        ? https.get(
            u,
            { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: timeoutMs, agent: false },
            onResponse,
          )
        : http.get(u, { timeout: timeoutMs, agent: false }, onResponse);
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms: GET ${url}`)));
    req.on("error", reject);
  });
}

/** A request with a body over https (admin TLS); resolves for any HTTP status. */
export function httpSend(
  method: string,
  url: string,
  body: string,
  contentType: string,
  tls: TlsClient = {},
  timeoutMs = 15000,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = https.request(
      u,
      {
        method,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        timeout: timeoutMs,
        agent: false,
        headers: { "content-type": contentType, "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms: ${method} ${url}`)));
    req.on("error", reject);
    req.end(body);
  });
}
