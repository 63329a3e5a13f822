import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { selfSignedCertificate, type SelfSigned } from '../../src/http/self-signed.js';
import { errnoCode } from '../../src/guards.js';

const NOW = new Date('2026-03-04T05:06:07.890Z');
const DAY_MS = 86_400_000;

function make(over: Partial<Parameters<typeof selfSignedCertificate>[0]> = {}): SelfSigned {
  return selfSignedCertificate({ commonName: 'node-1', dnsNames: ['localhost', 'node-1.example'], ipAddresses: ['127.0.0.1', '::1'], ...over });
}

t.test('a certificate Node parses, with the names, usages and key asked for', async (t) => {
  const c = make({ now: NOW });
  const x = new X509Certificate(c.certPem);
  t.equal(x.subject, 'CN=node-1');
  t.equal(x.issuer, 'CN=node-1', 'self-issued');
  t.equal(x.subjectAltName, 'DNS:localhost, DNS:node-1.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  t.equal(x.ca, false, 'an end-entity certificate (CA:FALSE)');
  t.same(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth only');
  t.equal(x.publicKey.asymmetricKeyType, 'ec');
  t.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.ok(x.verify(x.publicKey), 'self-signed: verifies with its own public key');
  const key = createPrivateKey(c.keyPem);
  t.ok(x.checkPrivateKey(key), 'the key is the certificate’s');
  t.match(c.keyPem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8');
  t.equal(c.fingerprint256, x.fingerprint256);
  t.match(c.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/, '16 bytes, positive, no leading zero byte');
  t.match(c.certPem, /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/, 'PEM in 64-column lines');
});

t.test('the validity window: from an hour before now, for validDays', async (t) => {
  const c = make({ now: NOW });
  const x = new X509Certificate(c.certPem);
  const from = new Date('2026-03-04T04:06:07Z');
  const to = new Date(Date.parse('2026-03-04T05:06:07Z') + 365 * DAY_MS);
  t.equal(Date.parse(x.validFrom), from.getTime(), `notBefore ${x.validFrom}`);
  t.equal(Date.parse(x.validTo), to.getTime(), `notAfter ${x.validTo}`);
  t.equal(c.notAfter.getTime(), to.getTime(), 'notAfter returned is the one encoded (whole seconds)');

  const week = make({ now: NOW, validDays: 7 });
  t.equal(Date.parse(new X509Certificate(week.certPem).validTo), Date.parse('2026-03-11T05:06:07Z'));

  const real = make({ validDays: 1 });
  const rx = new X509Certificate(real.certPem);
  t.ok(Date.parse(rx.validFrom) < Date.now() && Date.now() < Date.parse(rx.validTo), 'without now(): valid at the time of the test');
});

t.test('GeneralizedTime from 2050 on, UTCTime before', async (t) => {
  const c = make({ now: new Date('2049-12-01T00:00:00Z'), validDays: 60 });
  const x = new X509Certificate(c.certPem);
  t.equal(Date.parse(x.validFrom), Date.parse('2049-11-30T23:00:00Z'));
  t.equal(Date.parse(x.validTo), Date.parse('2050-01-30T00:00:00Z'));
  const der = x.raw;
  t.ok(der.includes(Buffer.from('491130230000Z', 'ascii')), 'UTCTime for 2049');
  t.ok(der.includes(Buffer.from('20500130000000Z', 'ascii')), 'GeneralizedTime for 2050');
});

t.test('IP addresses: IPv4 in 4 bytes, IPv6 in 16, every way of writing them', async (t) => {
  const cases: [string, string][] = [
    ['10.0.0.255', 'IP Address:10.0.0.255'],
    ['::', 'IP Address:0:0:0:0:0:0:0:0'],
    ['::1', 'IP Address:0:0:0:0:0:0:0:1'],
    ['fe80::', 'IP Address:FE80:0:0:0:0:0:0:0'],
    ['2001:db8::1:0:0:1', 'IP Address:2001:DB8:0:0:1:0:0:1'],
    ['2001:DB8:0:0:0:0:0:FFFF', 'IP Address:2001:DB8:0:0:0:0:0:FFFF'],
    ['::ffff:10.1.2.3', 'IP Address:0:0:0:0:0:FFFF:A01:203'],
    ['64:ff9b::192.0.2.33', 'IP Address:64:FF9B:0:0:0:0:C000:221'],
  ];
  for (const [ip, want] of cases) {
    const x = new X509Certificate(make({ dnsNames: [], ipAddresses: [ip] }).certPem);
    t.equal(x.subjectAltName, want, ip);
    t.equal(x.checkIP(ip), ip, `${ip} matches`);
  }
  const x = new X509Certificate(make({ dnsNames: [], ipAddresses: ['10.0.0.1'] }).certPem);
  t.equal(x.checkIP('10.0.0.2'), undefined, 'another address does not match');
});

t.test('names: no SANs at all, a long CN, wildcards', async (t) => {
  const bare = new X509Certificate(make({ dnsNames: [], ipAddresses: [] }).certPem);
  t.equal(bare.subjectAltName, undefined, 'no subjectAltName extension when there is nothing to put in it');
  const long = 'n'.repeat(70);
  const lx = new X509Certificate(make({ commonName: long }).certPem);
  t.equal(lx.subject, `CN=${'n'.repeat(64)}`, 'CN cut to 64 characters');
  const ux = new X509Certificate(make({ commonName: 'nœud-1' }).certPem);
  t.equal(ux.subject, 'CN=nœud-1', 'UTF8String CN');
  const wx = new X509Certificate(make({ dnsNames: ['*.nodes.example'], ipAddresses: [] }).certPem);
  t.equal(wx.checkHost('a.nodes.example'), '*.nodes.example', 'a wildcard DNS name matches one label');
  t.equal(wx.checkHost('nodes.example'), undefined);
  const many = Array.from({ length: 40 }, (_, i) => `host-${i}.a-rather-long-domain-name.example`);
  const mx = new X509Certificate(make({ dnsNames: many, ipAddresses: [] }).certPem);
  t.equal(mx.subjectAltName, many.map((n) => `DNS:${n}`).join(', '), 'a SAN list over 128 and 256 bytes (long DER lengths)');
});

t.test('bad input is refused', async (t) => {
  for (const ip of ['1.2.3', '256.1.1.1', 'fe80::1%eth0', 'localhost', '', '::g']) {
    t.throws(() => make({ ipAddresses: [ip] }), RangeError, `IP ${JSON.stringify(ip)}`);
  }
  for (const name of ['', 'nœud.example', 'a b', 'x'.repeat(254)]) {
    t.throws(() => make({ dnsNames: [name] }), RangeError, `DNS name ${JSON.stringify(name)}`);
  }
  t.throws(() => make({ validDays: 0 }), RangeError);
  t.throws(() => make({ validDays: -1 }), RangeError);
  t.throws(() => make({ validDays: Number.NaN }), RangeError);
  t.throws(() => make({ now: new Date(Number.NaN) }), RangeError);
});

t.test('every call makes a new key and a new serial', async (t) => {
  const a = new X509Certificate(make().certPem);
  const b = new X509Certificate(make().certPem);
  t.not(a.serialNumber, b.serialNumber);
  t.not(a.fingerprint256, b.fingerprint256);
  t.notOk(a.publicKey.equals(b.publicKey));
});

/** GET / over HTTPS, trusting `ca`; resolves to the body or rejects with the TLS error. */
function get(port: number, ca: string, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', ca, servername, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

function curl(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      // A spawn failure has a string code (ENOENT); an exit, curl's numeric status.
      const code = err === null ? 0 : (errnoCode(err) ?? err.code ?? 'error');
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('a real HTTPS server with it, and clients that pin it', async (t) => {
  const c = make({ commonName: 'podvisor-test' });
  const other = make();
  const server = https.createServer({ cert: c.certPem, key: c.keyPem }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;

  t.equal(await get(port, c.certPem), 'ok', 'Node client by IP (no SNI), the certificate as ca');
  t.equal(await get(port, c.certPem, 'localhost'), 'ok', 'Node client with servername localhost');
  await t.rejects(get(port, other.certPem), { code: /UNABLE_TO_VERIFY|SELF_SIGNED|DEPTH_ZERO/ }, 'another certificate as ca does not do');
  await t.rejects(get(port, c.certPem, 'elsewhere.example'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'a name not in the SANs does not do');

  const hasCurl = (await curl(['--version'])).code !== 'ENOENT';
  if (!hasCurl && process.env.CI === 'true') t.fail('curl is not on PATH, and CI=true requires it');
  await t.test('curl --cacert', { skip: hasCurl ? false : 'curl is not on PATH' }, async (t) => {
    const dir = t.testdir({ 'cert.pem': c.certPem, 'other.pem': other.certPem });
    const pinned = path.join(dir, 'cert.pem');
    t.equal(fs.readFileSync(pinned, 'utf8'), c.certPem);
    for (const url of [`https://127.0.0.1:${port}/`, `https://localhost:${port}/`]) {
      const r = await curl(['--cacert', pinned, '--resolve', `localhost:${port}:127.0.0.1`, url]);
      t.same({ code: r.code, stdout: r.stdout }, { code: 0, stdout: 'ok' }, `curl --cacert ${url}: ${r.stderr}`);
    }
    const wrong = await curl(['--cacert', path.join(dir, 'other.pem'), `https://127.0.0.1:${port}/`]);
    t.equal(wrong.code, 60, `curl with another certificate: peer certificate cannot be authenticated (${wrong.stderr.split('\n')[0]})`);
  });
});
