// Throwaway PKI for a test control plane, generated with the openssl CLI.
//
// Layout follows controller-runtime's envtest: kube-apiserver finds apiserver.crt/.key in its
// --cert-dir by itself; one CA signs both the serving cert and client certs, and is the
// --client-ca-file; the service-account token signer is a separate RSA key pair.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { CLUSTER_DNS } from "./node-config.js";

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
  /** Present when generated for a real node (generateCerts with `node`). */
  node?: NodeCerts;
}

/** Identities of the real node's components, all signed by the cluster CA. */
export interface NodeCerts {
  /** kubelet's client cert: user system:node:<name> in group system:nodes (Node authorizer). */
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** kubelet's serving cert (logs, exec, port-forward), for the node's IP and name. */
  kubeletServingCert: string;
  kubeletServingKey: string;
  /** kube-apiserver's client cert towards kubelets. */
  apiserverKubeletClientCert: string;
  apiserverKubeletClientKey: string;
  /** kube-proxy's client cert: user system:kube-proxy (bound to system:node-proxier). */
  kubeProxyCert: string;
  kubeProxyKey: string;
  /** CoreDNS's client cert: user orchestrator:coredns (read-only RBAC for what DNS serves). */
  corednsCert: string;
  corednsKey: string;
}

export interface NodeIdentity {
  name: string;
  ip: string;
  /** First IP of the service range: the `kubernetes` Service, which pods dial. */
  kubernetesServiceIp: string;
}

/** Certificates only need to outlive a test run. */
const VALID_DAYS = "7";

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execa("openssl", args, { cwd });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; shortMessage?: string };
    if (e.code === "ENOENT")
      throw new Error("openssl is not on PATH; install it (e.g. apt-get install openssl) to run the test control plane");
    throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.shortMessage || String(err)}`);
  }
}

/** Signs a fresh EC P-256 key pair with the CA. `ext` is an openssl extension config. */
async function issue(dir: string, name: string, subject: string, ext: string): Promise<void> {
  const extFile = path.join(dir, `${name}.ext`);
  await fs.writeFile(extFile, ext);
  await openssl(
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ],
    dir,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-set_serial",
      `0x${randomSerial()}`,
      "-days",
      VALID_DAYS,
      "-sha256",
      "-extfile",
      extFile,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
  await fs.rm(path.join(dir, `${name}.csr`));
  await fs.rm(extFile);
}

function randomSerial(): string {
  // Leading "01" keeps the serial positive and non-zero.
  return "01" + randomBytes(15).toString("hex");
}

/**
 * A serving certificate for another server on the test network (a git or GitHub server the node's
 * pods reach), signed by the cluster CA in `dir`, so clients that trust the cluster CA trust it.
 * `sans`: IP addresses and DNS names.
 */
export async function issueServingCert(dir: string, name: string, sans: string[]): Promise<{ cert: string; key: string }> {
  const list = sans.map((a) => (/^[0-9.]+$|:/.test(a) ? `IP:${a}` : `DNS:${a}`)).join(",");
  await issue(
    dir,
    name,
    `/CN=${name}`,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${list}\n`,
  );
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/** Subject-alternative-name list for the serving cert. */
export function servingSANs(bindAddress: string, node?: NodeIdentity): string {
  const names = ["DNS:localhost", "IP:127.0.0.1"];
  const add = (a: string) => {
    const san = /^[0-9.]+$|:/.test(a) ? `IP:${a}` : `DNS:${a}`;
    if (!names.includes(san)) names.push(san);
  };
  if (bindAddress !== "127.0.0.1" && bindAddress !== "0.0.0.0") add(bindAddress);
  if (node) {
    // In-cluster clients dial the `kubernetes` Service by IP or name; the node dials its own IP.
    for (const a of [
      node.ip,
      node.kubernetesServiceIp,
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ])
      add(a);
  }
  return names.join(",");
}

const CLIENT_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";

/** The self-signed CA (ca.key, ca.crt) every other certificate is issued by. */
function issueCA(dir: string): Promise<void> {
  return openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      VALID_DAYS,
      "-sha256",
      "-subj",
      "/CN=orchestrator-test-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    dir,
  );
}

/** The files generateCerts wrote, by role. */
function certPaths(dir: string, withNode: boolean): ControlPlaneCerts {
  const p = (f: string) => path.join(dir, f);
  const node: NodeCerts | undefined = withNode
    ? {
        kubeletClientCert: p("kubelet-client.crt"),
        kubeletClientKey: p("kubelet-client.key"),
        kubeletServingCert: p("kubelet-serving.crt"),
        kubeletServingKey: p("kubelet-serving.key"),
        apiserverKubeletClientCert: p("apiserver-kubelet-client.crt"),
        apiserverKubeletClientKey: p("apiserver-kubelet-client.key"),
        kubeProxyCert: p("kube-proxy.crt"),
        kubeProxyKey: p("kube-proxy.key"),
        corednsCert: p("coredns.crt"),
        corednsKey: p("coredns.key"),
      }
    : undefined;
  return {
    node,
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

export async function generateCerts(dir: string, opts: { bindAddress?: string; node?: NodeIdentity } = {}): Promise<ControlPlaneCerts> {
  const bind = opts.bindAddress ?? "127.0.0.1";
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await issueCA(dir);
  await Promise.all([
    issue(
      dir,
      "apiserver",
      "/CN=kube-apiserver",
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${servingSANs(bind, opts.node)}\n`,
    ),
    issue(dir, "admin", "/O=system:masters/CN=admin", CLIENT_EXT),
    ...(opts.node ? issueNodeCerts(dir, opts.node) : []),
    (async () => {
      await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa-signer.key"], dir);
      await openssl(["pkey", "-in", "sa-signer.key", "-pubout", "-out", "sa-signer.pub"], dir);
    })(),
  ]);
  return certPaths(dir, opts.node !== undefined);
}

function issueNodeCerts(dir: string, node: NodeIdentity): Promise<void>[] {
  return [
    issue(dir, "kubelet-client", `/O=system:nodes/CN=system:node:${node.name}`, CLIENT_EXT),
    issue(
      dir,
      "kubelet-serving",
      `/CN=system:node:${node.name}`,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:${node.ip},DNS:${node.name}\n`,
    ),
    issue(dir, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", CLIENT_EXT),
    issue(dir, "kube-proxy", "/CN=system:kube-proxy", CLIENT_EXT),
    issue(dir, "coredns", `/CN=${CLUSTER_DNS.user}`, CLIENT_EXT),
  ];
}
