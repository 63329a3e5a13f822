/**
 * From a parsed `tls_server_config` (web-config.ts) to Node's TLS options, with the file reads at this edge:
 * - loadTlsMaterial reads the certificate, key and client CA (files or inline) and checks them the way a handshake
 *   would use them: PEM that parses, a key that matches the certificate, and a secure context Node accepts with the
 *   configured versions, ciphers and curves;
 * - secureContextOptions are what `server.setSecureContext` takes on a rotation, serverTlsOptions what
 *   `https.createServer` takes once (Node fixes requestCert/rejectUnauthorized at creation);
 * - clientCertificateProblem is what Go's crypto/tls enforces during the handshake and Node does not, for the client
 *   auth policies between "ask" and "require a verified certificate", and exporter-toolkit's `client_allowed_sans`.
 *   The server calls it on 'secureConnection' and closes the socket when it says why.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type https from 'node:https';
import tls from 'node:tls';
import { ConfigError, errorMessage } from '../errors.js';
import { errnoCode } from '../guards.js';
import type { TlsServerConfig } from './web-config.js';

/** What loadTlsMaterial read, checked. */
export interface TlsMaterial {
  /** The certificate chain (leaf first), PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  /** The client CA bundle, PEM; absent when none is configured. */
  readonly caPem?: string;
  /** Of the leaf, as Node writes it (`AB:CD:…`). */
  readonly fingerprint256: string;
  /** When the leaf expires. */
  readonly notAfter: Date;
  /** The leaf's subject, for logs. */
  readonly subject: string;
  /** The files read (absolute paths as configured): what a reloader watches. Empty when everything is inline. */
  readonly files: readonly string[];
}

/** How long a client has to finish its TLS handshake. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function fail(prefix: string, what: string): never {
  throw new ConfigError(`${prefix}${what}`);
}

/** The most a certificate, key, CA bundle or web config file may hold. */
export const MAX_FILE_BYTES = 1 << 20;

/**
 * The text of a regular file of at most MAX_FILE_BYTES. Throws an Error whose message is the reason: an errno code
 * (`ENOENT`, `EACCES`), `EISDIR: a directory`, `not a regular file` (opened without blocking, so a FIFO cannot hang
 * the reader) or `larger than 1048576 bytes`.
 */
export function readSmallFile(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new Error(errnoCode(err) ?? errorMessage(err), { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new Error('EISDIR: a directory');
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    try {
      return fs.readFileSync(fd, 'utf8');
    } catch (err) {
      throw new Error(errnoCode(err) ?? errorMessage(err), { cause: err });
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The text of `file` (named by its key in messages), or a ConfigError naming the file and why. */
function readPem(prefix: string, key: string, file: string): string {
  try {
    return readSmallFile(file);
  } catch (err) {
    return fail(prefix, `tls_server_config.${key} ${file}: cannot read it (${errorMessage(err)})`);
  }
}

/** The PEM certificates of a bundle, each parsed; a ConfigError when there is none or one does not parse. */
function certificates(prefix: string, what: string, pem: string): crypto.X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) fail(prefix, `${what}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it`);
  return blocks.map((block, i) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (err) {
      return fail(prefix, `${what}: certificate ${i + 1} does not parse (${errorMessage(err)})`);
    }
  });
}

/**
 * Reads and checks the certificate, key and client CA of `cfg`. Throws ConfigError (one line, prefixed with
 * `web config <source>: ` when `source` is given) naming the key, the file and the problem.
 */
export function loadTlsMaterial(cfg: TlsServerConfig, source?: string): TlsMaterial {
  const prefix = source === undefined ? '' : `web config ${source}: `;
  const files: string[] = [];
  const load = (fileKey: string, file: string | undefined, inlineKey: string, inline: string | undefined): [string, string] | undefined => {
    if (file !== undefined) {
      files.push(file);
      return [readPem(prefix, fileKey, file), `tls_server_config.${fileKey} ${file}`];
    }
    if (inline !== undefined) return [inline, `tls_server_config.${inlineKey}`];
    return undefined;
  };
  const cert = load('cert_file', cfg.certFile, 'cert', cfg.certPem);
  const key = load('key_file', cfg.keyFile, 'key', cfg.keyPem);
  const ca = load('client_ca_file', cfg.clientCaFile, 'client_ca', cfg.clientCaPem);
  if (cert === undefined) return fail(prefix, 'tls_server_config: missing one of cert or cert_file');
  if (key === undefined) return fail(prefix, 'tls_server_config: missing one of key or key_file');

  const [leaf] = certificates(prefix, cert[1], cert[0]);
  if (leaf === undefined) return fail(prefix, `${cert[1]}: no certificate`);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key[0]);
  } catch (err) {
    return fail(prefix, `${key[1]}: not a PEM private key, or an encrypted one (${errorMessage(err)})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) return fail(prefix, `${key[1]} does not match the certificate of ${cert[1]} (${leaf.subject.replace(/\n/g, ', ')})`);
  if (ca !== undefined) certificates(prefix, ca[1], ca[0]);

  const material: TlsMaterial = {
    certPem: cert[0],
    keyPem: key[0],
    ...(ca === undefined ? {} : { caPem: ca[0] }),
    fingerprint256: leaf.fingerprint256,
    notAfter: new Date(leaf.validTo),
    subject: leaf.subject.replace(/\n/g, ', '),
    files,
  };
  try {
    tls.createSecureContext(secureContextOptions(cfg, material));
  } catch (err) {
    return fail(prefix, `tls_server_config: Node refuses these TLS settings (${errorMessage(err)})`);
  }
  return material;
}

/** What `tls.createSecureContext` and `server.setSecureContext` take: certificate, key, client CA, versions, ciphers, curves. */
export function secureContextOptions(cfg: TlsServerConfig, material: TlsMaterial): tls.SecureContextOptions {
  const opts: tls.SecureContextOptions = { key: material.keyPem, cert: material.certPem, minVersion: cfg.minVersion, maxVersion: cfg.maxVersion };
  if (material.caPem !== undefined) opts.ca = material.caPem;
  if (cfg.ciphers !== undefined) opts.ciphers = cfg.ciphers;
  if (cfg.ecdhCurve !== undefined) opts.ecdhCurve = cfg.ecdhCurve;
  return opts;
}

/**
 * The options of `https.createServer`: secureContextOptions, the client-certificate request of `client_auth_type`
 * (NoClientCert: none; RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven: asked, not enforced by
 * Node, see clientCertificateProblem; RequireAndVerifyClientCert: asked and verified by Node) and a handshake timeout.
 */
export function serverTlsOptions(cfg: TlsServerConfig, material: TlsMaterial): https.ServerOptions {
  const ask = cfg.clientAuthType !== 'NoClientCert';
  return {
    ...secureContextOptions(cfg, material),
    requestCert: ask,
    rejectUnauthorized: cfg.clientAuthType === 'RequireAndVerifyClientCert',
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  };
}

/** The client's certificate, or undefined when it sent none (Node then answers `{}`). */
function peerCertificate(socket: tls.TLSSocket): tls.PeerCertificate | undefined {
  const cert = socket.getPeerCertificate();
  return Object.keys(cert).length === 0 ? undefined : cert;
}

/**
 * The SAN values of a certificate as Go's exporter-toolkit compares them: DNS names, e-mail addresses, IPs (in Go's
 * text: IPv6 compressed) and URIs, from Node's `subjectaltname` (`DNS:a, IP Address:1.2.3.4, URI:spiffe://x,
 * email:a@b`, values with separators written as JSON strings).
 */
export function subjectAltNames(subjectaltname: string | undefined): string[] {
  const out: string[] = [];
  if (subjectaltname === undefined) return out;
  let rest = subjectaltname;
  while (rest.length > 0) {
    const m = /^([A-Za-z ]+):/.exec(rest);
    if (m === null) break;
    const kind = m[1] ?? '';
    rest = rest.slice(m[0].length);
    let value: string;
    if (rest.startsWith('"')) {
      const q = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      if (q === null) break;
      try {
        const parsed: unknown = JSON.parse(q[0]);
        value = typeof parsed === 'string' ? parsed : q[0];
      } catch {
        value = q[0];
      }
      rest = rest.slice(q[0].length);
    } else {
      const end = rest.indexOf(', ');
      value = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? '' : rest.slice(end);
    }
    if (rest.startsWith(', ')) rest = rest.slice(2);
    if (kind === 'DNS' || kind === 'email' || kind === 'URI') out.push(value);
    else if (kind === 'IP Address') out.push(goIp(value));
  }
  return out;
}

/** An IP as Go's `net.IP.String()` writes it: IPv6 compressed and lowercase, IPv4 as is. */
function goIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

/**
 * Why this connection must be closed under `cfg`'s client-certificate policy, or undefined when it may go on. Node
 * enforces only RequireAndVerifyClientCert (rejectUnauthorized); Go also enforces, during the handshake:
 * RequireAnyClientCert (a certificate, any), VerifyClientCertIfGiven (a certificate, if sent, that verifies against
 * the client CA) and exporter-toolkit's client_allowed_sans (one SAN equal to an allowed entry).
 */
export function clientCertificateProblem(cfg: TlsServerConfig, socket: tls.TLSSocket): string | undefined {
  if (cfg.clientAuthType === 'NoClientCert') return undefined;
  const cert = peerCertificate(socket);
  switch (cfg.clientAuthType) {
    case 'RequireAnyClientCert':
      if (cert === undefined) return 'no client certificate (client_auth_type RequireAnyClientCert)';
      break;
    case 'VerifyClientCertIfGiven':
      if (cert !== undefined && !socket.authorized) return `client certificate not verified: ${String(socket.authorizationError)}`;
      break;
    case 'RequireAndVerifyClientCert':
      if (cert === undefined) return 'no client certificate (client_auth_type RequireAndVerifyClientCert)';
      if (!socket.authorized) return `client certificate not verified: ${String(socket.authorizationError)}`;
      break;
    case 'RequestClientCert':
      break;
  }
  if (cfg.clientAllowedSans.length > 0) {
    if (cert === undefined) return 'no client certificate to match against client_allowed_sans';
    const sans = subjectAltNames(cert.subjectaltname);
    if (!sans.some((s) => cfg.clientAllowedSans.includes(s))) {
      return `no SAN of the client certificate is in client_allowed_sans (it has ${sans.length === 0 ? 'none' : sans.join(', ')})`;
    }
  }
  return undefined;
}

/**
 * The client's certificate when it sent one and it verified against the client CA (`socket.authorized`), for the
 * x509 authenticator; undefined otherwise. Node verifies against its bundled root CAs when no client CA is
 * configured, so use it only when `client_ca_file`/`client_ca` is set.
 */
export function verifiedClientCertificate(socket: tls.TLSSocket): tls.PeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  return peerCertificate(socket);
}
