/**
 * Where the Kubernetes API server is and how to talk to it: from a kubeconfig file's text (`parseKubeconfig`, pure) or
 * from the in-cluster environment (`inClusterEndpoint`, as client-go's `rest.InClusterConfig`). Files named here (CA,
 * client certificate and key, token) are not read: `KubeApiClient` reads them, the token again and again.
 *
 * kubeconfig keys read (client-go `tools/clientcmd/api/v1/types.go`): `current-context`; the context's `cluster` and
 * `user`; cluster `server` (https only), `certificate-authority` (a path, relative to the kubeconfig's directory) or
 * `certificate-authority-data` (base64 PEM), `insecure-skip-tls-verify`, `tls-server-name`; user `token`, `tokenFile`,
 * `client-certificate`(`-data`) and `client-key`(`-data`). Exec plugins, auth providers, basic auth and proxies are
 * refused with a ConfigError rather than ignored. Every error is one line.
 */
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { isRecord } from '../guards.js';

export interface KubeEndpoint {
  /** `https://host:port`, possibly with a path prefix. */
  server: URL;
  /** Trusted CA certificates (PEM), from `certificate-authority-data`. */
  caPem?: string;
  /** A file of trusted CA certificates (PEM), absolute. */
  caFile?: string;
  /** Skip verification of the server's certificate (`insecure-skip-tls-verify`). */
  insecure: boolean;
  /** The name to verify the server's certificate against, also sent as SNI (`tls-server-name`). */
  serverName?: string;
  /** The bearer token: a file re-read as it rotates, or a fixed value. */
  token?: { file: string } | { value: string };
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Client certificate and key files (PEM), absolute. */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Where this came from, for messages: the kubeconfig path, or `in-cluster`. */
  source: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The in-cluster endpoint: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's token and CA under `dir`. */
export function inClusterEndpoint(env: Readonly<Record<string, string | undefined>>, dir = SERVICE_ACCOUNT_DIR): KubeEndpoint {
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '';
  if (host === '' || port === '') {
    throw new ConfigError('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (set --kubeconfig)');
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new ConfigError(`in-cluster: KUBERNETES_SERVICE_PORT ${JSON.stringify(port)} is not a port number`);
  }
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let server: URL;
  try {
    server = new URL(`https://${hostPart}:${port}`);
  } catch {
    throw new ConfigError(`in-cluster: KUBERNETES_SERVICE_HOST ${JSON.stringify(host)} is not a host name or address`);
  }
  return { server, insecure: false, token: { file: path.join(dir, 'token') }, caFile: path.join(dir, 'ca.crt'), source: 'in-cluster' };
}

// ---------------------------------------------------------------------------------------------------------------

const UNSUPPORTED_USER_KEYS: Readonly<Record<string, string>> = {
  exec: 'exec credential plugins are not supported',
  'auth-provider': 'auth providers are not supported',
  username: 'basic authentication is not supported',
  password: 'basic authentication is not supported',
  as: 'impersonation is not supported',
  'as-user-extra': 'impersonation is not supported',
  'as-groups': 'impersonation is not supported',
  'as-uid': 'impersonation is not supported',
};

class Reader {
  constructor(
    readonly source: string,
    readonly baseDir: string,
  ) {}

  fail(msg: string): never {
    throw new ConfigError(`kubeconfig ${this.source}: ${msg}`);
  }

  /** The `name`d entry of the list `key` (`clusters`, `contexts`, `users`): its `inner` map. */
  named(doc: Record<string, unknown>, key: string, inner: string, name: string): Record<string, unknown> {
    const list = doc[key];
    if (list !== undefined && list !== null && !Array.isArray(list)) this.fail(`"${key}" is not a list`);
    const items: readonly unknown[] = Array.isArray(list) ? list : [];
    const entry = items.find((e) => isRecord(e) && e['name'] === name);
    if (!isRecord(entry)) this.fail(`no ${inner} named ${JSON.stringify(name)} in "${key}"`);
    const v = entry[inner];
    if (v === undefined || v === null) return {};
    if (!isRecord(v)) this.fail(`${inner} ${JSON.stringify(name)} is not a map`);
    return v;
  }

  str(m: Record<string, unknown>, key: string, where: string): string | undefined {
    const v = m[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') this.fail(`${where}: "${key}" is not a string`);
    return v;
  }

  bool(m: Record<string, unknown>, key: string, where: string): boolean {
    const v = m[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') this.fail(`${where}: "${key}" is not true or false`);
    return v;
  }

  file(m: Record<string, unknown>, key: string, where: string): string | undefined {
    const p = this.str(m, key, where);
    return p === undefined ? undefined : path.resolve(this.baseDir, p);
  }

  /** `<key>-data`: base64 of a PEM block whose label contains `label` (CERTIFICATE, PRIVATE KEY). */
  pemData(m: Record<string, unknown>, key: string, label: string, where: string): string | undefined {
    const b64 = this.str(m, key, where);
    if (b64 === undefined) return undefined;
    const clean = b64.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) this.fail(`${where}: "${key}" is not base64`);
    const pem = Buffer.from(clean, 'base64').toString('utf8');
    if (!new RegExp(`-----BEGIN [A-Z0-9 ]*${label}-----`).test(pem)) this.fail(`${where}: "${key}" does not hold a PEM ${label}`);
    return pem;
  }
}

/**
 * The endpoint a kubeconfig's current context names. `baseDir` is the kubeconfig's directory (relative file paths are
 * resolved against it); `source` names the file in messages.
 */
export function parseKubeconfig(text: string, baseDir: string, source: string): KubeEndpoint {
  const r: Reader = new Reader(source, baseDir);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    r.fail(`invalid YAML: ${msg.split('\n', 1)[0] ?? ''}`);
  }
  if (!isRecord(doc)) r.fail('not a YAML map');
  const contextName = r.str(doc, 'current-context', 'top level');
  if (contextName === undefined) r.fail('no current-context');

  const context = r.named(doc, 'contexts', 'context', contextName);
  const cWhere = `context ${JSON.stringify(contextName)}`;
  const clusterName = r.str(context, 'cluster', cWhere);
  if (clusterName === undefined) r.fail(`${cWhere} names no cluster`);
  const userName = r.str(context, 'user', cWhere);

  const cluster = r.named(doc, 'clusters', 'cluster', clusterName);
  const where = `cluster ${JSON.stringify(clusterName)}`;
  const serverText = r.str(cluster, 'server', where);
  if (serverText === undefined) r.fail(`${where} has no server`);
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    r.fail(`${where}: server ${JSON.stringify(serverText)} is not a URL`);
  }
  if (server.protocol !== 'https:') r.fail(`${where}: server ${JSON.stringify(serverText)} is not an https URL`);
  if (server.username !== '' || server.password !== '') r.fail(`${where}: server URL must not carry credentials`);
  if (cluster['proxy-url'] !== undefined) r.fail(`${where}: proxy-url is not supported`);

  const ep: KubeEndpoint = { server, insecure: r.bool(cluster, 'insecure-skip-tls-verify', where), source };
  const caFile = r.file(cluster, 'certificate-authority', where);
  const caPem = r.pemData(cluster, 'certificate-authority-data', 'CERTIFICATE', where);
  if (caFile !== undefined && caPem !== undefined) r.fail(`${where}: both certificate-authority and certificate-authority-data are set`);
  if (ep.insecure && (caFile !== undefined || caPem !== undefined)) {
    r.fail(`${where}: insecure-skip-tls-verify cannot be combined with a certificate authority`);
  }
  if (caFile !== undefined) ep.caFile = caFile;
  if (caPem !== undefined) ep.caPem = caPem;
  const serverName = r.str(cluster, 'tls-server-name', where);
  if (serverName !== undefined) ep.serverName = serverName;

  if (userName !== undefined) {
    const user = r.named(doc, 'users', 'user', userName);
    const uWhere = `user ${JSON.stringify(userName)}`;
    for (const [key, why] of Object.entries(UNSUPPORTED_USER_KEYS)) {
      if (user[key] !== undefined && user[key] !== null && user[key] !== '') r.fail(`${uWhere}: ${why} (${key})`);
    }
    const tokenFile = r.file(user, 'tokenFile', uWhere);
    const token = r.str(user, 'token', uWhere);
    // As client-go: the file, re-read as it rotates, takes precedence over a fixed token.
    if (tokenFile !== undefined) ep.token = { file: tokenFile };
    else if (token !== undefined) ep.token = { value: token.trim() };

    const certFile = r.file(user, 'client-certificate', uWhere);
    const certPem = r.pemData(user, 'client-certificate-data', 'CERTIFICATE', uWhere);
    const keyFile = r.file(user, 'client-key', uWhere);
    const keyPem = r.pemData(user, 'client-key-data', 'PRIVATE KEY', uWhere);
    if (certFile !== undefined && certPem !== undefined) r.fail(`${uWhere}: both client-certificate and client-certificate-data are set`);
    if (keyFile !== undefined && keyPem !== undefined) r.fail(`${uWhere}: both client-key and client-key-data are set`);
    const hasCert = certFile !== undefined || certPem !== undefined;
    const hasKey = keyFile !== undefined || keyPem !== undefined;
    if (hasCert !== hasKey) r.fail(`${uWhere}: a client certificate needs both the certificate and its key`);
    if (certFile !== undefined) ep.clientCertFile = certFile;
    if (certPem !== undefined) ep.clientCertPem = certPem;
    if (keyFile !== undefined) ep.clientKeyFile = keyFile;
    if (keyPem !== undefined) ep.clientKeyPem = keyPem;
  }
  return ep;
}
