/**
 * Test certificates made with the real openssl CLI (provisioned by test/support/provision.sh): a CA, and leaf
 * certificates it signs for servers (SANs) and clients (CN = user, O = groups), each as PEM files in a directory.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

export interface Ca extends KeyPair {
  dir: string;
  name: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(cert: string, key: string): KeyPair {
  return { cert, key, certPem: fs.readFileSync(cert, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
}

/** A self-signed CA (P-256) named `name` under `dir`. */
export function makeCa(dir: string, name: string, days = 30): Ca {
  fs.mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { ...read(cert, key), dir, name };
}

export interface LeafOptions {
  /** Subject CN (a client certificate's user). */
  cn: string;
  /** Subject O entries (a client certificate's groups). */
  o?: readonly string[];
  /** subjectAltName entries as openssl writes them: `IP:127.0.0.1`, `DNS:localhost`, `URI:spiffe://x`, `email:a@b`. */
  sans?: readonly string[];
  /** clientAuth instead of serverAuth. */
  client?: boolean;
  days?: number;
  /** `rsa` for a 2048-bit RSA key; P-256 otherwise. */
  keyType?: 'ec' | 'rsa';
}

/** A leaf signed by `ca`, written as `<file>.crt` / `<file>.key` in the CA's directory. */
export function issue(ca: Ca, file: string, opts: LeafOptions): KeyPair {
  const cert = path.join(ca.dir, `${file}.crt`);
  const key = path.join(ca.dir, `${file}.key`);
  const csr = path.join(ca.dir, `${file}.csr`);
  const ext = path.join(ca.dir, `${file}.ext`);
  const subj = `/CN=${opts.cn}${(opts.o ?? []).map((o) => `/O=${o}`).join('')}`;
  const newkey = opts.keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  openssl(['req', '-new', ...newkey, '-nodes', '-keyout', key, '-out', csr, '-subj', subj, '-multivalue-rdn'], ca.dir);
  const lines = ['basicConstraints=CA:FALSE', `extendedKeyUsage=${opts.client === true ? 'clientAuth' : 'serverAuth'}`];
  if (opts.sans !== undefined && opts.sans.length > 0) lines.push(`subjectAltName=${opts.sans.join(',')}`);
  fs.writeFileSync(ext, `${lines.join('\n')}\n`);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', String(opts.days ?? 30), '-extfile', ext],
    ca.dir,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
  return read(cert, key);
}

/** A server certificate for the loopback addresses. */
export function serverCert(ca: Ca, file: string, cn = 'localhost'): KeyPair {
  return issue(ca, file, { cn, sans: ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'] });
}
