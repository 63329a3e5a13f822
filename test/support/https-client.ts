/**
 * One HTTPS (or HTTP) GET with everything a TLS test sets: the CA to trust, a client certificate, SNI, protocol
 * versions, headers; a fresh connection each time (no agent), so each call is a new handshake. Resolves with the
 * status, headers, body and the server certificate's fingerprint; rejects with the handshake or socket error.
 */
import http from 'node:http';
import https from 'node:https';
import { TLSSocket, type SecureVersion } from 'node:tls';

export interface GetOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** Skip verification of the server certificate. */
  insecure?: boolean;
  headers?: Record<string, string>;
  method?: string;
  timeoutMs?: number;
}

export interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** SHA-256 fingerprint of the server's certificate (HTTPS only). */
  fingerprint256?: string;
}

export function get(url: string, opts: GetOptions = {}): Promise<Got> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const common = { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false as const, timeout: opts.timeoutMs ?? 30_000 };
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const sock = res.socket;
        const got: Got = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
        if (sock instanceof TLSSocket) {
          const fp = sock.getPeerCertificate().fingerprint256;
          if (typeof fp === 'string') got.fingerprint256 = fp;
        }
        resolve(got);
      });
    };
    const req = secure
      ? https.request(
          u,
          {
            ...common,
            ...(opts.ca === undefined ? {} : { ca: opts.ca }),
            ...(opts.cert === undefined ? {} : { cert: opts.cert }),
            ...(opts.key === undefined ? {} : { key: opts.key }),
            ...(opts.servername === undefined ? {} : { servername: opts.servername }),
            ...(opts.minVersion === undefined ? {} : { minVersion: opts.minVersion }),
            ...(opts.maxVersion === undefined ? {} : { maxVersion: opts.maxVersion }),
            rejectUnauthorized: opts.insecure !== true,
          },
          onResponse,
        )
      : http.request(u, common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}
