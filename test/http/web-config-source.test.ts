import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../src/errors.js';
import { WebConfigSource, readWebConfig, type WebConfigState } from '../../src/http/web-config-source.js';
import type { Fields, Logger } from '../../src/log.js';
import { makeCa, serverCert, type KeyPair } from '../support/pki.js';
import { until } from '../support/poll.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-web-config-source-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
const ca = makeCa(path.join(root, 'pki'), 'ca');
const pair1 = serverCert(ca, 'one', 'one');
const pair2 = serverCert(ca, 'two', 'two');
const pair3 = serverCert(ca, 'three', 'three');
const fp = (p: KeyPair): string => new crypto.X509Certificate(p.certPem).fingerprint256;
const HASH = '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi';

interface Line {
  level: string;
  msg: string;
  fields: Fields;
}

function capture(): { log: Logger; lines: Line[]; warns: () => Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Fields = {}): void => {
      lines.push({ level, msg, fields });
    };
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines, warns: () => lines.filter((l) => l.level === 'warn') };
}

let n = 0;
/** A fresh directory with `web.yml` (the text) and, for each pair given, tls.crt/tls.key. */
function setup(t: Test, text: string, pair?: KeyPair): { dir: string; file: string } {
  const dir = path.join(root, `case-${n++}`);
  fs.mkdirSync(dir);
  if (pair !== undefined) writePair(dir, pair);
  const file = path.join(dir, 'web.yml');
  fs.writeFileSync(file, text);
  return { dir, file };
}

function writePair(dir: string, pair: KeyPair): void {
  fs.writeFileSync(path.join(dir, 'tls.crt'), pair.certPem);
  fs.writeFileSync(path.join(dir, 'tls.key'), pair.keyPem);
}

const TLS = 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n';

function changes(src: WebConfigSource): Array<[WebConfigState, WebConfigState]> {
  const seen: Array<[WebConfigState, WebConfigState]> = [];
  src.onChange((cur, prev) => seen.push([cur, prev]));
  return seen;
}

t.test('load() reads the file and its certificates; any problem is a ConfigError', async (t) => {
  const { file, dir } = setup(t, `${TLS}basic_auth_users:\n  alice: '${HASH}'\n`, pair1);
  const { log } = capture();
  const src = WebConfigSource.load({ path: file, log });
  t.teardown(() => src.close());
  t.equal(src.path, file);
  t.equal(src.current.material?.fingerprint256, fp(pair1));
  t.same(src.current.material?.files, [path.join(dir, 'tls.crt'), path.join(dir, 'tls.key')]);
  t.equal(src.current.config.basicAuthUsers.get('alice'), HASH);
  t.equal(src.check(), false, 'nothing changed');

  t.throws(
    () => WebConfigSource.load({ path: path.join(dir, 'nope.yml'), log }),
    new ConfigError(`web config ${path.join(dir, 'nope.yml')}: cannot read it (ENOENT)`),
  );
  const bad = setup(t, 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n', pair1);
  fs.writeFileSync(path.join(bad.dir, 'tls.key'), pair2.keyPem);
  t.throws(() => WebConfigSource.load({ path: bad.file, log }), {
    name: 'ConfigError',
    message: new RegExp(`^web config ${bad.file}: tls_server_config\\.key_file .* does not match`),
  });
  const plain = setup(t, 'basic_auth_users: {}\n');
  t.same(readWebConfig(plain.file), { config: { http2: false, headers: {}, basicAuthUsers: new Map() } }, 'no TLS: no material');
});

t.test('a rotated certificate is taken and passed to the listeners', async (t) => {
  const { file, dir } = setup(t, TLS, pair1);
  const { log, lines } = capture();
  const src = WebConfigSource.load({ path: file, log });
  t.teardown(() => src.close());
  const seen = changes(src);
  writePair(dir, pair2);
  t.equal(src.check(), true);
  t.equal(src.current.material?.fingerprint256, fp(pair2));
  t.equal(seen.length, 1);
  t.equal(seen[0]?.[0].material?.fingerprint256, fp(pair2), 'the listener gets the new one');
  t.equal(seen[0]?.[1].material?.fingerprint256, fp(pair1), 'and the previous one');
  t.match(lines, [{ level: 'info', msg: 'web config reloaded', fields: { file, tls: true, cert_sha256: fp(pair2), users: 0 } }]);
  t.equal(src.check(), false, 'no change since');
  t.equal(seen.length, 1);

  // Only the key changes in one step, then the certificate: the half-written pair fails, the whole one is taken.
  fs.writeFileSync(path.join(dir, 'tls.key'), pair3.keyPem);
  t.equal(src.check(), false, 'a key that does not match is not taken');
  fs.writeFileSync(path.join(dir, 'tls.crt'), pair3.certPem);
  t.equal(src.check(), true);
  t.equal(src.current.material?.fingerprint256, fp(pair3));
});

t.test('a broken reload keeps the old config and warns once per problem', async (t) => {
  const { file, dir } = setup(t, TLS, pair1);
  const { log, warns, lines } = capture();
  const src = WebConfigSource.load({ path: file, log });
  t.teardown(() => src.close());
  const seen = changes(src);
  const keyFile = path.join(dir, 'tls.key');
  fs.writeFileSync(keyFile, 'garbage\n');
  for (let i = 0; i < 3; i++) t.equal(src.check(), false, `poll ${i}`);
  t.equal(src.current.material?.fingerprint256, fp(pair1), 'the old certificate stays');
  t.equal(src.current.material?.keyPem, pair1.keyPem);
  t.equal(warns().length, 1, 'one warning for three polls');
  t.match(warns()[0], {
    msg: 'web config reload failed; keeping the one in force',
    fields: { file, err: /tls_server_config\.key_file .*tls\.key: not a PEM private key/ },
  });

  fs.writeFileSync(keyFile, pair2.keyPem);
  t.equal(src.check(), false);
  t.equal(warns().length, 2, 'another problem: another warning');
  t.match(warns()[1]?.fields.err, /does not match the certificate/);

  fs.writeFileSync(file, `${TLS}  foo: 1\n`);
  t.equal(src.check(), false);
  t.match(warns()[2]?.fields.err, /unknown key tls_server_config\.foo/);

  fs.writeFileSync(file, TLS);
  fs.writeFileSync(keyFile, pair1.keyPem);
  t.equal(src.check(), true, 'fixed: taken');
  t.equal(seen.length, 1);
  t.ok(
    lines.some((l) => l.level === 'info' && l.msg === 'web config reload works again'),
    'says it works again',
  );
  t.equal(src.check(), false);

  fs.rmSync(file);
  t.equal(src.check(), false, 'a removed file is a failure too');
  t.match(warns()[3]?.fields.err, /cannot read it \(ENOENT\)/);
  t.equal(warns().length, 4);
});

t.test('users and headers change live', async (t) => {
  const { file } = setup(t, 'basic_auth_users:\n');
  const { log } = capture();
  const src = WebConfigSource.load({ path: file, log });
  t.teardown(() => src.close());
  t.equal(src.current.config.basicAuthUsers.size, 0);
  fs.writeFileSync(file, `basic_auth_users:\n  bob: '${HASH}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n`);
  t.equal(src.check(), true);
  t.same([...src.current.config.basicAuthUsers.keys()], ['bob']);
  t.same(src.current.config.headers, { 'X-Frame-Options': 'deny' });
  t.equal(src.current.material, undefined);
});

t.test('what needs a restart is kept, with one warning', async (t) => {
  await t.test('TLS turned on', async (t) => {
    const { file, dir } = setup(t, 'basic_auth_users: {}\n', pair1);
    const { log, warns } = capture();
    const src = WebConfigSource.load({ path: file, log });
    t.teardown(() => src.close());
    fs.writeFileSync(file, `${TLS}basic_auth_users:\n  bob: '${HASH}'\n`);
    t.equal(src.check(), true, 'the rest is taken');
    t.equal(src.current.config.tls, undefined, 'still plain HTTP');
    t.equal(src.current.material, undefined);
    t.equal(src.current.config.basicAuthUsers.size, 1);
    t.match(warns(), [{ msg: 'web config change needs a restart', fields: { change: /turns TLS on; podvisor serves plain HTTP until restarted/ } }]);
    writePair(dir, pair2);
    fs.appendFileSync(file, '# touched\n');
    t.equal(src.check(), true);
    t.equal(warns().length, 1, 'the same note is not repeated');
  });

  await t.test('TLS turned off', async (t) => {
    const { file } = setup(t, TLS, pair1);
    const { log, warns } = capture();
    const src = WebConfigSource.load({ path: file, log });
    t.teardown(() => src.close());
    const before = src.current;
    fs.writeFileSync(file, `basic_auth_users:\n  bob: '${HASH}'\n`);
    t.equal(src.check(), true);
    t.equal(src.current.config.tls, before.config.tls, 'the TLS config in force stays');
    t.equal(src.current.material, before.material, 'and its certificate');
    t.equal(src.current.config.basicAuthUsers.size, 1, 'users are taken');
    t.match(warns(), [{ fields: { change: /tls_server_config was removed; podvisor keeps serving HTTPS/ } }]);
  });

  await t.test('client_auth_type changed', async (t) => {
    const other = makeCa(path.join(root, 'other-ca'), 'other');
    const { file, dir } = setup(t, `${TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${ca.cert}\n  client_allowed_sans: [a]\n`, pair1);
    const { log, warns } = capture();
    const src = WebConfigSource.load({ path: file, log });
    t.teardown(() => src.close());
    writePair(dir, pair2);
    fs.writeFileSync(file, `${TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ${other.cert}\n  min_version: TLS13\n`);
    t.equal(src.check(), true);
    const tls = src.current.config.tls;
    t.equal(tls?.clientAuthType, 'RequireAndVerifyClientCert', 'the policy in force stays');
    t.equal(tls?.clientCaFile, ca.cert, 'with its client CA');
    t.same(tls?.clientAllowedSans, ['a'], 'and its SANs');
    t.equal(tls?.minVersion, 'TLSv1.3', 'the rest is taken');
    t.equal(src.current.material?.fingerprint256, fp(pair2), 'and so is the new certificate');
    t.equal(src.current.material?.caPem, ca.certPem, 'the CA loaded is the one in force');
    t.match(warns(), [{ fields: { change: /client_auth_type changed from RequireAndVerifyClientCert to VerifyClientCertIfGiven/ } }]);

    fs.writeFileSync(file, `${TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${other.cert}\n`);
    t.equal(src.check(), true, 'back to the policy in force');
    t.equal(src.current.config.tls?.clientCaFile, other.cert, 'the client CA can change with the same client_auth_type');
    t.same(src.current.config.tls?.clientAllowedSans, []);
    t.equal(warns().length, 1);
  });
});

t.test('a Kubernetes Secret volume update (the ..data symlink swap) is seen', async (t) => {
  const secret = path.join(root, 'secret');
  fs.mkdirSync(path.join(secret, '..2026_a'), { recursive: true });
  writePair(path.join(secret, '..2026_a'), pair1);
  fs.writeFileSync(path.join(secret, '..2026_a', 'web.yml'), TLS);
  fs.symlinkSync('..2026_a', path.join(secret, '..data'));
  for (const f of ['tls.crt', 'tls.key', 'web.yml']) fs.symlinkSync(path.join('..data', f), path.join(secret, f));
  const { log } = capture();
  const src = WebConfigSource.load({ path: path.join(secret, 'web.yml'), log });
  t.teardown(() => src.close());
  const seen = changes(src);
  t.equal(src.current.material?.fingerprint256, fp(pair1));

  // What the kubelet's AtomicWriter does: a new timestamped directory, a new symlink renamed over ..data, the old directory removed.
  fs.mkdirSync(path.join(secret, '..2026_b'));
  writePair(path.join(secret, '..2026_b'), pair2);
  fs.writeFileSync(path.join(secret, '..2026_b', 'web.yml'), TLS);
  fs.symlinkSync('..2026_b', path.join(secret, '..data_tmp'));
  fs.renameSync(path.join(secret, '..data_tmp'), path.join(secret, '..data'));
  fs.rmSync(path.join(secret, '..2026_a'), { recursive: true });

  t.equal(src.check(), true);
  t.equal(src.current.material?.fingerprint256, fp(pair2));
  t.equal(seen.length, 1);
  t.equal(src.check(), false);
});

t.test('listeners: a throwing one is logged, the others still run; onChange returns an unsubscribe', async (t) => {
  const { file, dir } = setup(t, TLS, pair1);
  const { log, warns } = capture();
  const src = WebConfigSource.load({ path: file, log });
  t.teardown(() => src.close());
  src.onChange(() => {
    throw new Error('boom');
  });
  const seen = changes(src);
  let removedCalls = 0;
  const off = src.onChange(() => removedCalls++);
  off();
  writePair(dir, pair2);
  t.equal(src.check(), true);
  t.equal(seen.length, 1);
  t.equal(removedCalls, 0);
  t.match(warns(), [{ msg: 'web config listener failed', fields: { err: 'boom' } }]);
});

t.test('start() polls on its own timer; close() stops it', async (t) => {
  const { file, dir } = setup(t, TLS, pair1);
  const { log } = capture();
  const src = WebConfigSource.load({ path: file, log, intervalMs: 10 });
  t.teardown(() => src.close());
  const seen = changes(src);
  src.start();
  src.start();
  writePair(dir, pair2);
  await until('the timer took the new certificate', () => src.current.material?.fingerprint256 === fp(pair2));
  t.equal(seen.length, 1, 'once, though start() was called twice');
  src.close();
  writePair(dir, pair3);
  t.equal(src.check(), true, 'check() still works after close()');
  t.equal(seen.length, 1, 'but the listeners are gone');
});
