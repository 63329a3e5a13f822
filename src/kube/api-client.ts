/**
 * A narrow HTTPS JSON client for the Kubernetes API server: POST a JSON body, get the status and the parsed body. Just
 * enough for TokenReview and SubjectAccessReview (reviews.ts); no watch, no list, no dependency beyond node:https.
 *
 * - One keep-alive agent, trusting the endpoint's CA (or nothing, with `insecure`), presenting its client certificate.
 * - The bearer token from a file (the projected service account token) is re-read once it is older than
 *   `tokenMaxAgeMs` (60 s, as client-go and @kubernetes/client-node), and at once after a 401, when the request is
 *   retried once if the token changed. A failed re-read keeps the last good token (client-go
 *   `transport/token_source.go`).
 * - A request on a kept-alive socket the server had already closed (ECONNRESET/EPIPE before any answer) is retried
 *   once on a fresh socket: both reviews are side-effect free.
 * - Every request has one deadline covering connect, the answer and any retry: past it the request is destroyed and
 *   fails with KubeApiError kind `timeout`.
 * - Bodies are limited to 1 MiB; a 2xx body that is not JSON fails with kind `invalid`. Tokens are never logged nor
 *   put in an error message.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { ConfigError, errorMessage } from '../errors.js';
import { errnoCode } from '../guards.js';
import { silentLogger, type Logger } from '../log.js';
import type { KubeEndpoint } from './kubeconfig.js';

export type KubeApiErrorKind = 'timeout' | 'transport' | 'status' | 'invalid';

/**
 * A call to the Kubernetes API server that failed: `timeout` (no answer in time), `transport` (connect, TLS, reset,
 * unreadable token file), `status` (an unexpected HTTP status; `httpStatus` says which), `invalid` (a body that is not
 * JSON or not of the documented shape).
 */
export class KubeApiError extends Error {
  readonly kind: KubeApiErrorKind;
  readonly httpStatus: number | undefined;
  constructor(kind: KubeApiErrorKind, message: string, options: { cause?: unknown; httpStatus?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = 'KubeApiError';
    this.kind = kind;
    this.httpStatus = options.httpStatus;
  }
}

export interface KubeApiClientOptions {
  /** The clock for the token's age (ms). Default Date.now. */
  now?: () => number;
  /** Re-read the token file once the token read is older than this (ms). Default 60 000. */
  tokenMaxAgeMs?: number;
  log?: Logger;
}

export interface KubeReply {
  status: number;
  /** The parsed JSON; for a non-2xx status whose body is not JSON, the body's text (at most 1 KiB). */
  body: unknown;
}

export const MAX_RESPONSE_BYTES = 1024 * 1024;
const DEFAULT_TOKEN_MAX_AGE_MS = 60_000;

interface RawReply {
  status: number;
  text: string;
}

/** A kept-alive socket that turned out closed before the request got any answer: worth one retry. */
class StaleSocket extends Error {}

function readPem(file: string, what: string, source: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${source}: cannot read the ${what} ${file}: ${errnoCode(err) ?? errorMessage(err)}`);
  }
}

export class KubeApiClient {
  readonly #endpoint: KubeEndpoint;
  readonly #agent: https.Agent;
  readonly #now: () => number;
  readonly #tokenMaxAgeMs: number;
  readonly #log: Logger;
  readonly #basePath: string;
  #token: string | undefined;
  #tokenReadAt = 0;
  #tokenReading: Promise<string> | undefined;
  #tokenWarned = false;
  #closed = false;

  constructor(endpoint: KubeEndpoint, opts: KubeApiClientOptions = {}) {
    if (endpoint.server.protocol !== 'https:') throw new ConfigError(`${endpoint.source}: the API server URL must be https`);
    this.#endpoint = endpoint;
    this.#now = opts.now ?? Date.now;
    this.#tokenMaxAgeMs = opts.tokenMaxAgeMs ?? DEFAULT_TOKEN_MAX_AGE_MS;
    this.#log = opts.log ?? silentLogger;
    this.#basePath = endpoint.server.pathname.replace(/\/+$/, '');
    const ca = endpoint.caPem ?? (endpoint.caFile !== undefined ? readPem(endpoint.caFile, 'CA file', endpoint.source) : undefined);
    const cert =
      endpoint.clientCertPem ?? (endpoint.clientCertFile !== undefined ? readPem(endpoint.clientCertFile, 'client certificate', endpoint.source) : undefined);
    const key = endpoint.clientKeyPem ?? (endpoint.clientKeyFile !== undefined ? readPem(endpoint.clientKeyFile, 'client key', endpoint.source) : undefined);
    const tls: https.AgentOptions = { keepAlive: true, maxSockets: 32, maxFreeSockets: 4, rejectUnauthorized: !endpoint.insecure };
    if (ca !== undefined && !endpoint.insecure) tls.ca = ca;
    if (cert !== undefined && key !== undefined) {
      tls.cert = cert;
      tls.key = key;
    }
    this.#agent = new https.Agent(tls);
  }

  /** `https://host:port (source)`, for logs. */
  describe(): string {
    return `${this.#endpoint.server.origin}${this.#basePath} (${this.#endpoint.source})`;
  }

  /**
   * POSTs `body` as JSON to `path` (under the server URL's path) and answers the status and parsed body, whatever the
   * status. Rejects with KubeApiError: `timeout` after `timeoutMs` overall, `transport`, or `invalid` for a 2xx body
   * that is not JSON.
   */
  async post(path: string, body: unknown, timeoutMs: number): Promise<KubeReply> {
    if (this.#closed) throw new KubeApiError('transport', `client for ${this.describe()} is closed`);
    const deadline = performance.now() + timeoutMs;
    const bodyText = JSON.stringify(body);
    let token = await this.#currentToken(false);
    let raw = await this.#attemptWithStaleRetry(path, bodyText, token, deadline, timeoutMs);
    if (raw.status === 401 && this.#endpoint.token !== undefined && 'file' in this.#endpoint.token) {
      const fresh = await this.#currentToken(true);
      if (fresh !== token) {
        token = fresh;
        raw = await this.#attemptWithStaleRetry(path, bodyText, token, deadline, timeoutMs);
      }
    }
    return { status: raw.status, body: this.#parse(path, raw) };
  }

  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  #parse(path: string, raw: RawReply): unknown {
    try {
      return JSON.parse(raw.text);
    } catch (err) {
      if (raw.status >= 200 && raw.status < 300) {
        throw new KubeApiError('invalid', `invalid JSON from the API server (POST ${path}, HTTP ${raw.status})`, { cause: err, httpStatus: raw.status });
      }
      return raw.text.length > 1024 ? raw.text.slice(0, 1024) : raw.text;
    }
  }

  // ------------------------------------------------------------------------------------------------- the token

  /** The token to send: fixed, or from the file, re-read when stale or when `force`d. */
  async #currentToken(force: boolean): Promise<string | undefined> {
    const t = this.#endpoint.token;
    if (t === undefined) return undefined;
    if ('value' in t) return t.value;
    if (!force && this.#token !== undefined && this.#now() - this.#tokenReadAt < this.#tokenMaxAgeMs) return this.#token;
    this.#tokenReading ??= this.#readToken(t.file).finally(() => {
      this.#tokenReading = undefined;
    });
    return this.#tokenReading;
  }

  async #readToken(file: string): Promise<string> {
    try {
      const token = (await readFile(file, 'utf8')).trim();
      if (token === '') throw new Error('the file is empty');
      this.#token = token;
      this.#tokenReadAt = this.#now();
      this.#tokenWarned = false;
      return token;
    } catch (err) {
      const why = errnoCode(err) ?? errorMessage(err);
      if (this.#token !== undefined) {
        // Keep the last good token; the next request tries the file again.
        if (!this.#tokenWarned) this.#log.warn('cannot re-read the API token file; keeping the last token read', { file, error: why });
        this.#tokenWarned = true;
        return this.#token;
      }
      throw new KubeApiError('transport', `cannot read the API token file ${file}: ${why}`, { cause: err });
    }
  }

  // ------------------------------------------------------------------------------------------------- HTTP

  async #attemptWithStaleRetry(path: string, bodyText: string, token: string | undefined, deadline: number, timeoutMs: number): Promise<RawReply> {
    try {
      return await this.#attempt(path, bodyText, token, deadline, timeoutMs);
    } catch (err) {
      if (!(err instanceof StaleSocket)) throw err;
      try {
        return await this.#attempt(path, bodyText, token, deadline, timeoutMs);
      } catch (err2) {
        if (err2 instanceof StaleSocket) throw new KubeApiError('transport', err2.message, { cause: err2.cause });
        throw err2;
      }
    }
  }

  #attempt(path: string, bodyText: string, token: string | undefined, deadline: number, timeoutMs: number): Promise<RawReply> {
    return new Promise<RawReply>((resolve, reject) => {
      const where = `POST ${path} on ${this.describe()}`;
      const remaining = deadline - performance.now();
      const timeoutError = (): KubeApiError => new KubeApiError('timeout', `timeout after ${timeoutMs}ms: ${where}`);
      if (remaining <= 0) {
        reject(timeoutError());
        return;
      }
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': Buffer.byteLength(bodyText),
        'user-agent': 'podvisor',
      };
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      const server = this.#endpoint.server;
      const options: https.RequestOptions = {
        agent: this.#agent,
        protocol: 'https:',
        hostname: server.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: server.port === '' ? 443 : Number(server.port),
        path: `${this.#basePath}${path}`,
        method: 'POST',
        headers,
      };
      if (this.#endpoint.serverName !== undefined) options.servername = this.#endpoint.serverName;

      let settled = false;
      let answered = false;
      const finish = (err: Error | undefined, reply?: RawReply): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err !== undefined) {
          req.destroy();
          reject(err);
        } else if (reply !== undefined) resolve(reply);
      };
      const req = https.request(options, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            finish(new KubeApiError('invalid', `response over ${MAX_RESPONSE_BYTES} bytes: ${where}`, { httpStatus: res.statusCode }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => finish(new KubeApiError('transport', `${where}: ${err.message}`, { cause: err })));
        res.on('aborted', () => finish(new KubeApiError('transport', `${where}: the response was cut short`)));
      });
      const timer = setTimeout(() => finish(timeoutError()), remaining);
      req.setTimeout(Math.max(1, Math.ceil(remaining)), () => finish(timeoutError()));
      req.on('error', (err) => {
        const code = errnoCode(err);
        if (!answered && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          finish(new StaleSocket(`${where}: kept-alive socket was closed by the server (${code})`, { cause: err }));
          return;
        }
        finish(new KubeApiError('transport', `${where}: ${err.message}`, { cause: err }));
      });
      req.end(bodyText);
    });
  }
}
