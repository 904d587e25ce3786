// Test servers speak HTTPS when given a certificate (pods on the real node may send credentials
// only to an https:// GitHub host), plain HTTP otherwise.
import fs from "node:fs";
import http from "node:http";
import https from "node:https";

/** PEM files of a serving certificate and its key (e.g. from issueServingCert). */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** An HTTP server, or an HTTPS one with `tls`, and the URL scheme clients use for it. */
export function createTestServer(handler: http.RequestListener, tls?: TlsFiles): { server: http.Server; scheme: "http" | "https" } {
  if (!tls) return { server: http.createServer(handler), scheme: "http" };
  const server = https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) }, handler);
  return { server, scheme: "https" };
}
