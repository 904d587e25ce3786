// Throwaway PKI for a test control plane, generated with the openssl CLI.
//
// Layout follows controller-runtime's envtest: kube-apiserver finds apiserver.crt/.key in its
// --cert-dir by itself; one CA signs both the serving cert and client certs, and is the
// --client-ca-file; the service-account token signer is a separate RSA key pair.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";

export interface ControlPlaneCerts {
  dir: string;
  caCert: string;
  caKey: string;
  /** kube-apiserver serving pair; named as kube-apiserver expects inside --cert-dir. */
  servingCert: string;
  servingKey: string;
  /** Client certificate for user "admin" in group "system:masters". */
  adminCert: string;
  adminKey: string;
  /** Service-account token signing key (private) and its public key. */
  saKey: string;
  saPub: string;
}

/** Certificates only need to outlive a test run. */
const VALID_DAYS = "7";

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execa("openssl", args, { cwd });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; shortMessage?: string };
    if (e.code === "ENOENT") throw new Error("openssl is not on PATH; install it (e.g. apt-get install openssl) to run the test control plane");
    throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.shortMessage || String(err)}`);
  }
}

/** Signs a fresh EC P-256 key pair with the CA. `ext` is an openssl extension config. */
async function issue(dir: string, name: string, subject: string, ext: string): Promise<void> {
  const extFile = path.join(dir, `${name}.ext`);
  await fs.writeFile(extFile, ext);
  await openssl(
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject],
    dir,
  );
  await openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", `0x${randomSerial()}`, "-days", VALID_DAYS, "-sha256", "-extfile", extFile, "-out", `${name}.crt`],
    dir,
  );
  await fs.rm(path.join(dir, `${name}.csr`));
  await fs.rm(extFile);
}

function randomSerial(): string {
  // Leading "01" keeps the serial positive and non-zero.
  return "01" + randomBytes(15).toString("hex");
}

/** Subject-alternative-name list for the serving cert. */
export function servingSANs(bindAddress: string): string {
  const names = ["DNS:localhost", "IP:127.0.0.1"];
  if (bindAddress !== "127.0.0.1") names.push(/^[0-9.]+$|:/.test(bindAddress) ? `IP:${bindAddress}` : `DNS:${bindAddress}`);
  return names.join(",");
}

export async function generateCerts(dir: string, opts: { bindAddress?: string } = {}): Promise<ControlPlaneCerts> {
  const bind = opts.bindAddress ?? "127.0.0.1";
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await openssl(
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "ca.key", "-out", "ca.crt", "-days", VALID_DAYS, "-sha256",
      "-subj", "/CN=orchestrator-test-ca",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    dir,
  );
  await Promise.all([
    issue(
      dir,
      "apiserver",
      "/CN=kube-apiserver",
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${servingSANs(bind)}\n`,
    ),
    issue(dir, "admin", "/O=system:masters/CN=admin", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"),
    (async () => {
      await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa-signer.key"], dir);
      await openssl(["pkey", "-in", "sa-signer.key", "-pubout", "-out", "sa-signer.pub"], dir);
    })(),
  ]);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    servingCert: p("apiserver.crt"),
    servingKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    saKey: p("sa-signer.key"),
    saPub: p("sa-signer.pub"),
  };
}
