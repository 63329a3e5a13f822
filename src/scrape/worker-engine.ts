/**
 * Runs gathers on a worker thread. A gather that outlives --gather-timeout is abandoned: its caller gets a clear
 * error, the worker is terminated, and the next gather starts a fresh one. A crashed worker is replaced the same way.
 */
import { Worker } from 'node:worker_threads';
import { GatherError } from '../errors.js';
import type { LogLevel, Logger } from '../log.js';
import type { GatherOptions } from '../gather/setup.js';
import type { GatherEngine, GatherResult } from './engine.js';
import { isWorkerReply, type WorkerInit } from './worker-protocol.js';

interface Pending {
  resolve(r: GatherResult): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The first gather of each worker with runtimes configured also waits for the runtimes' first container lists (which take as long as the
 * runtime needs to answer one inspect per container; see --runtime-startup-grace): --gather-timeout is not the bound
 * for that wait, this much more is.
 */
export const FIRST_GATHER_ALLOWANCE_MS = 10 * 60_000;

/** The worker's entry next to this module in dist/. Tests running from source pass a shim that loads worker.ts. */
const WORKER_URL = new URL('./worker.js', import.meta.url);

export class WorkerEngine implements GatherEngine {
  readonly #init: WorkerInit;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #worker: Worker | undefined;
  /** Gathers asked of the current worker. */
  #asked = 0;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  readonly #entry: URL;

  constructor(opts: GatherOptions, log: Logger, logLevel: LogLevel, gatherTimeoutMs: number, entry: URL = WORKER_URL) {
    this.#init = { engine: opts, logLevel };
    this.#entry = entry;
    this.#log = log;
    this.#timeoutMs = gatherTimeoutMs;
  }

  #spawn(): Worker {
    const w = new Worker(this.#entry, { workerData: this.#init });
    w.on('message', (msg: unknown) => {
      if (!isWorkerReply(msg)) {
        this.#log.error('gather worker sent a malformed message; ignoring it');
        return;
      }
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === 'result') p.resolve(msg.result);
      else p.reject(new GatherError(`gather failed: ${msg.message}`));
    });
    w.on('error', (err) => this.#fail(w, `gather worker crashed: ${err.message}`));
    w.on('exit', (code) => this.#fail(w, `gather worker exited with code ${code}`));
    return w;
  }

  /** Drops a dead or stuck worker and fails everything it owed. */
  #fail(w: Worker, reason: string): void {
    if (this.#worker !== w) return;
    this.#worker = undefined;
    if (!this.#closed) this.#log.error(reason);
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new GatherError(reason));
      this.#pending.delete(id);
    }
    void w.terminate();
  }

  gather(): Promise<GatherResult> {
    if (this.#closed) return Promise.reject(new GatherError('gather engine is closed'));
    if (this.#worker === undefined) {
      this.#worker = this.#spawn();
      this.#asked = 0;
    }
    const w = this.#worker;
    const id = this.#nextId++;
    const waitsForRuntimes = this.#asked++ === 0 && this.#init.engine.runtimes !== undefined;
    const limitMs = waitsForRuntimes ? this.#timeoutMs + FIRST_GATHER_ALLOWANCE_MS : this.#timeoutMs;
    return new Promise<GatherResult>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(w, `gather did not finish within ${limitMs / 1000}s; restarting the gather worker`), limitMs);
      this.#pending.set(id, { resolve, reject, timer });
      w.postMessage({ type: 'gather', id });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    if (w !== undefined) this.#fail(w, 'gather engine closed');
  }
}
