/**
 * TLS, the web config and Kubernetes authentication/authorization, put together from the flags: what `buildApp` needs
 * (the guard, the headers, the HTTPS options) and what is wired on its server once it exists (certificate rotation in
 * place, the client-certificate checks Node leaves to the application, handshake counts).
 * Every decision that can be wrong is made here, at startup, as one readable line (ConfigError); after that a bad
 * file on disk never stops the exporter: the configuration in force stays, and the log says why.
 */
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ConfigError, errorMessage } from '../errors.js';
import type { Fields, Logger } from '../log.js';
import type { SecurityStats } from '../model/scrape.js';
import { KubeApiClient } from '../kube/api-client.js';
import { inClusterEndpoint, parseKubeconfig, type KubeEndpoint } from '../kube/kubeconfig.js';
import { TokenAuthenticator, userFromCertificate } from './auth/authenticator.js';
import { SarAuthorizer } from './auth/authorizer.js';
import type { AppSecurity } from './app.js';
import { BasicAuthVerifier } from './basic-auth.js';
import { Guard, type GuardParts, type GuardRequest } from './guard.js';
import { TokenBucket } from './rate-limit.js';
import { selfSignedCertificate } from './self-signed.js';
import { clientCertificateProblem, readSmallFile, secureContextOptions, serverTlsOptions, verifiedClientCertificate } from './tls-options.js';
import type { TlsServerConfig, WebConfig } from './web-config.js';
import { WebConfigSource } from './web-config-source.js';

/** The security flags (config.ts fills it). */
export interface SecurityOptions {
  /** --web.config.file: exporter-toolkit's format; empty: none. */
  webConfigFile: string;
  /** --tls: auto (HTTPS when the web config has tls_server_config or --authentication=kubernetes), on, off. */
  tls: 'auto' | 'on' | 'off';
  authentication: 'none' | 'kubernetes';
  authorization: 'none' | 'kubernetes';
  tokenAudiences: string[];
  /** --node-name; empty: the host name. */
  nodeName: string;
  /** --kubeconfig; empty: in-cluster (the pod's ServiceAccount). */
  kubeconfig: string;
  kubeApiTimeoutMs: number;
  authnCacheTtlMs: number;
  authzAllowedTtlMs: number;
  authzDeniedTtlMs: number;
}

export interface SecuritySetup {
  /** For buildApp; undefined when nothing is on (plain HTTP, open: the default). */
  app: AppSecurity | undefined;
  /** Wires rotation and connection checks on the server buildApp made. */
  attach(server: http.Server): void;
  /** What is on, for the startup log. */
  summary: Fields;
  close(): void;
}

/** Names a self-signed certificate is made for: the host name, localhost, and every address of this machine. */
function selfSignedNames(): { commonName: string; dnsNames: string[]; ipAddresses: string[] } {
  const host = os.hostname();
  const ips = new Set<string>(['127.0.0.1', '::1']);
  for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) ips.add(a.address.replace(/%.*$/, ''));
  return { commonName: host, dnsNames: [...new Set([host, 'localhost'])], ipAddresses: [...ips] };
}

function kubeEndpoint(opts: SecurityOptions, env: Readonly<Record<string, string | undefined>>): KubeEndpoint {
  if (opts.kubeconfig === '') return inClusterEndpoint(env);
  let text: string;
  try {
    text = readSmallFile(opts.kubeconfig);
  } catch (err) {
    throw new ConfigError(`--kubeconfig ${opts.kubeconfig}: cannot read it: ${errorMessage(err)}`);
  }
  return parseKubeconfig(text, path.dirname(path.resolve(opts.kubeconfig)), opts.kubeconfig);
}

/** True when the web config asks for client certificates and names a CA to verify them against. */
function verifiesClientCertificates(t: TlsServerConfig | undefined): boolean {
  return (
    t !== undefined &&
    t.clientAuthType !== 'NoClientCert' &&
    t.clientAuthType !== 'RequestClientCert' &&
    (t.clientCaFile !== undefined || t.clientCaPem !== undefined)
  );
}

export function setupSecurity(
  opts: SecurityOptions,
  log: Logger,
  stats: SecurityStats,
  env: Readonly<Record<string, string | undefined>> = process.env,
): SecuritySetup {
  const source = opts.webConfigFile === '' ? undefined : WebConfigSource.load({ path: opts.webConfigFile, log });
  const web: WebConfig | undefined = source?.current.config;
  const kube = opts.authentication === 'kubernetes';
  if (opts.tls === 'off' && web?.tls !== undefined) {
    throw new ConfigError(`--tls=off, but the web config ${opts.webConfigFile} has tls_server_config: remove one of them`);
  }
  const tlsOn = opts.tls === 'on' || (opts.tls === 'auto' && (web?.tls !== undefined || kube));
  const summary: Fields = { tls: tlsOn ? 'on' : 'off', authentication: opts.authentication, authorization: opts.authorization };

  let httpsOptions: AppSecurity['https'];
  const material = source?.current.material;
  if (tlsOn && web?.tls !== undefined && material !== undefined) {
    httpsOptions = serverTlsOptions(web.tls, material);
    stats.certificateNotAfter = material.notAfter.getTime() / 1000;
    summary['certificate'] = material.fingerprint256;
    summary['client_auth'] = web.tls.clientAuthType;
  } else if (tlsOn) {
    const names = selfSignedNames();
    const self = selfSignedCertificate(names);
    httpsOptions = { key: self.keyPem, cert: self.certPem, minVersion: 'TLSv1.2', handshakeTimeout: 10_000 };
    stats.certificateNotAfter = self.notAfter.getTime() / 1000;
    summary['certificate'] = `self-signed for ${[...names.dnsNames, ...names.ipAddresses].join(',')}, sha256 ${self.fingerprint256}`;
  }
  if (kube && !tlsOn) log.warn('--authentication=kubernetes over plain HTTP (--tls=off): bearer tokens cross the network in clear text');
  if (web !== undefined && web.basicAuthUsers.size > 0 && !tlsOn) {
    log.warn('basic auth over plain HTTP: passwords cross the network in clear text (add tls_server_config to the web config)');
  }

  const basic = web === undefined ? undefined : new BasicAuthVerifier(web.basicAuthUsers);
  let bucket = web?.rateLimit === undefined ? undefined : new TokenBucket(web.rateLimit);
  let client: KubeApiClient | undefined;
  const parts: GuardParts = {
    ...(basic === undefined ? {} : { basic }),
    rateLimit: () => bucket === undefined || bucket.take(),
  };
  // The guard counts reviews: the authenticator and authorizer, made before it, report to it once requests come.
  if (kube) {
    const endpoint = kubeEndpoint(opts, env);
    client = new KubeApiClient(endpoint, { log });
    const nodeName = opts.nodeName === '' ? os.hostname().toLowerCase() : opts.nodeName;
    summary['api_server'] = client.describe();
    parts.token = new TokenAuthenticator({
      client,
      audiences: opts.tokenAudiences,
      ttlMs: opts.authnCacheTtlMs,
      timeoutMs: opts.kubeApiTimeoutMs,
      onReview: (r) => guard.review('tokenreview', r),
    });
    if (verifiesClientCertificates(web?.tls)) {
      parts.certificate = (req: GuardRequest) => {
        const cert = req.socket instanceof tls.TLSSocket ? verifiedClientCertificate(req.socket) : undefined;
        return cert === undefined ? undefined : userFromCertificate(cert);
      };
      summary['client_certificates'] = 'verified against client_ca_file: CN is the user, O the groups';
    }
    if (opts.authorization === 'kubernetes') {
      parts.authorizer = new SarAuthorizer({
        client,
        nodeName,
        allowedTtlMs: opts.authzAllowedTtlMs,
        deniedTtlMs: opts.authzDeniedTtlMs,
        timeoutMs: opts.kubeApiTimeoutMs,
        onReview: (r) => guard.review('subjectaccessreview', r),
      });
      summary['node'] = nodeName;
    }
  }
  const guard = new Guard(parts, stats, log);
  if (basic !== undefined && basic.users > 0) summary['basic_auth_users'] = basic.users;

  // With a web config the guard is always in place: users, headers and a rate limit added to the file later apply live.
  const anything = tlsOn || guard.authenticating || source !== undefined;
  const app: AppSecurity | undefined = anything
    ? { guard, headers: () => source?.current.config.headers ?? {}, ...(httpsOptions === undefined ? {} : { https: httpsOptions }) }
    : undefined;

  const attach = (server: http.Server): void => {
    source?.onFailure(() => stats.reloads.failure++);
    source?.onChange(({ config }) => {
      stats.reloads.success++;
      basic?.update(config.basicAuthUsers);
      bucket = config.rateLimit === undefined ? undefined : new TokenBucket(config.rateLimit);
    });
    if (!(server instanceof tls.Server)) return;
    // Before the HTTP server's own listener, so a refused connection never reaches it.
    server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
      const t = source?.current.config.tls;
      const problem = t === undefined ? undefined : clientCertificateProblem(t, socket);
      if (problem !== undefined) {
        stats.tlsRejected.client_certificate++;
        log.debug('client certificate refused', { reason: problem, remote: socket.remoteAddress });
        socket.destroy();
      }
    });
    // Failed handshakes (a TCP probe, an old TLS version, an untrusted certificate) are routine: debug, and counted.
    server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      stats.tlsRejected.handshake++;
      log.debug('TLS handshake failed', { error: err.message, remote: socket.remoteAddress });
    });
    source?.onChange(({ config, material: m }) => {
      if (config.tls !== undefined && m !== undefined) {
        server.setSecureContext(secureContextOptions(config.tls, m));
        stats.certificateNotAfter = m.notAfter.getTime() / 1000;
        log.info('serving certificate reloaded', { certificate: m.fingerprint256, not_after: m.notAfter.toISOString() });
      }
    });
  };
  source?.start();

  return {
    app,
    attach,
    summary,
    close() {
      source?.close();
      client?.close();
    },
  };
}
