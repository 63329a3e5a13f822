import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { ConfigError } from '../../src/errors.js';
import {
  HANDSHAKE_TIMEOUT_MS,
  clientCertificateProblem,
  MAX_FILE_BYTES,
  loadTlsMaterial,
  readSmallFile,
  secureContextOptions,
  serverTlsOptions,
  subjectAltNames,
  verifiedClientCertificate,
  type TlsMaterial,
} from '../../src/http/tls-options.js';
import { parseWebConfig, type TlsServerConfig } from '../../src/http/web-config.js';
import { issue, makeCa, serverCert } from '../support/pki.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-tls-options-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const caA = makeCa(path.join(dir, 'a'), 'ca-a');
const caB = makeCa(path.join(dir, 'b'), 'ca-b');
const server = serverCert(caA, 'server');
const rsaServer = issue(caA, 'server-rsa', { cn: 'localhost', sans: ['DNS:localhost', 'IP:127.0.0.1'], keyType: 'rsa' });
const clientA = issue(caA, 'client-a', {
  cn: 'prometheus',
  client: true,
  sans: ['DNS:prometheus.monitoring.svc', 'URI:spiffe://cluster.local/ns/monitoring/sa/prometheus', 'IP:::1', 'email:ops@example.com'],
});
const clientAPlain = issue(caA, 'client-a-plain', { cn: 'someone', client: true, sans: ['DNS:someone.example'] });
const clientB = issue(caB, 'client-b', { cn: 'intruder', client: true, sans: ['DNS:prometheus.monitoring.svc'] });

/** A tls_server_config from YAML lines (indented by two), with the server certificate of CA A. */
function tlsConfig(extra = '', pair = server): TlsServerConfig {
  const text = `tls_server_config:\n  cert_file: ${pair.cert}\n  key_file: ${pair.key}\n${extra}`;
  const tlsCfg = parseWebConfig(text, dir, 'test.yml').tls;
  if (tlsCfg === undefined) throw new Error('no TLS in the test config');
  return tlsCfg;
}

function loadError(cfg: TlsServerConfig, source?: string): string {
  try {
    loadTlsMaterial(cfg, source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message;
  }
  return 'no error';
}

t.test('loadTlsMaterial reads and checks the pair and the client CA', async (t) => {
  const cfg = tlsConfig(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${caA.cert}\n`);
  const m = loadTlsMaterial(cfg);
  const leaf = new crypto.X509Certificate(server.certPem);
  t.equal(m.fingerprint256, leaf.fingerprint256);
  t.equal(m.notAfter.getTime(), new Date(leaf.validTo).getTime());
  t.ok(m.notAfter.getTime() > Date.now() + 20 * 86_400_000, 'about 30 days ahead');
  t.equal(m.subject, 'CN=localhost');
  t.same(m.files, [server.cert, server.key, caA.cert]);
  t.equal(m.certPem, server.certPem);
  t.equal(m.keyPem, server.keyPem);
  t.equal(m.caPem, caA.certPem);

  const inline = loadTlsMaterial({
    certPem: rsaServer.certPem,
    keyPem: rsaServer.keyPem,
    clientAuthType: 'NoClientCert',
    clientAllowedSans: [],
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
  });
  t.same(inline.files, [], 'inline PEM: no file to watch');
  t.equal(inline.caPem, undefined);

  const chain = path.join(dir, 'chain.crt');
  fs.writeFileSync(chain, server.certPem + caA.certPem);
  t.equal(loadTlsMaterial({ ...cfg, certFile: chain }).fingerprint256, leaf.fingerprint256, 'a chain: the leaf comes first');
});

t.test('loadTlsMaterial refuses what a handshake could not use, in one line naming the file', async (t) => {
  const base = tlsConfig();
  t.match(
    loadError({ ...base, keyFile: clientA.key }),
    new RegExp(
      `tls_server_config\\.key_file ${clientA.key} does not match the certificate of tls_server_config\\.cert_file ${server.cert} \\(CN=localhost\\)$`,
    ),
  );
  t.match(loadError({ ...base, certFile: path.join(dir, 'missing.crt') }), /^tls_server_config\.cert_file \/.*\/missing\.crt: cannot read it \(ENOENT\)$/);
  t.match(loadError({ ...base, keyFile: dir }), /^tls_server_config\.key_file \/.*: cannot read it \(EISDIR: a directory\)$/);
  t.match(
    loadError({ ...base, certFile: path.join(dir, 'missing.crt') }, '/etc/web.yml'),
    /^web config \/etc\/web\.yml: tls_server_config\.cert_file /,
    'prefixed with the source',
  );

  const garbage = path.join(dir, 'garbage.pem');
  fs.writeFileSync(garbage, 'this is not PEM\n');
  t.match(loadError({ ...base, certFile: garbage }), /tls_server_config\.cert_file .*garbage\.pem: no PEM certificate \(-----BEGIN CERTIFICATE-----\) in it$/);
  t.match(loadError({ ...base, keyFile: garbage }), /tls_server_config\.key_file .*garbage\.pem: not a PEM private key, or an encrypted one \(/);
  const broken = path.join(dir, 'broken.crt');
  fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  t.match(loadError({ ...base, certFile: broken }), /broken\.crt: certificate 1 does not parse \(/);
  t.match(
    loadError({ ...base, clientAuthType: 'RequireAndVerifyClientCert', clientCaFile: garbage }),
    /tls_server_config\.client_ca_file .*garbage\.pem: no PEM certificate/,
    'a client CA without certificates (Go would silently trust nothing)',
  );
  t.match(loadError({ ...base, clientAuthType: 'RequestClientCert', clientCaPem: 'junk' }), /^tls_server_config\.client_ca: no PEM certificate/);
  const encrypted = crypto.createPrivateKey(server.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' });
  t.match(loadError({ ...base, keyFile: undefined, keyPem: String(encrypted) }), /^tls_server_config\.key: not a PEM private key, or an encrypted one/);
  t.match(loadError({ ...base, ecdhCurve: 'NoSuchCurve' }), /^tls_server_config: Node refuses these TLS settings \(/);
  t.match(loadError({ ...base, certFile: undefined }), /missing one of cert or cert_file/);
  t.match(loadError({ ...base, keyFile: undefined }), /missing one of key or key_file/);
  for (const msg of [loadError({ ...base, keyFile: clientA.key }), loadError({ ...base, keyFile: garbage })]) {
    t.notOk(msg.includes('\n'), `one line: ${msg}`);
    t.notOk(msg.includes('PRIVATE KEY'), 'no key material in the message');
  }
});

t.test('readSmallFile reads regular files only, and small ones', async (t) => {
  t.equal(readSmallFile(caA.cert), caA.certPem);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  t.throws(() => readSmallFile(fifo), { message: 'not a regular file' }, 'a FIFO without a writer does not hang the reader');
  t.throws(() => readSmallFile(dir), { message: 'EISDIR: a directory' });
  t.throws(() => readSmallFile(path.join(dir, 'nope')), { message: 'ENOENT' });
  const big = path.join(dir, 'big.pem');
  fs.writeFileSync(big, Buffer.alloc(MAX_FILE_BYTES + 1, 0x41));
  t.throws(() => readSmallFile(big), { message: `larger than ${MAX_FILE_BYTES} bytes` });
  t.match(loadError({ ...tlsConfig(), certFile: fifo }), /tls_server_config\.cert_file .*fifo: cannot read it \(not a regular file\)$/);
});

t.test('secureContextOptions and serverTlsOptions', async (t) => {
  const cfg = tlsConfig(
    `  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ${caA.cert}\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n`,
  );
  const m = loadTlsMaterial(cfg);
  t.same(secureContextOptions(cfg, m), {
    key: server.keyPem,
    cert: server.certPem,
    ca: caA.certPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
    ecdhCurve: 'X25519',
  });
  const plain = tlsConfig();
  t.same(Object.keys(secureContextOptions(plain, loadTlsMaterial(plain))).sort(), ['cert', 'key', 'maxVersion', 'minVersion'], 'nothing unset is passed');
  const expect: Record<string, [boolean, boolean]> = {
    NoClientCert: [false, false],
    RequestClientCert: [true, false],
    RequireAnyClientCert: [true, false],
    VerifyClientCertIfGiven: [true, false],
    RequireAndVerifyClientCert: [true, true],
  };
  for (const [type, [requestCert, rejectUnauthorized]] of Object.entries(expect)) {
    const c = tlsConfig(`  client_auth_type: ${type}\n`);
    const o = serverTlsOptions(c, loadTlsMaterial(c));
    t.equal(o.requestCert, requestCert, `${type} requestCert`);
    t.equal(o.rejectUnauthorized, rejectUnauthorized, `${type} rejectUnauthorized`);
    t.equal(o.handshakeTimeout, HANDSHAKE_TIMEOUT_MS);
  }
});

t.test('subjectAltNames reads Node subjectaltname as Go compares SANs', async (t) => {
  t.same(subjectAltNames('DNS:a.example, IP Address:10.0.0.1, URI:spiffe://x/y, email:a@b.c'), ['a.example', '10.0.0.1', 'spiffe://x/y', 'a@b.c']);
  t.same(subjectAltNames('IP Address:0:0:0:0:0:0:0:1, IP Address:FE80:0:0:0:0:0:0:1'), ['::1', 'fe80::1'], 'IPv6 as Go writes it');
  t.same(subjectAltNames('DNS:"a, b", DNS:"q\\"uote", DNS:c'), ['a, b', 'q"uote', 'c'], 'quoted values');
  t.same(subjectAltNames('DirName:"CN=x", othername:1.2.3.4::x, DNS:d'), ['d'], 'other kinds are skipped');
  t.same(subjectAltNames(undefined), []);
  t.same(subjectAltNames(''), []);
  t.same(subjectAltNames('garbage'), []);
  t.same(subjectAltNames('DNS:"unterminated'), []);
});

interface Served {
  port: number;
  /** What the server's 'secureConnection' check refused, in order. */
  problems: string[];
}

/** An HTTPS server with serverTlsOptions and clientCertificateProblem on 'secureConnection', as the app wires them. */
async function serve(t: Test, cfg: TlsServerConfig): Promise<Served> {
  const material: TlsMaterial = loadTlsMaterial(cfg);
  const problems: string[] = [];
  const srv = https.createServer(serverTlsOptions(cfg, material), (req, res) => {
    const sock = req.socket;
    const verified = sock instanceof tls.TLSSocket ? verifiedClientCertificate(sock) : undefined;
    const cn = verified?.subject.CN;
    res.end(`verified=${typeof cn === 'string' ? cn : '-'}`);
  });
  srv.prependListener('secureConnection', (socket: tls.TLSSocket) => {
    const problem = clientCertificateProblem(cfg, socket);
    if (problem !== undefined) {
      problems.push(problem);
      socket.destroy();
    }
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { port: (srv.address() as AddressInfo).port, problems };
}

/** One HTTP/1.1 request over a fresh TLS connection: `ok verified=<CN|->` when a 200 came back, else `refused`. */
function request(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (v: string): void => {
      if (!settled) resolve(v);
      settled = true;
    };
    let sock: tls.TLSSocket;
    try {
      sock = tls.connect({ host: '127.0.0.1', port, ca: caA.certPem, servername: 'localhost', ...opts }, () => {
        sock.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
    } catch {
      done('refused');
      return;
    }
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => done('refused'));
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 200[\s\S]*\r\n\r\n(verified=.*)$/.exec(data);
      done(m === null ? 'refused' : `ok ${m[1]}`);
    });
    sock.setTimeout(30_000, () => sock.destroy(new Error('timed out')));
  });
}

const noCert: tls.ConnectionOptions = {};
const certA: tls.ConnectionOptions = { cert: clientA.certPem, key: clientA.keyPem };
const certAPlain: tls.ConnectionOptions = { cert: clientAPlain.certPem, key: clientAPlain.keyPem };
const certB: tls.ConnectionOptions = { cert: clientB.certPem, key: clientB.keyPem };

t.test('who gets through, per client_auth_type', async (t) => {
  const cases: Array<[string, string, string, string]> = [
    // type, no certificate, certificate from the client CA, certificate from another CA
    ['NoClientCert', 'ok verified=-', 'ok verified=-', 'ok verified=-'],
    ['RequestClientCert', 'ok verified=-', 'ok verified=prometheus', 'ok verified=-'],
    ['RequireAnyClientCert', 'refused', 'ok verified=prometheus', 'ok verified=-'],
    ['VerifyClientCertIfGiven', 'ok verified=-', 'ok verified=prometheus', 'refused'],
    ['RequireAndVerifyClientCert', 'refused', 'ok verified=prometheus', 'refused'],
  ];
  for (const [type, none, fromA, fromB] of cases) {
    await t.test(type, async (t) => {
      const ca = type === 'NoClientCert' ? '' : `  client_ca_file: ${caA.cert}\n`;
      const s = await serve(t, tlsConfig(`  client_auth_type: ${type}\n${ca}`));
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        t.equal(await request(s.port, { ...noCert, maxVersion }), none, `${maxVersion}, no certificate`);
        t.equal(await request(s.port, { ...certA, maxVersion }), fromA, `${maxVersion}, a certificate from the client CA`);
        t.equal(await request(s.port, { ...certB, maxVersion }), fromB, `${maxVersion}, a certificate from another CA`);
      }
      if (type === 'RequireAnyClientCert') t.match(s.problems, [/^no client certificate \(client_auth_type RequireAnyClientCert\)$/]);
      if (type === 'VerifyClientCertIfGiven') t.match(s.problems, [/^client certificate not verified: /]);
    });
  }
});

t.test('client_allowed_sans', async (t) => {
  const verify = await serve(
    t,
    tlsConfig(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${caA.cert}\n  client_allowed_sans: [prometheus.monitoring.svc]\n`),
  );
  t.equal(await request(verify.port, certA), 'ok verified=prometheus', 'a DNS SAN that is allowed');
  t.equal(await request(verify.port, certAPlain), 'refused', 'a verified certificate without an allowed SAN');
  t.equal(await request(verify.port, certB), 'refused', 'an allowed SAN on a certificate that does not verify');
  t.match(verify.problems, [/^no SAN of the client certificate is in client_allowed_sans \(it has someone\.example\)$/]);

  for (const san of ['spiffe://cluster.local/ns/monitoring/sa/prometheus', '::1', 'ops@example.com']) {
    const s = await serve(t, tlsConfig(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${caA.cert}\n  client_allowed_sans: ["${san}"]\n`));
    t.equal(await request(s.port, certA), 'ok verified=prometheus', `matches ${san}`);
  }
  const partial = await serve(
    t,
    tlsConfig(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${caA.cert}\n  client_allowed_sans: [prometheus]\n`),
  );
  t.equal(await request(partial.port, certA), 'refused', 'the CN is not a SAN, and matching is exact');

  const any = await serve(t, tlsConfig('  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [prometheus.monitoring.svc]\n'));
  t.equal(await request(any.port, certB), 'ok verified=-', 'RequireAnyClientCert: any certificate with an allowed SAN');
  t.equal(await request(any.port, certAPlain), 'refused');
  t.equal(await request(any.port, noCert), 'refused');
});

t.test('protocol versions', async (t) => {
  const tls13 = await serve(t, tlsConfig('  min_version: TLS13\n'));
  t.equal(await request(tls13.port, { maxVersion: 'TLSv1.2' }), 'refused', 'min_version TLS13 refuses a TLS 1.2-only client');
  t.equal(await request(tls13.port), 'ok verified=-');

  const dflt = await serve(t, tlsConfig());
  t.equal(await request(dflt.port, { maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' }), 'ok verified=-', 'TLS 1.2 by default');
  // A TLS 1.0/1.1 client is refused by default: by the server's TLS12 minimum, or already by OpenSSL's security level
  // on the client side, which may not even offer them. Either way no request gets through.
  t.equal(await request(dflt.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'refused', 'TLS 1.0/1.1 refused');
  t.equal(
    await request(dflt.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }),
    'refused',
    'even from a client that offers them',
  );

  const max12 = await serve(t, tlsConfig('  max_version: TLS12\n'));
  const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: max12.port, ca: caA.certPem, servername: 'localhost' }, () => resolve(s));
    s.on('error', reject);
    s.setTimeout(30_000, () => s.destroy(new Error('timed out')));
  });
  t.equal(sock.getProtocol(), 'TLSv1.2', 'max_version TLS12');
  sock.destroy();
});

t.test('cipher_suites and curve_preferences', async (t) => {
  const s = await serve(t, tlsConfig('  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n'));
  const tls12 = { maxVersion: 'TLSv1.2' as const };
  t.equal(await request(s.port, { ...tls12, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), 'refused', 'a suite not listed');
  t.equal(await request(s.port, { ...tls12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }), 'ok verified=-', 'the listed suite');
  t.equal(await request(s.port, { minVersion: 'TLSv1.3' }), 'ok verified=-', 'TLS 1.3 stays on: cipher_suites applies to TLS 1.2 and older, as in Go');

  const curves = await serve(t, tlsConfig('  curve_preferences: [CurveP384]\n'));
  t.equal(await request(curves.port, { ecdhCurve: 'X25519' }), 'refused', 'a curve not listed');
  t.equal(await request(curves.port, { ecdhCurve: 'P-384' }), 'ok verified=-', 'the listed curve');
});

t.test('clientCertificateProblem without a connection', async (t) => {
  // A socket that never connected: no peer certificate, not authorized.
  const lone = new tls.TLSSocket(null as never);
  t.teardown(() => lone.destroy());
  const base = tlsConfig();
  t.equal(clientCertificateProblem(base, lone), undefined, 'NoClientCert: nothing to check');
  t.equal(clientCertificateProblem({ ...base, clientAuthType: 'RequestClientCert' }, lone), undefined);
  t.equal(clientCertificateProblem({ ...base, clientAuthType: 'VerifyClientCertIfGiven' }, lone), undefined);
  t.equal(
    clientCertificateProblem({ ...base, clientAuthType: 'RequireAndVerifyClientCert' }, lone),
    'no client certificate (client_auth_type RequireAndVerifyClientCert)',
  );
  t.equal(
    clientCertificateProblem({ ...base, clientAuthType: 'RequestClientCert', clientAllowedSans: ['x'] }, lone),
    'no client certificate to match against client_allowed_sans',
  );
  t.equal(verifiedClientCertificate(lone), undefined);
});
