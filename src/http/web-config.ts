/**
 * A pure parser of Prometheus exporter-toolkit's web configuration file (`--web.config.file`, the format of
 * node_exporter, Prometheus and kube-state-metrics: `prometheus/exporter-toolkit:docs/web-configuration.md`), with
 * exporter-toolkit's rules (`web/tls_config.go`, `web/handler.go`) and a few of podvisor's own:
 *
 * - strict: any unknown key, at any level, is an error (exporter-toolkit parses with `yaml.UnmarshalStrict`), and so
 *   is a duplicate key;
 * - YAML 1.1 scalars, as Go's yaml.v2 reads them: `yes`/`no`/`on`/`off` are booleans, and a string key takes any
 *   scalar as written (`X-XSS-Protection: 0` is the string `0`); `~` or an empty value means unset;
 * - relative paths (`cert_file`, `key_file`, `client_ca_file`) are resolved against `baseDir`, the file's directory;
 * - `tls_server_config` turns TLS on as soon as any of its keys is set; it then needs a certificate and a key;
 * - `cipher_suites` takes Go's names of the secure TLS 1.0–1.2 suites (`tls.CipherSuites()`) and becomes an OpenSSL
 *   cipher string for Node; TLS 1.3 suites are not configurable, as in Go;
 * - `http2: true` is refused: podvisor serves HTTP/1.1 only;
 * - `basic_auth_users` hashes are checked at load (bcryptHashProblem), as exporter-toolkit's `validateUsers` does;
 * - `client_allowed_sans` needs a client-auth policy that demands a certificate (exporter-toolkit v0.17).
 *
 * Every problem is a ConfigError of one line: `web config <source>: <key path>: <what is wrong>`. Secrets (inline keys,
 * hashes) are never repeated in a message.
 */
import path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import { bcryptHashProblem } from './basic-auth.js';

/** exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType` names); `RequireClientCert` is read as `RequireAnyClientCert`. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** `tls_server_config`, checked and with its paths resolved. Exactly one of certFile/certPem and of keyFile/keyPem is set. */
export interface TlsServerConfig {
  certFile?: string;
  keyFile?: string;
  /** Inline `cert`. */
  certPem?: string;
  /** Inline `key`. */
  keyPem?: string;
  clientAuthType: ClientAuthType;
  clientCaFile?: string;
  /** Inline `client_ca`. */
  clientCaPem?: string;
  /** A client certificate must carry one of these SANs (DNS, e-mail, IP or URI), exactly; empty: no such check. */
  clientAllowedSans: readonly string[];
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** Node's `ciphers` (OpenSSL names) from `cipher_suites`: the TLS ≤1.2 suites allowed; TLS 1.3 keeps Node's defaults. */
  ciphers?: string;
  /** Node's `ecdhCurve` from `curve_preferences`, e.g. `X25519:P-256`. */
  ecdhCurve?: string;
}

export interface WebConfig {
  /** Absent: plain HTTP (no `tls_server_config`, or one with no key set). */
  tls?: TlsServerConfig;
  /** podvisor serves HTTP/1.1 only: `http2: true` is refused. */
  http2: false;
  /** `http_server_config.headers`, set on every answer. */
  headers: Readonly<Record<string, string>>;
  /** user → bcrypt hash; empty: no basic auth. */
  basicAuthUsers: ReadonlyMap<string, string>;
  /** Absent when `rate_limit` is unset or its interval is 0. A burst of 0 with an interval refuses every request, as in exporter-toolkit. */
  rateLimit?: { intervalMs: number; burst: number };
}

/** The keys each level of the file takes. */
export const WEB_CONFIG_KEYS = {
  top: ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'],
  tls_server_config: [
    'cert_file',
    'key_file',
    'cert',
    'key',
    'client_auth_type',
    'client_ca_file',
    'client_ca',
    'client_allowed_sans',
    'min_version',
    'max_version',
    'cipher_suites',
    'curve_preferences',
    'prefer_server_cipher_suites',
  ],
  http_server_config: ['http2', 'headers'],
  rate_limit: ['interval', 'burst'],
} as const;

/** exporter-toolkit's `min_version`/`max_version` names, lowest first, with Node's names. */
const TLS_VERSIONS: ReadonlyArray<readonly [string, SecureVersion]> = [
  ['TLS10', 'TLSv1'],
  ['TLS11', 'TLSv1.1'],
  ['TLS12', 'TLSv1.2'],
  ['TLS13', 'TLSv1.3'],
];

/** Go's `tls.CipherSuites()` for TLS 1.0–1.2 (the secure list, ECDHE only since Go moved RSA key exchange to the insecure one) → OpenSSL names. */
export const GO_CIPHER_SUITES: ReadonlyMap<string, string> = new Map([
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', 'ECDHE-ECDSA-AES128-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'ECDHE-ECDSA-AES256-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'ECDHE-RSA-AES128-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', 'ECDHE-RSA-AES256-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
]);

/** Go's TLS 1.3 suite names: in `tls.CipherSuites()`, but Go ignores them in a config (TLS 1.3 suites are not configurable). */
const GO_TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);

/** exporter-toolkit's `curve_preferences` names → OpenSSL group names. */
const CURVES: ReadonlyMap<string, string> = new Map([
  ['CurveP256', 'P-256'],
  ['CurveP384', 'P-384'],
  ['CurveP521', 'P-521'],
  ['X25519', 'X25519'],
]);

/** The headers `http_server_config.headers` may set, with the values allowed (undefined: any), as `web/handler.go` has them. */
const HEADERS: ReadonlyMap<string, readonly string[] | undefined> = new Map([
  ['Strict-Transport-Security', undefined],
  ['X-Content-Type-Options', ['nosniff']],
  ['X-Frame-Options', ['deny', 'sameorigin']],
  ['X-XSS-Protection', undefined],
  ['Content-Security-Policy', undefined],
]);

const GO_DURATION_UNITS_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A Go duration (`time.ParseDuration`: `1s`, `100ms`, `1h30m`, `1.5s`, `-2s`, bare `0`) in milliseconds, or undefined
 * when the text is not one.
 */
export function parseGoDuration(text: string): number | undefined {
  const m = /^([-+]?)(.+)$/.exec(text);
  if (m === null) return undefined;
  const body = m[2] ?? '';
  if (body === '0') return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let at = 0;
  while (at < body.length) {
    part.lastIndex = at;
    const p = part.exec(body);
    if (p === null) return undefined;
    ms += Number(p[1]) * (GO_DURATION_UNITS_MS[p[2] ?? ''] ?? NaN);
    at = part.lastIndex;
  }
  if (at === 0 || !Number.isFinite(ms)) return undefined;
  return m[1] === '-' ? -ms : ms;
}

/** A YAML node as the walker sees it once aliases are resolved. */
type Node = unknown;

/** Walks the parsed document, turning every problem into a one-line ConfigError naming the file and the key path. */
class Reader {
  readonly #doc: Document;
  readonly #source: string;

  constructor(doc: Document, source: string) {
    this.#doc = doc;
    this.#source = source;
  }

  fail(at: string, what: string): never {
    throw new ConfigError(`web config ${this.#source}: ${at === '' ? '' : `${at}: `}${what}`);
  }

  #resolve(node: Node): Node {
    if (isAlias(node)) return node.resolve(this.#doc);
    return node;
  }

  /** True for a missing value, `~`, `null` or an empty value: unset, as yaml.v2 leaves a Go field at its zero value. */
  isUnset(node: Node): boolean {
    const n = this.#resolve(node);
    return n === null || n === undefined || (isScalar(n) && n.value === null);
  }

  #kind(n: Node): string {
    if (isMap(n)) return 'a map';
    if (isSeq(n)) return 'a list';
    if (isScalar(n)) return typeof n.value === 'string' ? 'a string' : `${typeof n.value} ${String(n.value)}`;
    return 'an unknown node';
  }

  /** The entries of a map (unset: none), each key checked against `allowed` when given. */
  map(node: Node, at: string, allowed?: readonly string[]): Array<[string, Node, string]> {
    if (this.isUnset(node)) return [];
    const n = this.#resolve(node);
    if (!isMap(n)) this.fail(at, `must be a map, not ${this.#kind(n)}`);
    const out: Array<[string, Node, string]> = [];
    for (const pair of n.items) {
      const k = this.#resolve(pair.key);
      if (!isScalar(k) || k.value === null) this.fail(at, `has a key that is not a string (${this.#kind(k)})`);
      const key = this.#text(k);
      if (key === '<<' && k.type === 'PLAIN') this.fail(at, 'YAML merge keys (<<) are not supported: write the keys out');
      const keyPath = at === '' ? key : `${at}.${key}`;
      if (allowed !== undefined && !allowed.includes(key))
        this.fail('', `unknown key ${keyPath} (known keys${at === '' ? '' : ` of ${at}`}: ${allowed.join(', ')})`);
      out.push([key, pair.value, keyPath]);
    }
    return out;
  }

  #text(n: { value: unknown; source?: string }): string {
    if (typeof n.value === 'string') return n.value;
    return typeof n.source === 'string' ? n.source : String(n.value);
  }

  /** A string key: any scalar as written (yaml.v2 decodes `0` or `yes` into a Go string as `"0"`, `"yes"`); unset or `""`: undefined. */
  string(node: Node, at: string): string | undefined {
    if (this.isUnset(node)) return undefined;
    const n = this.#resolve(node);
    if (!isScalar(n)) this.fail(at, `must be a string, not ${this.#kind(n)}`);
    const s = this.#text(n);
    return s === '' ? undefined : s;
  }

  bool(node: Node, at: string): boolean | undefined {
    if (this.isUnset(node)) return undefined;
    const n = this.#resolve(node);
    if (!isScalar(n) || typeof n.value !== 'boolean') this.fail(at, `must be true or false, not ${this.#kind(n)}`);
    return n.value;
  }

  int(node: Node, at: string): number | undefined {
    if (this.isUnset(node)) return undefined;
    const n = this.#resolve(node);
    if (!isScalar(n) || typeof n.value !== 'number' || !Number.isSafeInteger(n.value)) this.fail(at, `must be an integer, not ${this.#kind(n)}`);
    return n.value;
  }

  /** A list of strings (unset: empty), each item with its path for messages. */
  strings(node: Node, at: string): Array<[string, string]> {
    if (this.isUnset(node)) return [];
    const n = this.#resolve(node);
    if (!isSeq(n)) this.fail(at, `must be a list of strings, not ${this.#kind(n)}`);
    return n.items.map((item, i) => {
      const itemAt = `${at}[${i}]`;
      const s = this.string(item, itemAt);
      if (s === undefined) this.fail(itemAt, 'must be a non-empty string');
      return [s, itemAt];
    });
  }
}

/**
 * Parses the text of a web config file. `baseDir` resolves relative paths (the file's directory); `source` names the
 * file in messages. Throws ConfigError (one line) on any problem. An empty file, or `{}`, is plain HTTP with no auth.
 */
export function parseWebConfig(text: string, baseDir: string, source: string): WebConfig {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const line = (first.message.split('\n')[0] ?? first.code).replace(/:$/, '');
    throw new ConfigError(`web config ${source}: not valid YAML: ${line}`);
  }
  const r = new Reader(doc, source);
  if (!r.isUnset(doc.contents) && !isMap(doc.contents)) {
    r.fail('', `must be a map of ${WEB_CONFIG_KEYS.top.join(', ')}, not ${isSeq(doc.contents) ? 'a list' : 'a scalar'}`);
  }
  const config: WebConfig = { http2: false, headers: Object.freeze({}), basicAuthUsers: new Map() };
  for (const [key, value, at] of r.map(doc.contents, '', WEB_CONFIG_KEYS.top)) {
    switch (key) {
      case 'tls_server_config': {
        const tls = parseTls(r, value, at, baseDir);
        if (tls !== undefined) config.tls = tls;
        break;
      }
      case 'http_server_config':
        config.headers = parseHttp(r, value, at);
        break;
      case 'basic_auth_users':
        config.basicAuthUsers = parseUsers(r, value, at);
        break;
      case 'rate_limit': {
        const limit = parseRateLimit(r, value, at);
        if (limit !== undefined) config.rateLimit = limit;
        break;
      }
    }
  }
  return config;
}

function parseTls(r: Reader, node: Node, at: string, baseDir: string): TlsServerConfig | undefined {
  const v = new Map<string, [Node, string]>();
  for (const [key, value, keyAt] of r.map(node, at, WEB_CONFIG_KEYS.tls_server_config)) if (!r.isUnset(value)) v.set(key, [value, keyAt]);
  // As exporter-toolkit's IsEnabled, but any key counts: a tls_server_config that only sets min_version is a mistake to report, not a reason for plain HTTP.
  if (v.size === 0) return undefined;
  const str = (key: string): string | undefined => {
    const e = v.get(key);
    return e === undefined ? undefined : r.string(e[0], e[1]);
  };
  const file = (key: string): string | undefined => {
    const p = str(key);
    return p === undefined ? undefined : path.resolve(baseDir, p);
  };
  const one = (fileKey: string, inlineKey: string, what: 'cert' | 'key'): [string | undefined, string | undefined] => {
    const f = file(fileKey);
    const inline = str(inlineKey);
    if (f !== undefined && inline !== undefined) r.fail(at, `set ${fileKey} or ${inlineKey}, not both`);
    if (f === undefined && inline === undefined) r.fail(at, `missing one of ${what} or ${what}_file`);
    return [f, inline];
  };

  const clientAuthText = str('client_auth_type') ?? 'NoClientCert';
  const clientAuthType = CLIENT_AUTH_TYPES.find((c) => c === (clientAuthText === 'RequireClientCert' ? 'RequireAnyClientCert' : clientAuthText));
  if (clientAuthType === undefined) {
    r.fail(
      `${at}.client_auth_type`,
      `${JSON.stringify(clientAuthText)} is not one of ${CLIENT_AUTH_TYPES.join(', ')} (or RequireClientCert, an old name of RequireAnyClientCert)`,
    );
  }

  const [certFile, certPem] = one('cert_file', 'cert', 'cert');
  const [keyFile, keyPem] = one('key_file', 'key', 'key');
  const clientCaFile = file('client_ca_file');
  const clientCaPem = str('client_ca');
  if (clientCaFile !== undefined && clientCaPem !== undefined) r.fail(at, 'set client_ca_file or client_ca, not both');
  if ((clientCaFile !== undefined || clientCaPem !== undefined) && clientAuthType === 'NoClientCert') {
    r.fail(
      at,
      `${clientCaFile !== undefined ? 'client_ca_file' : 'client_ca'} is set but client_auth_type is NoClientCert (client CA's have been configured without a Client Auth Policy): set client_auth_type, e.g. RequireAndVerifyClientCert`,
    );
  }

  const sansEntry = v.get('client_allowed_sans');
  const clientAllowedSans = sansEntry === undefined ? [] : r.strings(sansEntry[0], sansEntry[1]).map(([s]) => s);
  if (sansEntry !== undefined) {
    if (clientAllowedSans.length === 0) r.fail(sansEntry[1], 'is an empty list, which would refuse every client: remove the key or list the allowed SANs');
    if (clientAuthType !== 'RequireAnyClientCert' && clientAuthType !== 'RequireAndVerifyClientCert') {
      r.fail(sansEntry[1], `needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not ${clientAuthType}`);
    }
  }

  const version = (key: string, dflt: string): [SecureVersion, number, string] => {
    const name = str(key) ?? dflt;
    const i = TLS_VERSIONS.findIndex(([n]) => n === name);
    const found = TLS_VERSIONS[i];
    if (found === undefined) r.fail(`${at}.${key}`, `unknown TLS version ${JSON.stringify(name)}: one of ${TLS_VERSIONS.map(([n]) => n).join(', ')}`);
    return [found[1], i, v.has(key) ? name : `${name} (the default)`];
  };
  const [minVersion, minRank, minName] = version('min_version', 'TLS12');
  const [maxVersion, maxRank, maxName] = version('max_version', 'TLS13');
  if (minRank > maxRank) r.fail(at, `min_version ${minName} is above max_version ${maxName}`);

  const tls: TlsServerConfig = { clientAuthType, clientAllowedSans, minVersion, maxVersion };
  if (certFile !== undefined) tls.certFile = certFile;
  if (certPem !== undefined) tls.certPem = certPem;
  if (keyFile !== undefined) tls.keyFile = keyFile;
  if (keyPem !== undefined) tls.keyPem = keyPem;
  if (clientCaFile !== undefined) tls.clientCaFile = clientCaFile;
  if (clientCaPem !== undefined) tls.clientCaPem = clientCaPem;

  const suitesEntry = v.get('cipher_suites');
  if (suitesEntry !== undefined) {
    const names = r.strings(suitesEntry[0], suitesEntry[1]).map(([name, itemAt]) => {
      const openssl = GO_CIPHER_SUITES.get(name);
      if (openssl !== undefined) return openssl;
      if (GO_TLS13_SUITES.has(name)) {
        r.fail(
          itemAt,
          `${name} is a TLS 1.3 suite: TLS 1.3 suites are not configurable (Go ignores them too), cipher_suites applies to TLS 1.2 and older: remove it`,
        );
      }
      r.fail(itemAt, `unknown cipher: ${name} (one of ${[...GO_CIPHER_SUITES.keys()].join(', ')})`);
    });
    // Node keeps its TLS 1.3 suites when `ciphers` names none (checked in test/http/tls-options.test.ts), as Go does.
    if (names.length > 0) tls.ciphers = [...new Set(names)].join(':');
  }

  const curvesEntry = v.get('curve_preferences');
  if (curvesEntry !== undefined) {
    const groups = r.strings(curvesEntry[0], curvesEntry[1]).map(([name, itemAt]) => {
      const group = CURVES.get(name);
      if (group === undefined) r.fail(itemAt, `unknown curve: ${name} (one of ${[...CURVES.keys()].join(', ')})`);
      return group;
    });
    if (groups.length > 0) tls.ecdhCurve = [...new Set(groups)].join(':');
  }

  // Accepted for compatibility and otherwise ignored, as current Go ignores tls.Config.PreferServerCipherSuites.
  const prefer = v.get('prefer_server_cipher_suites');
  if (prefer !== undefined) r.bool(prefer[0], prefer[1]);
  return tls;
}

function parseHttp(r: Reader, node: Node, at: string): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  for (const [key, value, keyAt] of r.map(node, at, WEB_CONFIG_KEYS.http_server_config)) {
    if (key === 'http2') {
      if (r.bool(value, keyAt) === true) r.fail(keyAt, 'HTTP/2 is not supported by podvisor, which serves HTTP/1.1 only: remove the key or set it to false');
      continue;
    }
    for (const [name, hv, headerAt] of r.map(value, keyAt)) {
      if (!HEADERS.has(name)) r.fail(headerAt, `HTTP header ${JSON.stringify(name)} can not be configured (one of ${[...HEADERS.keys()].join(', ')})`);
      const text = r.string(hv, headerAt) ?? '';
      const allowed = HEADERS.get(name);
      if (allowed !== undefined && !allowed.includes(text)) r.fail(headerAt, `${JSON.stringify(text)} is not one of ${allowed.join(', ')}`);
      headers[name] = text;
    }
  }
  return Object.freeze(headers);
}

function parseUsers(r: Reader, node: Node, at: string): ReadonlyMap<string, string> {
  const users = new Map<string, string>();
  for (const [user, value, userAt] of r.map(node, at)) {
    const hash = r.string(value, userAt);
    if (hash === undefined) r.fail(userAt, 'has no bcrypt hash');
    const problem = bcryptHashProblem(hash);
    if (problem !== undefined) r.fail(userAt, problem);
    users.set(user, hash);
  }
  return users;
}

function parseRateLimit(r: Reader, node: Node, at: string): { intervalMs: number; burst: number } | undefined {
  let intervalMs = 0;
  let burst = 0;
  for (const [key, value, keyAt] of r.map(node, at, WEB_CONFIG_KEYS.rate_limit)) {
    if (key === 'interval') {
      if (r.isUnset(value)) continue;
      // yaml.v2 decodes a bare 0 into a time.Duration as 0 nanoseconds; any other duration needs its unit.
      const text = r.string(value, keyAt) ?? '';
      const ms = parseGoDuration(text);
      if (ms === undefined) r.fail(keyAt, `${JSON.stringify(text)} is not a duration such as 1s, 100ms or 1m30s`);
      if (ms < 0) r.fail(keyAt, `${JSON.stringify(text)} is negative`);
      intervalMs = ms;
    } else {
      const b = r.int(value, keyAt) ?? 0;
      if (b < 0) r.fail(keyAt, `${b} is negative`);
      burst = b;
    }
  }
  return intervalMs === 0 ? undefined : { intervalMs, burst };
}
