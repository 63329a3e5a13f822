/**
 * The Docker runtime client: dockerode over the Engine API, unversioned paths (the daemon answers at its maximum API
 * version; pinning one breaks both ways: Docker 29 refuses clients below API 1.44, google/cadvisor#3790, and Docker
 * 18.09 refused 1.40 as too new, kubernetes/kubernetes#94281). dockerode's types never
 * leave this directory: every body is checked by the guards in map.ts and returned as podvisor's RuntimeContainer.
 *
 * Every request gets its own deadline: the caller's signal combined with AbortSignal.timeout(timeoutMs). A hung
 * daemon therefore costs at most timeoutMs per request (list() makes one request per container, four at a time, and
 * reports each answer to its `onProgress`; the caller's signal bounds the whole).
 */
import { statSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { DockerError, ResponseShapeError, errorMessage } from '../../errors.js';
import type { RuntimeClient, RuntimeEvent, RuntimeVersion } from '../types.js';
import type { RuntimeContainer } from '../../model/runtime.js';
import { modemOptions, parseDockerEndpoint, type DockerEndpoint } from './endpoint.js';
import { isRecord } from '../../guards.js';
import { JsonLineDecoder } from './json-lines.js';
import { containerFromInspect, eventFromMessage, idsFromListBody, versionFromBody } from './map.js';

export interface DockerClientOptions {
  /** `unix:///var/run/docker.sock` or `tcp://host:port`. */
  endpoint: string;
  /** Deadline of each request (for `events`, of the request until the stream's headers arrive). */
  timeoutMs: number;
}

/** How many containers list() inspects at once. */
export const INSPECT_CONCURRENCY = 4;

/** Longest daemon error text quoted in a message. */
const MAX_QUOTE = 300;

export class DockerClient implements RuntimeClient {
  readonly runtime = 'docker' as const;
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly #endpoint: DockerEndpoint;
  readonly #docker: Docker;
  readonly #agent: http.Agent;
  readonly #streams = new Set<AbortController>();

  constructor(opts: DockerClientOptions) {
    this.endpoint = opts.endpoint;
    this.timeoutMs = opts.timeoutMs;
    // No keep-alive: a pooled socket to a daemon that restarted fails the next request (EPIPE); unix connects are cheap.
    this.#agent = new http.Agent({ keepAlive: false });
    this.#endpoint = parseDockerEndpoint(opts.endpoint);
    this.#docker = new Docker(modemOptions(this.#endpoint, this.#agent));
  }

  /** A `unix://` endpoint whose socket does not exist (no Docker on this node); never for `tcp://`. */
  socketMissing(): boolean {
    if (this.#endpoint.kind !== 'unix') return false;
    try {
      return statSync(this.#endpoint.socketPath, { throwIfNoEntry: false }) === undefined;
    } catch {
      return false; // EACCES, ENOTDIR…: cannot tell, so not "missing"
    }
  }

  async version(signal: AbortSignal): Promise<RuntimeVersion> {
    const path = '/version';
    // dockerode's version() takes { abortSignal } (lib/docker.js); @types/dockerode 4 only declares version().
    const versionCall = this.#docker.version.bind(this.#docker) as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    const body = await this.#request(path, signal, (abortSignal) => versionCall({ abortSignal }));
    return this.#map(path, body, versionFromBody);
  }

  async list(signal: AbortSignal, known?: (id: string) => RuntimeContainer | undefined, onProgress?: () => void): Promise<RuntimeContainer[]> {
    const path = '/containers/json?all=true';
    const body = await this.#request(path, signal, (abortSignal) => this.#docker.listContainers({ all: true, abortSignal }));
    const ids = this.#map(path, body, idsFromListBody);
    onProgress?.();

    // Inspect is the source of truth; a container removed since the listing (404) is left out. Known ones are not
    // inspected again: at 100 containers that was ~2 s of CPU a minute (JSON, and docker-modem formats every request).
    const found: (RuntimeContainer | undefined)[] = new Array<RuntimeContainer | undefined>(ids.length);
    const failed = new AbortController();
    const inner = AbortSignal.any([signal, failed.signal]);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < ids.length; i = next++) {
        const id = ids[i];
        if (id === undefined) break;
        const hit = known?.(id);
        if (hit !== undefined) {
          found[i] = hit;
          continue;
        }
        found[i] = await this.inspect(id, inner);
        onProgress?.();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(INSPECT_CONCURRENCY, ids.length) }, worker));
    } catch (err) {
      failed.abort();
      throw err;
    }
    return found.filter((c): c is RuntimeContainer => c !== undefined);
  }

  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainer | undefined> {
    if (id === '') return undefined;
    const path = `/containers/${encodeURIComponent(id)}/json`;
    let body: unknown;
    try {
      body = await this.#request(path, signal, (abortSignal) => this.#docker.getContainer(encodeURIComponent(id)).inspect({ abortSignal }));
    } catch (err) {
      if (err instanceof DockerError && err.httpStatus === 404) return undefined;
      throw err;
    }
    return this.#map(path, body, containerFromInspect);
  }

  /**
   * Streams container events until `signal` aborts (resolves), the daemon ends the stream (resolves) or the stream
   * breaks (rejects). Lines that are not JSON objects are skipped. A listener that throws ends the stream and its
   * error is rethrown.
   */
  async events(onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void> {
    const path = '/events?filters={"type":["container"]}';
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal.reason);
    if (signal.aborted) return;
    signal.addEventListener('abort', onAbort, { once: true });
    this.#streams.add(ctl);
    try {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ctl.abort(new Error('timeout'));
      }, this.timeoutMs);
      let stream: unknown;
      try {
        stream = await raceAbort(this.#docker.getEvents({ filters: { type: ['container'] }, abortSignal: ctl.signal }), ctl.signal);
      } catch (err) {
        if (ctl.signal.aborted && !timedOut) return;
        throw this.#error(path, err, timedOut ? 'timeout' : undefined);
      } finally {
        clearTimeout(timer);
      }
      if (!(stream instanceof Readable)) {
        throw new DockerError(`docker at ${this.endpoint} returned an unexpected body for ${path}: not a stream`);
      }
      await this.#consume(stream, path, ctl.signal, onEvent);
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#streams.delete(ctl);
    }
  }

  /** Ends every open event stream (their promises resolve) and destroys the connection pool. */
  async close(): Promise<void> {
    for (const ctl of this.#streams) ctl.abort(new Error('docker client closed'));
    this.#streams.clear();
    this.#agent.destroy();
  }

  async #consume(stream: Readable, path: string, aborted: AbortSignal, onEvent: (e: RuntimeEvent) => void): Promise<void> {
    const stop = (): void => {
      stream.destroy();
    };
    aborted.addEventListener('abort', stop, { once: true });
    const decoder = new JsonLineDecoder();
    // A listener that throws ends the stream; its error is rethrown as is, after the stream is destroyed.
    let listener: { failed: unknown } | undefined;
    const deliver = (messages: Record<string, unknown>[]): void => {
      for (const m of messages) {
        const e = eventFromMessage(m);
        if (e === undefined) continue;
        try {
          onEvent(e);
        } catch (failed) {
          listener = { failed };
          return;
        }
      }
    };
    try {
      for await (const chunk of stream) {
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) deliver(decoder.push(chunk));
        if (listener !== undefined) break;
      }
      if (listener === undefined) deliver(decoder.end());
    } catch (err) {
      if (aborted.aborted) return;
      throw new DockerError(`docker at ${this.endpoint}: the event stream ${path} broke: ${errorMessage(err)}`, {
        cause: err,
      });
    } finally {
      aborted.removeEventListener('abort', stop);
      stream.destroy();
    }
    if (listener !== undefined) throw listener.failed;
  }

  /** One request under the caller's signal plus this client's timeout; errors become one-sentence messages. */
  async #request(path: string, signal: AbortSignal, call: (abortSignal: AbortSignal) => Promise<unknown>): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = AbortSignal.any([signal, timeout]);
    let body: unknown;
    try {
      combined.throwIfAborted();
      body = await raceAbort(call(combined), combined);
    } catch (err) {
      throw this.#error(path, err, signal.aborted ? 'aborted' : timeout.aborted ? 'timeout' : undefined);
    }
    if (Buffer.isBuffer(body)) {
      // docker-modem hands back the raw bytes when the body is not JSON.
      throw new DockerError(`docker at ${this.endpoint} returned an unexpected body for ${path}: not JSON: ${quote(body.toString('utf8')) || '(empty)'}`);
    }
    return body;
  }

  #map<T>(path: string, body: unknown, map: (body: unknown) => T): T {
    try {
      return map(body);
    } catch (err) {
      if (!(err instanceof ResponseShapeError)) throw err;
      throw new DockerError(`docker at ${this.endpoint} returned an unexpected body for ${path}: ${err.message}`, {
        cause: err,
      });
    }
  }

  /** One sentence for a failed request; `stopped` says whether our deadline or the caller's signal ended it. */
  #error(path: string, err: unknown, stopped: 'timeout' | 'aborted' | undefined): DockerError {
    if (err instanceof DockerError) return err;
    const status = prop(err, 'statusCode');
    if (typeof status === 'number') {
      const detail = daemonMessage(prop(err, 'json')) || modemMessage(err instanceof Error ? err.message : '');
      return new DockerError(`docker at ${this.endpoint} answered HTTP ${status} for GET ${path}${detail ? `: ${detail}` : ''}`, {
        cause: err,
        httpStatus: status,
      });
    }
    if (stopped === 'timeout') {
      return new DockerError(`docker at ${this.endpoint}: GET ${path} timed out after ${this.timeoutMs} ms`, {
        cause: err,
      });
    }
    if (stopped === 'aborted') {
      return new DockerError(`docker at ${this.endpoint}: GET ${path} was aborted`, { cause: err });
    }
    return new DockerError(`docker at ${this.endpoint}: ${errorMessage(err)} (GET ${path})`, { cause: err });
  }
}

/** A property of a thrown value (docker-modem sets `statusCode` and `json` on its HTTP errors). */
function prop(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null ? (Reflect.get(err, key) as unknown) : undefined;
}

/** Docker's `{"message": "…"}` error body, or the raw text. */
function daemonMessage(json: unknown): string {
  if (isRecord(json) && typeof json['message'] === 'string') return quote(json['message']);
  if (Buffer.isBuffer(json)) return quote(json.toString('utf8'));
  if (typeof json === 'string') return quote(json);
  return '';
}

/** docker-modem's `(HTTP code 500) server error - <daemon message> ` (streams carry no `json`). */
function modemMessage(message: string): string {
  const m = /^\(HTTP code \d+\) [^-]*- ([\s\S]*)$/.exec(message);
  return m ? quote(m[1] ?? '') : '';
}

function quote(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX_QUOTE ? `${one.slice(0, MAX_QUOTE)}…` : one;
}

/**
 * Settles with `p`, or rejects as soon as `signal` aborts: the deadline holds even if the library never calls back.
 */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const e = new Error('The operation was aborted', { cause: signal.reason });
      e.name = 'AbortError';
      reject(e);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
