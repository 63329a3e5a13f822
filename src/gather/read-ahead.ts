/**
 * Reads a batch of pseudo-files on a second thread, so a gather can read the later part of its cgroups while the
 * gather's own thread reads the first part. Same reads as FileReader (one open/read/close per file), same outcomes:
 * the content, `null` for a missing file, or the error (code and message) any other failure would have thrown.
 * For each `cgroup.procs` in the batch it also counts the listed processes' descriptors (countFileDescriptors).
 * The thread starts on first use and is not kept alive for the process; if it fails or does not answer within
 * `timeoutMs`, the batch rejects (the caller reads those files itself) and the next batch starts a new thread.
 */
import { Worker } from 'node:worker_threads';

/** A read or count that threw: its error code and message, to be thrown again on the gather's thread. */
export interface ReadFailure {
  code: string | undefined;
  message: string;
}
export type ReadOutcome = string | null | ReadFailure;
/** countFileDescriptors' outcome for one pid: the counts, `null` if the process is gone, or the error. */
export type FdOutcome = { fds: number; sockets: number } | null | ReadFailure;

/** One request to the read-ahead thread, and its answer. */
export interface ReadAheadRequest {
  id: number;
  files: string[];
  /** Where `<pid>/fd` is: for every `cgroup.procs` among `files`, the descriptors of the pids it lists are counted. */
  procRoot: string;
}
export interface ReadAheadReply {
  id: number;
  outcomes: ReadOutcome[];
  /** [pid, outcome] for each pid listed in the cgroup.procs files read. */
  fds: [number, FdOutcome][];
}

export interface ReadAheadResult {
  outcomes: ReadOutcome[];
  fds: Map<number, FdOutcome>;
}

export interface ReadAhead {
  read(files: readonly string[], procRoot: string): Promise<ReadAheadResult>;
  close(): Promise<void>;
}

const DEFAULT_WORKER = new URL('./read-ahead-worker.js', import.meta.url);

function raise(failure: ReadFailure): never {
  throw Object.assign(new Error(failure.message), failure.code === undefined ? {} : { code: failure.code });
}

function isFailure(v: unknown): v is ReadFailure {
  return (
    typeof v === 'object' &&
    v !== null &&
    'message' in v &&
    typeof v.message === 'string' &&
    'code' in v &&
    (v.code === undefined || typeof v.code === 'string')
  );
}

function isOutcome(v: unknown): v is ReadOutcome {
  return v === null || typeof v === 'string' || isFailure(v);
}

function isFdOutcome(v: unknown): v is FdOutcome {
  if (v === null) return true;
  if (typeof v !== 'object') return false;
  if ('fds' in v && 'sockets' in v) return typeof v.fds === 'number' && typeof v.sockets === 'number';
  return isFailure(v);
}

/** The reply of the read-ahead thread, checked: one outcome per requested file, fd counts by pid. */
export function parseReply(msg: unknown, expected: number): ReadAheadReply | undefined {
  if (typeof msg !== 'object' || msg === null || !('id' in msg) || !('outcomes' in msg) || !('fds' in msg)) return undefined;
  const { id, outcomes, fds } = msg;
  if (typeof id !== 'number' || !Array.isArray(outcomes) || outcomes.length !== expected || !Array.isArray(fds)) return undefined;
  const checked: ReadOutcome[] = [];
  for (const o of outcomes) {
    if (!isOutcome(o)) return undefined;
    checked.push(o);
  }
  const counts: [number, FdOutcome][] = [];
  for (const e of fds) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'number' || !isFdOutcome(e[1])) return undefined;
    counts.push([e[0], e[1]]);
  }
  return { id, outcomes: checked, fds: counts };
}

/** The outcome as FileReader.read would have given it: the content, undefined, or the error thrown. */
export function settle(outcome: ReadOutcome): string | undefined {
  if (outcome === null) return undefined;
  return typeof outcome === 'string' ? outcome : raise(outcome);
}

/** The fd outcome as countFileDescriptors would have given it: the counts, undefined (gone), or the error thrown. */
export function settleFds(outcome: FdOutcome): { fds: number; sockets: number } | undefined {
  if (outcome === null) return undefined;
  return 'fds' in outcome ? outcome : raise(outcome);
}

export class ThreadReadAhead implements ReadAhead {
  readonly #url: URL;
  readonly #timeoutMs: number;
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, { worker: Worker; expected: number; resolve: (r: ReadAheadResult) => void; reject: (e: Error) => void }>();

  constructor(opts: { workerUrl?: URL; timeoutMs?: number } = {}) {
    this.#url = opts.workerUrl ?? DEFAULT_WORKER;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
  }

  #start(): Worker {
    // A small heap: the thread holds one batch at a time (~2 MB of strings at 200 containers). V8's default young
    // generation alone (16 MiB semi-spaces) cost ~50 MiB of RSS here.
    const w = new Worker(this.#url, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } });
    w.on('message', (msg: unknown) => {
      const id = typeof msg === 'object' && msg !== null && 'id' in msg ? msg.id : undefined;
      const p = typeof id === 'number' ? this.#pending.get(id) : undefined;
      if (p === undefined || typeof id !== 'number') return;
      this.#pending.delete(id);
      const reply = parseReply(msg, p.expected);
      if (reply === undefined) p.reject(new Error('read-ahead thread: malformed reply'));
      else p.resolve({ outcomes: reply.outcomes, fds: new Map(reply.fds) });
    });
    const fail = (err: Error): void => {
      if (this.#worker === w) this.#worker = undefined;
      for (const [id, p] of this.#pending) {
        if (p.worker !== w) continue; // a batch of the thread that replaced this one
        this.#pending.delete(id);
        p.reject(err);
      }
    };
    w.on('error', (err) => fail(new Error(`read-ahead thread failed: ${err.message}`)));
    w.on('exit', (code) => fail(new Error(`read-ahead thread exited (code ${code})`)));
    return w;
  }

  read(files: readonly string[], procRoot: string): Promise<ReadAheadResult> {
    const worker = (this.#worker ??= this.#start());
    const id = this.#next++;
    // Keeps the process alive only while a batch is out (an idle thread never holds an exit up).
    worker.ref();
    const settled = (): void => {
      if (this.#pending.size === 0) worker.unref();
    };
    return new Promise<ReadAheadResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#pending.delete(id)) return;
        // A thread stuck in a read (a hung filesystem) is dropped; the next batch gets a new one.
        if (this.#worker === worker) this.#worker = undefined;
        settled();
        void worker.terminate();
        reject(new Error(`read-ahead thread did not answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, {
        worker,
        expected: files.length,
        resolve: (o) => {
          clearTimeout(timer);
          settled();
          resolve(o);
        },
        reject: (e) => {
          clearTimeout(timer);
          settled();
          reject(e);
        },
      });
      const req: ReadAheadRequest = { id, files: [...files], procRoot };
      worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await w.terminate();
  }
}
