import t, { type Test } from 'tap';
import { ConfigError } from '../../src/errors.js';
import { GO_CIPHER_SUITES, parseGoDuration, parseWebConfig, type WebConfig } from '../../src/http/web-config.js';

const SOURCE = '/etc/podvisor/web.yml';
const parse = (text: string): WebConfig => parseWebConfig(text, '/etc/podvisor', SOURCE);
// A cost-10 bcrypt hash of "fakepassword" (exporter-toolkit's web/handler.go) and an htpasswd-style $2y$ one.
const HASH = '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi';
const HASH_B = '$2b$12$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi';

/** Asserts that `text` is refused with one line, naming the file, that matches `re`. */
function refuses(tt: Test, text: string, re: RegExp, what?: string): void {
  let caught: unknown;
  try {
    parse(text);
  } catch (err) {
    caught = err;
  }
  tt.ok(caught instanceof ConfigError, `${what ?? text.trim()}: a ConfigError`);
  const msg = caught instanceof Error ? caught.message : '';
  tt.match(msg, re, what ?? text.trim());
  tt.ok(msg.startsWith(`web config ${SOURCE}: `), `names the file: ${msg}`);
  tt.notOk(msg.includes('\n'), `one line: ${msg}`);
}

const TLS = 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n';

t.test('an empty file, {} or empty sections: plain HTTP, no auth', async (t) => {
  for (const text of [
    '',
    '\n',
    '# only a comment\n',
    '{}',
    '---\n',
    'tls_server_config:\nhttp_server_config:\nbasic_auth_users:\nrate_limit:\n',
    'tls_server_config: {}\n',
  ]) {
    const c = parse(text);
    t.equal(c.tls, undefined, JSON.stringify(text));
    t.equal(c.basicAuthUsers.size, 0);
    t.same(c.headers, {});
    t.equal(c.http2, false);
    t.equal(c.rateLimit, undefined);
  }
});

t.test('a full config', async (t) => {
  const c = parse(`
tls_server_config:
  cert_file: certs/server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ../ca.crt
  client_allowed_sans: [prometheus.monitoring.svc, "spiffe://cluster.local/ns/monitoring/sa/prometheus"]
  min_version: TLS13
  max_version: TLS13
  cipher_suites:
    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
  curve_preferences: [X25519, CurveP256]
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
  headers:
    Strict-Transport-Security: max-age=31536000; includeSubDomains
    X-Content-Type-Options: nosniff
    X-Frame-Options: deny
    X-XSS-Protection: 0
    Content-Security-Policy: default-src 'none'
basic_auth_users:
  prometheus: ${HASH}
  "1234": '${HASH_B}'
rate_limit:
  interval: 100ms
  burst: 5
`);
  t.same(c.tls, {
    certFile: '/etc/podvisor/certs/server.crt',
    keyFile: '/abs/server.key',
    clientAuthType: 'RequireAndVerifyClientCert',
    clientCaFile: '/etc/ca.crt',
    clientAllowedSans: ['prometheus.monitoring.svc', 'spiffe://cluster.local/ns/monitoring/sa/prometheus'],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305',
    ecdhCurve: 'X25519:P-256',
  });
  t.same(c.headers, {
    'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'deny',
    'X-XSS-Protection': '0',
    'Content-Security-Policy': "default-src 'none'",
  });
  t.same(
    [...c.basicAuthUsers],
    [
      ['prometheus', HASH],
      ['1234', HASH_B],
    ],
  );
  t.same(c.rateLimit, { intervalMs: 100, burst: 5 });
  t.ok(Object.isFrozen(c.headers), 'headers are frozen');
});

t.test('TLS defaults, inline PEM and relative paths', async (t) => {
  const c = parse(TLS);
  t.same(c.tls, {
    certFile: '/etc/podvisor/server.crt',
    keyFile: '/etc/podvisor/server.key',
    clientAuthType: 'NoClientCert',
    clientAllowedSans: [],
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
  });
  const rel = parseWebConfig(TLS, 'conf', 'conf/web.yml');
  t.equal(rel.tls?.certFile, `${process.cwd()}/conf/server.crt`, 'a relative baseDir resolves against the working directory');
  const inline = parse('tls_server_config:\n  cert: |\n    -----BEGIN CERTIFICATE-----\n    abc\n    -----END CERTIFICATE-----\n  key: "k"\n');
  t.equal(inline.tls?.certPem, '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n');
  t.equal(inline.tls?.keyPem, 'k');
  t.equal(inline.tls?.certFile, undefined);
  t.equal(parse(`${TLS}  client_auth_type: RequireClientCert\n`).tls?.clientAuthType, 'RequireAnyClientCert', 'the old name');
  for (const c of ['RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert']) {
    t.equal(parse(`${TLS}  client_auth_type: ${c}\n  client_ca: x\n`).tls?.clientAuthType, c);
  }
  t.equal(parse(`${TLS}  client_auth_type: NoClientCert\n`).tls?.clientAuthType, 'NoClientCert');
  t.same(parse(`${TLS}  cipher_suites: []\n  curve_preferences: []\n`).tls?.ciphers, undefined, 'empty lists: the defaults');
  t.equal(parse(`${TLS}  min_version: TLS10\n  max_version: TLS11\n`).tls?.minVersion, 'TLSv1');
  t.equal(parse(`${TLS}  min_version: TLS10\n  max_version: TLS11\n`).tls?.maxVersion, 'TLSv1.1');
  t.equal(parse(`${TLS}  cert: ""\n`).tls?.certFile, '/etc/podvisor/server.crt', 'an empty string is unset, as in Go');
  t.equal(parse(`${TLS}  prefer_server_cipher_suites: yes\n`).tls?.clientAuthType, 'NoClientCert', 'YAML 1.1 booleans, as yaml.v2');
});

t.test('every Go secure TLS 1.2 suite maps to an OpenSSL cipher Node knows', async (t) => {
  const { getCiphers } = await import('node:tls');
  const known = new Set(getCiphers().map((c) => c.toUpperCase()));
  t.equal(GO_CIPHER_SUITES.size, 10);
  for (const [go, openssl] of GO_CIPHER_SUITES) t.ok(known.has(openssl), `${go} → ${openssl}`);
});

t.test('unknown keys, at every level', async (t) => {
  refuses(t, 'foo: 1\n', /: unknown key foo \(known keys: tls_server_config, http_server_config, basic_auth_users, rate_limit\)$/);
  refuses(t, `${TLS}  foo: bar\n`, /: unknown key tls_server_config\.foo \(known keys of tls_server_config: cert_file,/);
  refuses(t, 'http_server_config:\n  http3: false\n', /unknown key http_server_config\.http3/);
  refuses(t, 'rate_limit:\n  period: 1s\n', /unknown key rate_limit\.period/);
  refuses(t, 'tls_config:\n  cert_file: x\n', /unknown key tls_config /, 'a misspelt section');
  refuses(t, 'basic_auth_users:\n  ? [a]\n  : x\n', /basic_auth_users: has a key that is not a string \(a list\)/);
});

t.test('duplicate keys and text that is not YAML', async (t) => {
  refuses(t, 'basic_auth_users:\n  a: x\n  a: y\n', /not valid YAML: Map keys must be unique at line 3/);
  refuses(t, `${TLS}tls_server_config: {}\n`, /not valid YAML: Map keys must be unique/);
  refuses(t, 'tls_server_config: [\n', /not valid YAML: /);
  refuses(t, 'a: 1\n---\nb: 2\n', /not valid YAML: Source contains multiple documents/);
  refuses(t, '\tfoo: bar\n', /not valid YAML: /, 'a tab indent');
});

t.test('wrong types', async (t) => {
  refuses(t, '- a\n- b\n', /web config \/etc\/podvisor\/web\.yml: must be a map of tls_server_config, .*, not a list$/);
  refuses(t, 'just text\n', /must be a map .*, not a scalar$/);
  refuses(t, 'tls_server_config: yes\n', /tls_server_config: must be a map, not boolean true$/);
  refuses(t, 'tls_server_config: [a]\n', /tls_server_config: must be a map, not a list$/);
  refuses(t, 'tls_server_config:\n  cert_file: [a]\n  key_file: b\n', /tls_server_config\.cert_file: must be a string, not a list$/);
  refuses(t, 'tls_server_config:\n  cert_file: {a: 1}\n  key_file: b\n', /tls_server_config\.cert_file: must be a string, not a map$/);
  refuses(t, `${TLS}  client_allowed_sans: a\n  client_auth_type: RequireAnyClientCert\n`, /client_allowed_sans: must be a list of strings, not a string$/);
  refuses(t, `${TLS}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [a, [b]]\n`, /client_allowed_sans\[1\]: must be a string, not a list$/);
  refuses(t, `${TLS}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [a, ""]\n`, /client_allowed_sans\[1\]: must be a non-empty string$/);
  refuses(t, `${TLS}  cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n`, /cipher_suites: must be a list of strings/);
  refuses(t, `${TLS}  prefer_server_cipher_suites: maybe\n`, /prefer_server_cipher_suites: must be true or false, not a string$/);
  refuses(t, 'http_server_config:\n  http2: "false"\n', /http_server_config\.http2: must be true or false, not a string$/);
  refuses(t, 'http_server_config:\n  headers: [X-Frame-Options]\n', /http_server_config\.headers: must be a map, not a list$/);
  refuses(t, 'http_server_config:\n  headers:\n    X-Frame-Options: [deny]\n', /headers\.X-Frame-Options: must be a string, not a list$/);
  refuses(t, 'basic_auth_users: [alice]\n', /basic_auth_users: must be a map, not a list$/);
  refuses(t, 'basic_auth_users:\n  alice: [x]\n', /basic_auth_users\.alice: must be a string, not a list$/);
  refuses(t, 'basic_auth_users:\n  alice:\n', /basic_auth_users\.alice: has no bcrypt hash$/);
  refuses(t, 'rate_limit: 1s\n', /rate_limit: must be a map, not a string$/);
  refuses(t, 'rate_limit:\n  interval: 1s\n  burst: "5"\n', /rate_limit\.burst: must be an integer, not a string$/);
  refuses(t, 'rate_limit:\n  interval: 1s\n  burst: 1.5\n', /rate_limit\.burst: must be an integer, not number 1\.5$/);
});

t.test('bad enum values', async (t) => {
  refuses(
    t,
    `${TLS}  client_auth_type: Foo\n`,
    /tls_server_config\.client_auth_type: "Foo" is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert/,
  );
  refuses(t, `${TLS}  client_auth_type: requireandverifyclientcert\n`, /"requireandverifyclientcert" is not one of/, 'names are case-sensitive');
  refuses(t, `${TLS}  min_version: TLS14\n`, /tls_server_config\.min_version: unknown TLS version "TLS14": one of TLS10, TLS11, TLS12, TLS13$/);
  refuses(t, `${TLS}  max_version: TLSv1.3\n`, /tls_server_config\.max_version: unknown TLS version "TLSv1\.3"/);
  refuses(t, `${TLS}  min_version: TLS13\n  max_version: TLS12\n`, /tls_server_config: min_version TLS13 is above max_version TLS12$/);
  refuses(t, `${TLS}  max_version: TLS11\n`, /min_version TLS12 \(the default\) is above max_version TLS11$/);
  refuses(
    t,
    `${TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, FOO]\n`,
    /cipher_suites\[1\]: unknown cipher: FOO \(one of TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,/,
  );
  refuses(t, `${TLS}  cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256]\n`, /unknown cipher: ECDHE-RSA-AES128-GCM-SHA256/, 'OpenSSL names are not Go names');
  refuses(
    t,
    `${TLS}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n`,
    /unknown cipher: TLS_RSA_WITH_AES_128_CBC_SHA/,
    'RSA key exchange is not in the secure list',
  );
  refuses(t, `${TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256]\n`, /unknown cipher/, 'an insecure Go suite');
  refuses(
    t,
    `${TLS}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n`,
    /cipher_suites\[0\]: TLS_AES_128_GCM_SHA256 is a TLS 1\.3 suite: TLS 1\.3 suites are not configurable/,
  );
  refuses(t, `${TLS}  curve_preferences: [P-256]\n`, /curve_preferences\[0\]: unknown curve: P-256 \(one of CurveP256, CurveP384, CurveP521, X25519\)$/);
});

t.test('certificate, key and client CA rules', async (t) => {
  refuses(t, 'tls_server_config:\n  key_file: k\n', /tls_server_config: missing one of cert or cert_file$/);
  refuses(t, 'tls_server_config:\n  cert_file: c\n', /tls_server_config: missing one of key or key_file$/);
  refuses(t, 'tls_server_config:\n  min_version: TLS13\n', /missing one of cert or cert_file/, 'any TLS key turns TLS on');
  refuses(t, 'tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n', /missing one of cert or cert_file/);
  refuses(t, `${TLS}  cert: x\n`, /tls_server_config: set cert_file or cert, not both$/);
  refuses(t, `${TLS}  key: x\n`, /tls_server_config: set key_file or key, not both$/);
  refuses(
    t,
    `${TLS}  client_ca_file: ca.crt\n`,
    /tls_server_config: client_ca_file is set but client_auth_type is NoClientCert \(client CA's have been configured without a Client Auth Policy\)/,
  );
  refuses(t, `${TLS}  client_ca: x\n  client_auth_type: NoClientCert\n`, /client_ca is set but client_auth_type is NoClientCert/);
  refuses(t, `${TLS}  client_ca: x\n  client_ca_file: y\n  client_auth_type: RequestClientCert\n`, /set client_ca_file or client_ca, not both/);
  refuses(
    t,
    `${TLS}  client_allowed_sans: [a]\n  client_auth_type: VerifyClientCertIfGiven\n`,
    /client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not VerifyClientCertIfGiven$/,
  );
  refuses(t, `${TLS}  client_allowed_sans: [a]\n`, /needs client_auth_type .* not NoClientCert$/);
  refuses(
    t,
    `${TLS}  client_allowed_sans: []\n  client_auth_type: RequireAnyClientCert\n`,
    /client_allowed_sans: is an empty list, which would refuse every client/,
  );
});

t.test('http_server_config', async (t) => {
  t.equal(parse('http_server_config:\n  http2: false\n').http2, false);
  t.equal(parse('http_server_config:\n  http2: no\n').http2, false, 'YAML 1.1 no');
  refuses(
    t,
    'http_server_config:\n  http2: true\n',
    /http_server_config\.http2: HTTP\/2 is not supported by podvisor, which serves HTTP\/1\.1 only: remove the key or set it to false$/,
  );
  refuses(
    t,
    'http_server_config:\n  headers:\n    Server: podvisor\n',
    /headers\.Server: HTTP header "Server" can not be configured \(one of Strict-Transport-Security,/,
  );
  refuses(
    t,
    'http_server_config:\n  headers:\n    x-frame-options: deny\n',
    /HTTP header "x-frame-options" can not be configured/,
    'names are exact, as in Go',
  );
  refuses(t, 'http_server_config:\n  headers:\n    X-Frame-Options: allow\n', /headers\.X-Frame-Options: "allow" is not one of deny, sameorigin$/);
  refuses(t, 'http_server_config:\n  headers:\n    X-Frame-Options: DENY\n', /"DENY" is not one of deny, sameorigin/);
  refuses(t, 'http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n', /X-Content-Type-Options: "sniff" is not one of nosniff$/);
  refuses(t, 'http_server_config:\n  headers:\n    X-Content-Type-Options:\n', /X-Content-Type-Options: "" is not one of nosniff$/);
  t.same(parse('http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n    X-XSS-Protection: 1; mode=block\n').headers, {
    'X-Frame-Options': 'sameorigin',
    'X-XSS-Protection': '1; mode=block',
  });
});

t.test('basic_auth_users hashes', async (t) => {
  t.equal(parse('basic_auth_users: {}\n').basicAuthUsers.size, 0, 'an empty map: no basic auth');
  for (const [hash, re] of [
    ['plaintext', /basic_auth_users\.alice: not a bcrypt hash/],
    [HASH.slice(0, 59), /not a bcrypt hash/],
    [`${HASH}x`, /not a bcrypt hash/],
    [HASH.replace('$2y$', '$1$'), /not a bcrypt hash/],
    [HASH.replace('$10$', '$03$'), /bcrypt cost 3 is outside 4\.\.31/],
    [HASH.replace('$10$', '$32$'), /bcrypt cost 32 is outside 4\.\.31/],
  ] as const) {
    refuses(t, `basic_auth_users:\n  alice: '${hash}'\n`, re, hash);
    let msg = '';
    try {
      parse(`basic_auth_users:\n  alice: '${hash}'\n`);
    } catch (err) {
      msg = err instanceof Error ? err.message : '';
    }
    t.notOk(msg.includes(hash), 'the hash is not repeated');
  }
});

t.test('rate_limit and Go durations', async (t) => {
  t.same(parse('rate_limit:\n  interval: 1s\n  burst: 10\n').rateLimit, { intervalMs: 1000, burst: 10 });
  t.same(
    parse('rate_limit:\n  interval: 1m30s\n').rateLimit,
    { intervalMs: 90_000, burst: 0 },
    'burst 0 is kept (it refuses every request, as in exporter-toolkit)',
  );
  t.equal(parse('rate_limit:\n  interval: 0\n  burst: 10\n').rateLimit, undefined, 'interval 0 disables');
  t.equal(parse('rate_limit:\n  interval: 0s\n').rateLimit, undefined);
  t.equal(parse('rate_limit:\n  burst: 10\n').rateLimit, undefined, 'no interval: disabled');
  refuses(t, 'rate_limit:\n  interval: 1\n', /rate_limit\.interval: "1" is not a duration such as 1s, 100ms or 1m30s$/);
  refuses(t, 'rate_limit:\n  interval: 1 s\n', /"1 s" is not a duration/);
  refuses(t, 'rate_limit:\n  interval: 1d\n', /"1d" is not a duration/);
  refuses(t, 'rate_limit:\n  interval: -1s\n', /rate_limit\.interval: "-1s" is negative$/);
  refuses(t, 'rate_limit:\n  interval: 1s\n  burst: -1\n', /rate_limit\.burst: -1 is negative$/);

  t.equal(parseGoDuration('100ms'), 100);
  t.equal(parseGoDuration('1h2m3s'), 3_723_000);
  t.equal(parseGoDuration('1.5s'), 1500);
  t.equal(parseGoDuration('.5s'), 500);
  t.equal(parseGoDuration('1.s'), 1000);
  t.equal(parseGoDuration('250us'), 0.25);
  t.equal(parseGoDuration('250µs'), 0.25);
  t.equal(parseGoDuration('1000000ns'), 1);
  t.equal(parseGoDuration('-2s'), -2000);
  t.equal(parseGoDuration('+2s'), 2000);
  t.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '1', 's', '1ss', '1.2.3s', 'ms', '1s ', ' 1s', '+', '-', '1S', '1sec']) t.equal(parseGoDuration(bad), undefined, JSON.stringify(bad));
});

t.test('aliases resolve as in yaml.v2; merge keys are refused', async (t) => {
  const c = parse(`basic_auth_users:\n  a: &h '${HASH}'\n  b: *h\n`);
  t.equal(c.basicAuthUsers.get('b'), HASH);
  refuses(t, `basic_auth_users: &u\n  a: '${HASH}'\n  <<: *u\n`, /basic_auth_users: YAML merge keys \(<<\) are not supported: write the keys out$/);
  t.equal(parse(`basic_auth_users:\n  "<<": '${HASH}'\n`).basicAuthUsers.get('<<'), HASH, 'a quoted "<<" is a plain key');
});
