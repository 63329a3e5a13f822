/**
 * CRI-O through its HTTP/1.1 "inspect" API on the CRI socket (CRI-O `server/inspect.go`, cAdvisor
 * `container/crio/client.go`). CRI-O serves gRPC (HTTP/2) and this API (HTTP/1.x) on the same unix socket.
 *
 * - `GET /info` → `{ storage_driver, storage_root, cgroup_driver, … }`: no version there, so `version()` answers
 *   `{ version: '', apiVersion: '' }` once the body looks like CRI-O's (parsed version 'unknown').
 * - `GET /containers/<id>` → `{ name, pid, image, created_time, labels, annotations, log_path, root, … }`; 404 when
 *   CRI-O does not know the id.
 * - There is no list and no event stream: `list()` answers `[]` and the factory's cache fills on demand, one
 *   `inspect()` per unknown `crio-<id>` cgroup (the cgroup walk is the list). Having made no request, it reports no
 *   progress; `socketMissing()` tells whether the socket exists at all.
 *
 * CRI-O's JSON types never leave this file: bodies are validated with guards and turned into RuntimeContainer.
 */
import { statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CrioError, StaleSocketError } from '../../errors.js';
import { errnoCode, isRecord } from '../../guards.js';
import type { RuntimeClient, RuntimeVersion } from '../types.js';
import type { RuntimeContainer } from '../../model/runtime.js';

export interface CrioClientOptions {
  /** The CRI-O socket, `/var/run/crio/crio.sock` (a `unix://` prefix is accepted and dropped). */
  endpoint: string;
  /** Upper bound for each call, combined with the caller's signal. */
  timeoutMs: number;
}

/** `sizeof(sockaddr_un.sun_path)` is 108 on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** CRI-O's answers are a few KiB; anything this large is not CRI-O. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

const SANDBOX_TYPE_ANNOTATION = 'io.kubernetes.cri-o.ContainerType';
const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';

// ---------------------------------------------------------------------------------------------------------------
// Guards for CRI-O's JSON (pkg/types/types.go). Go writes every field; nil maps come out as `null`.

/** `map[string]string`: an object of strings, or `null` (a nil map). */
function isStringMap(v: unknown): v is Readonly<Record<string, string>> | null {
  return v === null || (isRecord(v) && Object.values(v).every((x) => typeof x === 'string'));
}

interface CrioInfo {
  storage_driver: string;
  storage_root: string;
  cgroup_driver: string;
}

function isCrioInfo(v: unknown): v is CrioInfo {
  return isRecord(v) && typeof v['storage_driver'] === 'string' && typeof v['storage_root'] === 'string' && typeof v['cgroup_driver'] === 'string';
}

/** The fields of CRI-O's ContainerInfo that we use; each may be absent (older CRI-O), none may have another type. */
interface CrioContainerInfo {
  name?: string;
  pid?: number;
  image?: string;
  created_time?: number;
  labels?: Readonly<Record<string, string>> | null;
  annotations?: Readonly<Record<string, string>> | null;
  log_path?: string;
  root?: string;
}

const STRING_FIELDS = ['name', 'image', 'log_path', 'root'] as const;
const NUMBER_FIELDS = ['pid', 'created_time'] as const;
const MAP_FIELDS = ['labels', 'annotations'] as const;

/** Why `v` is not a ContainerInfo, or undefined if it is. */
function containerInfoProblem(v: unknown): string | undefined {
  if (!isRecord(v)) return 'not a JSON object';
  for (const k of STRING_FIELDS) if (v[k] !== undefined && typeof v[k] !== 'string') return `"${k}" is not a string`;
  for (const k of NUMBER_FIELDS) if (v[k] !== undefined && !Number.isInteger(v[k])) return `"${k}" is not an integer`;
  for (const k of MAP_FIELDS) if (v[k] !== undefined && !isStringMap(v[k])) return `"${k}" is not a map of strings`;
  return undefined;
}

function isContainerInfo(v: unknown): v is CrioContainerInfo {
  return containerInfoProblem(v) === undefined;
}

/**
 * Unix seconds from `created_time` (int64 nanoseconds, beyond 2^53 so `JSON.parse` rounds it by up to 256 ns). The
 * exact digits are taken from the body when they are the literal that was parsed; otherwise the rounded number is
 * used, which can only be wrong when the time is within 256 ns of a second boundary. 0 and negative (Go's zero time)
 * mean unknown.
 */
export function createdSeconds(parsed: number | undefined, body: string): number | undefined {
  if (parsed === undefined || parsed <= 0) return undefined;
  const m = /(?<!\\)"created_time"\s*:\s*(\d+)/.exec(body);
  if (m?.[1] !== undefined && Number(m[1]) === parsed) return Number(BigInt(m[1]) / 1_000_000_000n);
  return Math.floor(parsed / 1e9);
}

/** Overlay's writable layer: CRI-O reports the mount point `…/overlay/<layer>/merged`; the upper dir is `…/diff`. */
function upperDirOf(root: string | undefined): string | undefined {
  if (root === undefined || root === '') return undefined;
  if (root.endsWith('/merged')) return `${root.slice(0, -'/merged'.length)}/diff`;
  return root; // vfs, btrfs…: the rootfs directory is the container's own
}

function toRuntimeContainer(id: string, info: CrioContainerInfo, body: string): RuntimeContainer {
  const labels = info.labels ?? {};
  const annotations = info.annotations ?? {};
  const sandbox = annotations[SANDBOX_TYPE_ANNOTATION] === 'sandbox' || labels[CONTAINER_NAME_LABEL] === 'POD';
  const c: RuntimeContainer = {
    runtime: 'crio',
    id,
    name: info.name ?? '',
    image: info.image ?? '',
    labels: { ...labels },
    kind: sandbox ? 'sandbox' : 'container',
    networkOwner: sandbox,
  };
  if (info.pid !== undefined && info.pid > 0) c.pid = info.pid;
  const createdAt = createdSeconds(info.created_time, body);
  if (createdAt !== undefined) c.createdAt = createdAt;
  if (info.log_path !== undefined && info.log_path !== '') c.logDir = path.dirname(info.log_path);
  const upperDir = upperDirOf(info.root);
  if (upperDir !== undefined) c.upperDir = upperDir;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: string;
}

function firstLine(body: string): string {
  const line = (body.split('\n', 1)[0] ?? '').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

export class CrioClient implements RuntimeClient {
  readonly runtime = 'crio';
  readonly #socketPath: string;
  readonly #timeoutMs: number;
  readonly #agent: http.Agent;
  #closed = false;

  constructor(opts: CrioClientOptions) {
    const socketPath = opts.endpoint.startsWith('unix://') ? opts.endpoint.slice('unix://'.length) : opts.endpoint;
    if (socketPath === '') throw new CrioError('CRI-O endpoint is empty');
    const bytes = Buffer.byteLength(socketPath);
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      throw new CrioError(`CRI-O socket path ${socketPath} is ${bytes} bytes long; unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES}`);
    }
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new CrioError(`CRI-O timeout must be a positive number of milliseconds, got ${opts.timeoutMs}`);
    }
    this.#socketPath = socketPath;
    this.#timeoutMs = opts.timeoutMs;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 8, maxFreeSockets: 2 });
  }

  async version(signal: AbortSignal): Promise<RuntimeVersion> {
    const reply = await this.#get('/info', signal);
    if (reply.status !== 200) throw this.#statusError('/info', reply);
    const info = this.#parseJson('/info', reply.body);
    if (!isCrioInfo(info)) {
      throw new CrioError(
        `CRI-O GET /info on ${this.#socketPath} answered a body without string storage_driver, storage_root and cgroup_driver: ${firstLine(reply.body)}`,
      );
    }
    // The inspect API has no version; the CRI Version RPC (gRPC) would, but this client speaks HTTP/1.1 only.
    return { version: '', apiVersion: '' };
  }

  /** The inspect API cannot list: the factory's cache fills on demand through inspect(). */
  async list(signal: AbortSignal): Promise<RuntimeContainer[]> {
    signal.throwIfAborted();
    this.#assertOpen();
    return [];
  }

  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainer | undefined> {
    const urlPath = `/containers/${encodeURIComponent(id)}`;
    const reply = await this.#get(urlPath, signal);
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) throw this.#statusError(urlPath, reply);
    const info = this.#parseJson(urlPath, reply.body);
    if (!isContainerInfo(info)) {
      throw new CrioError(`CRI-O GET ${urlPath} answered an unexpected body: ${containerInfoProblem(info)}`);
    }
    return toRuntimeContainer(id, info, reply.body);
  }

  /** The socket does not exist (no CRI-O on this node). */
  socketMissing(): boolean {
    try {
      return statSync(this.#socketPath, { throwIfNoEntry: false }) === undefined;
    } catch {
      return false; // EACCES, ENOTDIR…: cannot tell, so not "missing"
    }
  }

  /** Nothing to say goodbye to: drops the kept-alive sockets. Later calls reject. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#agent.destroy();
  }

  #assertOpen(): void {
    if (this.#closed) throw new CrioError('CRI-O client is closed');
  }

  #statusError(urlPath: string, reply: Reply): CrioError {
    const detail = firstLine(reply.body);
    return new CrioError(`CRI-O GET ${urlPath} answered HTTP ${reply.status}${detail === '' ? '' : `: ${detail}`}`, {
      httpStatus: reply.status,
    });
  }

  #parseJson(urlPath: string, body: string): unknown {
    try {
      return JSON.parse(body);
    } catch (err) {
      throw new CrioError(`CRI-O GET ${urlPath} answered invalid JSON: ${firstLine(body) || '(empty body)'}`, { cause: err });
    }
  }

  /**
   * One GET, bounded by the caller's signal and our timeout. A kept-alive socket that CRI-O closed meanwhile (a
   * restart) fails before any answer (ECONNRESET, EPIPE); as Node's docs advise for idempotent requests, a request
   * that failed on a reused socket before any answer is retried once, on a fresh socket.
   */
  async #get(urlPath: string, callerSignal: AbortSignal): Promise<Reply> {
    this.#assertOpen();
    callerSignal.throwIfAborted();
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = AbortSignal.any([callerSignal, timeout]);
    try {
      try {
        return await this.#request(urlPath, signal);
      } catch (err) {
        if (!(err instanceof StaleSocketError)) throw err;
        return await this.#request(urlPath, signal);
      }
    } catch (err) {
      const cause = err instanceof StaleSocketError ? err.cause : err;
      if (cause instanceof CrioError) throw cause;
      if (timeout.aborted) {
        throw new CrioError(`CRI-O GET ${urlPath} on ${this.#socketPath} did not answer within ${this.#timeoutMs} ms`, { cause });
      }
      if (callerSignal.aborted) {
        throw new CrioError(`CRI-O GET ${urlPath} on ${this.#socketPath} was aborted`, { cause: callerSignal.reason });
      }
      const code = errnoCode(cause);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        throw new CrioError(`CRI-O is not listening on ${this.#socketPath} (${code})`, { cause });
      }
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new CrioError(`CRI-O GET ${urlPath} on ${this.#socketPath} failed: ${message}`, { cause });
    }
  }

  #request(urlPath: string, signal: AbortSignal): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      let answered = false;
      const req = http.request(
        {
          socketPath: this.#socketPath,
          path: urlPath,
          method: 'GET',
          // cAdvisor sends Host: crio, "a valid and meaningful host name" for CRI-O's mux.
          headers: { Host: 'crio', Accept: 'application/json' },
          agent: this.#agent,
          signal,
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) {
              req.destroy(new CrioError(`CRI-O GET ${urlPath} answered more than ${MAX_BODY_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          const cut = (cause?: unknown) => reject(new Error('the connection closed before the whole answer arrived', { cause }));
          res.on('error', (err) => (err instanceof CrioError || signal.aborted ? reject(err) : cut(err)));
          res.on('close', () => {
            if (!res.complete) cut();
          });
        },
      );
      req.on('error', (err) => {
        // ECONNRESET or EPIPE, depending on whether the peer's close arrived before or during our write.
        if (!answered && req.reusedSocket && !signal.aborted && !(err instanceof CrioError)) {
          reject(new StaleSocketError(err));
        } else {
          reject(err);
        }
      });
      req.end();
    });
  }
}
