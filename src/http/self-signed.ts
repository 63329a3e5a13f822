/**
 * A self-signed serving certificate made in-process, with no library: what podvisor serves under `--tls=auto|on` when
 * no certificate is configured, as kube-rbac-proxy and the kubelet do (client-go `certutil.GenerateSelfSignedCertKey`:
 * valid for a year, backdated by an hour, a new one on every start, so clients must pin it or skip verification).
 *
 * client-go makes a throw-away CA and a leaf signed by it; here there is one certificate, an end-entity one: an EC P-256
 * key, a random 16-byte serial, subject = issuer = CN, `basicConstraints` critical CA:FALSE, `keyUsage` critical
 * digitalSignature, `extKeyUsage` serverAuth, a `subjectKeyIdentifier`, and the `subjectAltName` DNS names and IP
 * addresses clients check. A client that pins this very certificate as its trust anchor accepts it: OpenSSL (Node's
 * `ca`, `curl --cacert`, both checked in the tests) and Go (Prometheus' `ca_file`: a certificate found in the root pool
 * is a chain by itself) take a trusted self-signed certificate as it is. CA:FALSE rather than CA:TRUE because
 * rustls/webpki and Firefox refuse a CA certificate served as a server's own. Written with a small DER encoder (X.690)
 * into an X.509 v3 certificate (RFC 5280) and signed with ECDSA-SHA256.
 */
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export interface SelfSignedOptions {
  /** Subject and issuer CN (the host or node name); cut to 64 characters, the X.520 bound. */
  commonName: string;
  /** subjectAltName DNS names (ASCII; IDNs in their xn-- form). */
  dnsNames: readonly string[];
  /** subjectAltName IP addresses, IPv4 or IPv6 (no zone). */
  ipAddresses: readonly string[];
  /** Days of validity from now (default 365). */
  validDays?: number;
  /** The time to date it from (default: now). */
  now?: Date;
}

export interface SelfSigned {
  certPem: string;
  /** PKCS#8 PEM of the P-256 private key. */
  keyPem: string;
  /** SHA-256 fingerprint as Node writes it (`AB:CD:…`). */
  fingerprint256: string;
  notAfter: Date;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Generates a key pair and a self-signed certificate for it. Throws RangeError on a bad name, address or validity. */
export function selfSignedCertificate(opts: SelfSignedOptions): SelfSigned {
  const validDays = opts.validDays ?? 365;
  if (!Number.isFinite(validDays) || validDays <= 0) throw new RangeError(`certificate validity must be a positive number of days, not ${validDays}`);
  const now = (opts.now ?? new Date()).getTime();
  if (!Number.isFinite(now)) throw new RangeError('certificate start time is not a valid date');
  const dnsNames = opts.dnsNames.map(dnsName);
  const ips = opts.ipAddresses.map(ipBytes);
  // DER times have whole seconds: the dates returned are the ones encoded.
  const notBefore = new Date(Math.floor((now - HOUR_MS) / 1000) * 1000);
  const notAfter = new Date(Math.floor((now + validDays * DAY_MS) / 1000) * 1000);

  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = der.sequence(der.set(der.sequence(der.oid(OID.commonName), der.utf8String([...opts.commonName].slice(0, 64).join('')))));
  const sigAlg = der.sequence(der.oid(OID.ecdsaWithSha256));

  const extensions = [
    // CA:FALSE: cA is DEFAULT FALSE, so DER leaves it out and the SEQUENCE is empty.
    extension(OID.basicConstraints, true, der.sequence()),
    // digitalSignature, bit 0 of the named bits: one byte whose 7 low bits are unused.
    extension(OID.keyUsage, true, der.bitString(Buffer.from([0b1000_0000]), 7)),
    extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
    extension(OID.subjectKeyIdentifier, false, der.octetString(createHash('sha1').update(spkiKeyBits(spki)).digest())),
  ];
  if (dnsNames.length + ips.length > 0) {
    const general = [...dnsNames.map((n) => der.implicit(2, Buffer.from(n, 'ascii'))), ...ips.map((ip) => der.implicit(7, ip))];
    extensions.push(extension(OID.subjectAltName, false, der.sequence(...general)));
  }

  const tbs = der.sequence(
    der.explicit(0, der.integer(Buffer.from([2]))), // v3
    der.integer(serialNumber()),
    sigAlg,
    name,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    name,
    spki,
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, privateKey);
  const cert = der.sequence(tbs, sigAlg, der.bitString(signature, 0));

  const certPem = pem('CERTIFICATE', cert);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, fingerprint256: new X509Certificate(certPem).fingerprint256, notAfter };
}

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  // `critical` is DEFAULT FALSE: DER leaves a default value out.
  return critical ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

/** 16 random bytes, positive and with no leading zero byte (a minimal DER INTEGER of 126 random bits), never 0. */
function serialNumber(): Buffer {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x3f) | 0x40;
  return b;
}

/** The subjectPublicKey bits of a DER SubjectPublicKeyInfo (RFC 5280 §4.2.1.2 method 1 hashes these). */
function spkiKeyBits(spki: Buffer): Buffer {
  const outer = der.read(spki, 0);
  const algorithm = der.read(spki, outer.contentStart);
  const bits = der.read(spki, algorithm.end);
  if (outer.tag !== 0x30 || algorithm.tag !== 0x30 || bits.tag !== 0x03) throw new Error('unexpected SubjectPublicKeyInfo from node:crypto');
  return spki.subarray(bits.contentStart + 1, bits.end); // past the unused-bits byte
}

function dnsName(name: string): string {
  if (name === '' || name.length > 253 || !/^[\x21-\x7e]+$/.test(name))
    throw new RangeError(`not an ASCII DNS name for a certificate: ${JSON.stringify(name)}`);
  return name;
}

/** The 4 or 16 bytes of an IP address. */
function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip) || ip.includes('%')) throw new RangeError(`not an IP address for a certificate: ${JSON.stringify(ip)}`);
  let text = ip;
  // A trailing dotted quad (::ffff:192.0.2.1) is the last two groups.
  const quad = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad !== null) {
    const b = (quad[2] ?? '').split('.').map(Number);
    text = `${quad[1]}${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function pem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The few DER (X.690) encodings an X.509 certificate needs. */
const der = {
  tlv(tag: number, content: Buffer): Buffer {
    return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
  },
  sequence(...items: Buffer[]): Buffer {
    return der.tlv(0x30, Buffer.concat(items));
  },
  set(...items: Buffer[]): Buffer {
    // SET OF sorts its encodings; every SET here holds one element.
    return der.tlv(0x31, Buffer.concat(items.slice().sort((a, b) => Buffer.compare(a, b))));
  },
  boolean(v: boolean): Buffer {
    return der.tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
  },
  /** An unsigned big-endian integer, made minimal: no redundant leading zeros, a 0 byte added before a high bit. */
  integer(bytes: Buffer): Buffer {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const v = bytes.subarray(i);
    return der.tlv(0x02, (v[0] ?? 0) >= 0x80 || v.length === 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
  },
  bitString(bytes: Buffer, unusedBits: number): Buffer {
    return der.tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
  },
  octetString(bytes: Buffer): Buffer {
    return der.tlv(0x04, bytes);
  },
  oid(dotted: string): Buffer {
    const arcs = dotted.split('.').map(Number);
    const out: number[] = [];
    const push = (n: number): void => {
      const b = [n & 0x7f];
      for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) b.unshift((v & 0x7f) | 0x80);
      out.push(...b);
    };
    push((arcs[0] ?? 0) * 40 + (arcs[1] ?? 0));
    for (const a of arcs.slice(2)) push(a);
    return der.tlv(0x06, Buffer.from(out));
  },
  utf8String(s: string): Buffer {
    return der.tlv(0x0c, Buffer.from(s, 'utf8'));
  },
  /** UTCTime through 2049, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
  time(d: Date): Buffer {
    const iso = d.toISOString(); // 2026-01-02T03:04:05.000Z
    const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
    const year = d.getUTCFullYear();
    return year >= 1950 && year < 2050 ? der.tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : der.tlv(0x18, Buffer.from(digits, 'ascii'));
  },
  /** [n] EXPLICIT: a constructed context tag around a whole encoding. */
  explicit(n: number, inner: Buffer): Buffer {
    return der.tlv(0xa0 | n, inner);
  },
  /** [n] IMPLICIT of a primitive type: the context tag in place of the type's own. */
  implicit(n: number, content: Buffer): Buffer {
    return der.tlv(0x80 | n, content);
  },
  /** Reads the tag and length of the element at `at` (definite lengths only: DER). */
  read(buf: Buffer, at: number): { tag: number; contentStart: number; end: number } {
    const tag = buf[at] ?? -1;
    let len = buf[at + 1] ?? 0;
    let start = at + 2;
    if (len >= 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] ?? 0);
      start += n;
    }
    return { tag, contentStart: start, end: start + len };
  },
};

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
