/**
 * The built exporter over real TLS, with real clients: curl (OpenSSL) and Node's https. Certificates come from a test
 * CA made with openssl (test/support/pki.ts) and are rotated on disk while the exporter runs; a web config in
 * exporter-toolkit's format turns on TLS, client certificates, basic auth and headers; --tls=on without a certificate
 * serves a generated self-signed one. Startup mistakes are one line and a non-zero exit.
 */
import t, { type Test } from 'tap';
import bcrypt from 'bcryptjs';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { execFile } from 'node:child_process';
import { isCI } from '../support/daemons.js';
import { runExporter, startExporter, type Running } from '../support/exporter.js';
import { get } from '../support/https-client.js';
import { issue, makeCa, serverCert, type Ca, type KeyPair } from '../support/pki.js';
import { poll, until } from '../support/poll.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-tls-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Exporter flags that keep these tests off the daemons and the disk walkers: only TLS is under test here. */
const QUIET = ['--docker-endpoint=', '--containerd-address=', '--crio-endpoint=', '--no-disk-usage', '--raw-cgroup-prefix-allowlist=/podvisor-none'];

function writeConfig(file: string, cfg: Record<string, unknown>): string {
  fs.writeFileSync(file, YAML.stringify(cfg));
  return file;
}

/** Copies a pair to the paths the web config names (the way a Secret update lands: new content, same path). */
function install(pair: KeyPair, cert: string, key: string): void {
  fs.writeFileSync(`${cert}.tmp`, pair.certPem);
  fs.renameSync(`${cert}.tmp`, cert);
  fs.writeFileSync(`${key}.tmp`, pair.keyPem);
  fs.renameSync(`${key}.tmp`, key);
}

const fingerprint = (pem: string): string => new crypto.X509Certificate(pem).fingerprint256;
const https = (r: Running): string => r.url.replace('http://', 'https://');

/** curl's exit code and output (a failed transfer is a result here, not an error). */
function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['--max-time', '20', ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

async function curlAvailable(t: Test): Promise<boolean> {
  if ((await curl(['--version'])).code === 0) return true;
  if (isCI()) t.fail('curl is missing (test/support/provision.sh installs it)');
  else t.pass('curl is missing: its checks are left out (CI fails here)');
  return false;
}

let ca: Ca;
let otherCa: Ca;
t.before(() => {
  ca = makeCa(path.join(tmp, 'ca'), 'podvisor-test-ca');
  otherCa = makeCa(path.join(tmp, 'other'), 'someone-else');
});

t.test('HTTPS from the web config: curl and Node handshake, old TLS versions are refused, the certificate rotates in place', async (t) => {
  const dir = path.join(tmp, 'rotate');
  fs.mkdirSync(dir);
  const first = serverCert(ca, 'first');
  const second = serverCert(ca, 'second');
  const cert = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  install(first, cert, key);
  const cfg = writeConfig(path.join(dir, 'web.yml'), {
    tls_server_config: { cert_file: 'tls.crt', key_file: 'tls.key' },
    http_server_config: { headers: { 'Strict-Transport-Security': 'max-age=31536000', 'X-Content-Type-Options': 'nosniff' } },
  });
  const ex = await startExporter([...QUIET, `--web.config.file=${cfg}`]);
  t.teardown(() => ex.stop());
  const url = https(ex);
  t.match(ex.stderr(), /podvisor listening.*scheme=https/, 'the startup line says https');

  const r = await get(`${url}/healthz`, { ca: ca.certPem });
  t.equal(r.status, 200, 'Node https client, trusting the test CA');
  t.equal(r.fingerprint256, fingerprint(first.certPem), 'the certificate from the web config is served');
  t.equal(r.headers['strict-transport-security'], 'max-age=31536000', 'http_server_config.headers are sent');
  t.equal(r.headers['x-content-type-options'], 'nosniff');
  const m = await get(`${url}/metrics`, { ca: ca.certPem });
  t.equal(m.status, 200, '/metrics over TLS');
  t.match(m.body, /container_cpu_usage_seconds_total\{/);
  t.match(m.body, /podvisor_tls_certificate_not_after_timestamp_seconds \d+/, 'the certificate expiry is a self-metric');

  await t.rejects(get(`http://127.0.0.1:${new URL(url).port}/healthz`, { timeoutMs: 5000 }), 'plain HTTP on the TLS port gets no HTTP answer');
  await t.rejects(get(`${url}/healthz`, { ca: otherCa.certPem }), /self.signed|unable to verify|certificate/i, 'a client trusting another CA refuses it');
  for (const v of ['TLSv1', 'TLSv1.1'] as const) {
    // Node's OpenSSL may refuse to even offer these: either way no session is made.
    await t.rejects(get(`${url}/healthz`, { ca: ca.certPem, minVersion: v, maxVersion: v }), `${v} is refused`);
  }
  const tls12 = await get(`${url}/healthz`, { ca: ca.certPem, maxVersion: 'TLSv1.2' });
  t.equal(tls12.status, 200, 'TLS 1.2 is served (the default min_version)');

  if (await curlAvailable(t)) {
    const c = await curl(['-sS', '--cacert', ca.cert, '-o', '/dev/null', '-w', '%{http_code} %{ssl_verify_result}', `${url}/readyz`]);
    t.equal(c.code, 0, `curl: ${c.stderr}`);
    t.match(c.stdout, /^(200|503) 0$/, 'curl verifies the certificate and gets an answer');
    const old = await curl(['-sS', '--cacert', ca.cert, '--tlsv1.0', '--tls-max', '1.1', `${url}/healthz`]);
    t.not(old.code, 0, `curl with TLS 1.0-1.1 only is refused (${old.stderr.trim()})`);
  }

  // Rotation: the next handshake sees the new certificate, without a restart.
  install(second, cert, key);
  const rotated = await poll(
    'the new certificate to be served',
    async () => {
      const g = await get(`${url}/healthz`, { ca: ca.certPem });
      return g.fingerprint256 === fingerprint(second.certPem) ? g : undefined;
    },
    { timeoutMs: 30_000, everyMs: 200 },
  );
  t.equal(rotated.status, 200, 'served with the rotated certificate');
  t.equal(ex.proc.exitCode, null, 'no restart');
  t.match(ex.stderr(), /serving certificate reloaded/, 'the reload is logged');

  // A broken key (not matching the certificate) keeps the old pair in force and says why.
  const third = serverCert(ca, 'third');
  fs.writeFileSync(cert, third.certPem);
  fs.writeFileSync(key, first.keyPem);
  await until('the failed reload to be logged', () => /web config.*(reload|keep)|keep/i.test(ex.stderr().split('serving certificate reloaded').at(-1) ?? ''), {
    timeoutMs: 30_000,
  });
  const still = await get(`${url}/healthz`, { ca: ca.certPem });
  t.equal(still.fingerprint256, fingerprint(second.certPem), 'the last good certificate is still served');
  const body = (await get(`${url}/metrics`, { ca: ca.certPem })).body;
  t.match(body, /podvisor_web_config_reloads_total\{result="failure"\} [1-9]/, 'the failed reload is counted');
  t.match(body, /podvisor_web_config_reloads_total\{result="success"\} [1-9]/, 'so is the good one');
});

t.test('client certificates: RequireAndVerifyClientCert refuses a handshake without one, or with one from another CA', async (t) => {
  const dir = path.join(tmp, 'mtls');
  fs.mkdirSync(dir);
  const server = serverCert(ca, 'mtls-server');
  const good = issue(ca, 'prometheus', { cn: 'prometheus', client: true, sans: ['DNS:prometheus.monitoring.svc'] });
  const stranger = issue(otherCa, 'stranger', { cn: 'stranger', client: true });
  const cfg = writeConfig(path.join(dir, 'web.yml'), {
    tls_server_config: { cert_file: server.cert, key_file: server.key, client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: ca.cert },
  });
  const ex = await startExporter([...QUIET, `--web.config.file=${cfg}`]);
  t.teardown(() => ex.stop());
  const url = https(ex);
  await t.rejects(get(`${url}/metrics`, { ca: ca.certPem }), 'no client certificate: refused');
  await t.rejects(get(`${url}/metrics`, { ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem }), 'a certificate from another CA: refused');
  const ok = await get(`${url}/metrics`, { ca: ca.certPem, cert: good.certPem, key: good.keyPem });
  t.equal(ok.status, 200, 'a certificate from the client CA: served');
  t.match(ok.body, /podvisor_tls_connections_rejected_total\{reason="handshake"\} [1-9]/, 'the refused handshakes are counted');
  if (await curlAvailable(t)) {
    const c = await curl(['-sS', '--cacert', ca.cert, '--cert', good.cert, '--key', good.key, '-o', '/dev/null', '-w', '%{http_code}', `${url}/healthz`]);
    t.equal(c.stdout, '200', 'curl with the client certificate');
    const n = await curl(['-sS', '--cacert', ca.cert, '-o', '/dev/null', '-w', '%{http_code}', `${url}/healthz`]);
    t.not(n.stdout, '200', 'curl without one gets no answer (TLS 1.3 may refuse after the handshake)');
  }
});

t.test('client_allowed_sans: a verified certificate without an allowed SAN is refused', async (t) => {
  const dir = path.join(tmp, 'sans');
  fs.mkdirSync(dir);
  const server = serverCert(ca, 'sans-server');
  const allowed = issue(ca, 'allowed', { cn: 'a', client: true, sans: ['DNS:prometheus.monitoring.svc'] });
  const other = issue(ca, 'other-san', { cn: 'b', client: true, sans: ['DNS:intruder.example'] });
  const cfg = writeConfig(path.join(dir, 'web.yml'), {
    tls_server_config: {
      cert_file: server.cert,
      key_file: server.key,
      client_auth_type: 'RequireAndVerifyClientCert',
      client_ca_file: ca.cert,
      client_allowed_sans: ['prometheus.monitoring.svc'],
    },
  });
  const ex = await startExporter([...QUIET, `--web.config.file=${cfg}`]);
  t.teardown(() => ex.stop());
  const url = https(ex);
  t.equal((await get(`${url}/healthz`, { ca: ca.certPem, cert: allowed.certPem, key: allowed.keyPem })).status, 200, 'allowed SAN: served');
  await t.rejects(get(`${url}/healthz`, { ca: ca.certPem, cert: other.certPem, key: other.keyPem }), 'other SAN: connection closed');
  const m = await get(`${url}/metrics`, { ca: ca.certPem, cert: allowed.certPem, key: allowed.keyPem });
  t.match(m.body, /podvisor_tls_connections_rejected_total\{reason="client_certificate"\} [1-9]/, 'counted as a refused client certificate');
});

t.test('basic auth from the web config: 401 with WWW-Authenticate, the right password passes, /healthz stays open', async (t) => {
  const dir = path.join(tmp, 'basic');
  fs.mkdirSync(dir);
  const server = serverCert(ca, 'basic-server');
  const hash = bcrypt.hashSync('s3cret', 4);
  const cfg = writeConfig(path.join(dir, 'web.yml'), {
    tls_server_config: { cert_file: server.cert, key_file: server.key },
    http_server_config: { headers: { 'X-Frame-Options': 'deny' } },
    basic_auth_users: { prometheus: hash },
  });
  const ex = await startExporter([...QUIET, `--web.config.file=${cfg}`]);
  t.teardown(() => ex.stop());
  const url = https(ex);
  const basic = (u: string, p: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  const none = await get(`${url}/metrics`, { ca: ca.certPem });
  t.equal(none.status, 401, 'no credentials: 401');
  t.equal(none.headers['www-authenticate'], 'Basic');
  t.equal(none.headers['x-frame-options'], 'deny', 'the web config headers are on the 401 too');
  t.equal(none.body, 'Unauthorized\n', 'one line, no detail');
  t.equal((await get(`${url}/metrics`, { ca: ca.certPem, headers: basic('prometheus', 'wrong') })).status, 401, 'wrong password: 401');
  t.equal((await get(`${url}/metrics`, { ca: ca.certPem, headers: basic('nobody', 's3cret') })).status, 401, 'unknown user: 401');
  const ok = await get(`${url}/metrics`, { ca: ca.certPem, headers: basic('prometheus', 's3cret') });
  t.equal(ok.status, 200, 'right password: 200');
  t.match(ok.body, /podvisor_http_auth_requests_total\{result="unauthenticated"\} 3/, 'the three refusals are counted');
  t.equal((await get(`${url}/healthz`, { ca: ca.certPem })).status, 200, '/healthz needs no credentials');
  t.not((await get(`${url}/readyz`, { ca: ca.certPem })).status, 401, '/readyz needs no credentials');
  t.equal((await get(`${url}/`, { ca: ca.certPem })).status, 401, 'the landing page needs them');

  // Users are read again on change: a new password works without a restart.
  fs.writeFileSync(cfg, YAML.stringify({ ...YAML.parse(fs.readFileSync(cfg, 'utf8')), basic_auth_users: { prometheus: bcrypt.hashSync('n3w', 4) } }));
  await poll(
    'the new password to be accepted',
    async () => ((await get(`${url}/metrics`, { ca: ca.certPem, headers: basic('prometheus', 'n3w') })).status === 200 ? true : undefined),
    {
      timeoutMs: 30_000,
      everyMs: 200,
    },
  );
  t.equal((await get(`${url}/metrics`, { ca: ca.certPem, headers: basic('prometheus', 's3cret') })).status, 401, 'the old password no longer works');
});

t.test('--tls=on without a certificate: a self-signed one, logged with its fingerprint', async (t) => {
  const ex = await startExporter([...QUIET, '--tls=on']);
  t.teardown(() => ex.stop());
  const r = await get(`${https(ex)}/healthz`, { insecure: true });
  t.equal(r.status, 200);
  t.ok(r.fingerprint256, 'a certificate was served');
  t.ok(ex.stderr().includes(r.fingerprint256 ?? 'none'), 'the startup log names the fingerprint of the certificate served');
  t.match(ex.stderr(), /self-signed for [^ ]*localhost[^ ]*127\.0\.0\.1/, 'made for localhost and the loopback address');
  await t.rejects(get(`${https(ex)}/healthz`), 'a verifying client refuses it (it is self-signed)');
});

t.test('startup mistakes in the web config: one line naming the file and the key, and a non-zero exit', async (t) => {
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(dir);
  const server = serverCert(ca, 'bad-server');
  const other = serverCert(ca, 'bad-other');
  const cases: { name: string; cfg: Record<string, unknown> | string; error: RegExp }[] = [
    { name: 'unknown key', cfg: { tls_server_config: { cert_file: server.cert, key_file: server.key, client_auth: 'x' } }, error: /client_auth/ },
    {
      name: 'bad client_auth_type',
      cfg: { tls_server_config: { cert_file: server.cert, key_file: server.key, client_auth_type: 'Sometimes' } },
      error: /client_auth_type/,
    },
    { name: 'key not matching the certificate', cfg: { tls_server_config: { cert_file: server.cert, key_file: other.key } }, error: /key|match/i },
    { name: 'unreadable certificate', cfg: { tls_server_config: { cert_file: path.join(dir, 'missing.crt'), key_file: server.key } }, error: /missing\.crt/ },
    { name: 'bad bcrypt hash', cfg: { basic_auth_users: { alice: 'not-a-hash' } }, error: /alice/ },
    { name: 'header not allowed', cfg: { http_server_config: { headers: { 'X-Powered-By': 'me' } } }, error: /X-Powered-By/ },
    { name: 'not YAML', cfg: 'tls_server_config: [unclosed', error: /web config/ },
  ];
  for (const c of cases) {
    const file = path.join(dir, `${c.name.replace(/\W+/g, '-')}.yml`);
    fs.writeFileSync(file, typeof c.cfg === 'string' ? c.cfg : YAML.stringify(c.cfg));
    const r = await runExporter([...QUIET, '--listen-address=127.0.0.1:0', `--web.config.file=${file}`]);
    t.not(r.code, 0, `${c.name}: non-zero exit`);
    const lines = r.stderr.trim().split('\n');
    t.equal(lines.length, 1, `${c.name}: one line (${r.stderr.trim()})`);
    t.match(lines[0], /^podvisor: /, `${c.name}: podvisor's error line`);
    t.match(lines[0], c.error, `${c.name}: names what is wrong`);
  }
  const missing = await runExporter([...QUIET, '--listen-address=127.0.0.1:0', `--web.config.file=${path.join(dir, 'nope.yml')}`]);
  t.not(missing.code, 0, 'a missing web config file is a startup error');
  t.match(missing.stderr, /nope\.yml/);
  const conflict = writeConfig(path.join(dir, 'tls.yml'), { tls_server_config: { cert_file: server.cert, key_file: server.key } });
  const off = await runExporter([...QUIET, '--listen-address=127.0.0.1:0', '--tls=off', `--web.config.file=${conflict}`]);
  t.not(off.code, 0, '--tls=off with tls_server_config is a contradiction');
  t.match(off.stderr, /--tls=off/);
  const authz = await runExporter([...QUIET, '--listen-address=127.0.0.1:0', '--authorization=kubernetes']);
  t.equal(authz.code, 2, '--authorization=kubernetes without --authentication=kubernetes: a flag error');
  t.match(authz.stderr, /--authorization=kubernetes needs --authentication=kubernetes/);
  const notInCluster = await runExporter([...QUIET, '--listen-address=127.0.0.1:0', '--authentication=kubernetes'], {
    env: { ...process.env, KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '' },
  });
  t.not(notInCluster.code, 0, 'token authentication outside a cluster without --kubeconfig');
  t.match(notInCluster.stderr, /KUBERNETES_SERVICE_HOST/);
});
