/**
 * The two-thread walk, both sides: `walkShared` on the caller's thread and `serveWorker` on the worker's
 * (walker-worker.ts), over a SharedArrayBuffer of four int32 slots and a MessagePort. Every message and the
 * workerData are checked with the guards below before use: a malformed one fails the walk with an Error that says so.
 */
import { inspect } from 'node:util';
import { performance } from 'node:perf_hooks';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { isRecord } from '../guards.js';
import { Scanner, type SharedDir, type WalkResult } from './scanner.js';
import { abortError, nextTurn } from './walk-slices.js';

/** Loaded as .ts (tsx): a worker would not get tsx's loader, and there is no compiled worker next to it. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
/** The compiled worker entry next to this module (dist/disk/walker-worker.js); none when loaded from source. */
export const DEFAULT_WORKER: URL | undefined = FROM_SOURCE ? undefined : new URL('./walker-worker.js', import.meta.url);

/** The second thread: int32 slots of the SharedArrayBuffer shared with it. */
const ABORT = 0; // set by the caller: stop, close, exit
const HUNGRY = 1; // set by the caller when it has nothing left: donate waiting directories
const WAKE = 2; // bumped (and notified) by the caller after each message it posts
const POSTED = 3; // bumped (and notified) by the worker after each message it posts
const SLOTS = 4;

/** What the worker posts back. */
export type WorkerMessage =
  | { t: 'idle'; got: number } // everything from the first `got` batches is walked
  | { t: 'dirs'; dirs: SharedDir[] } // donated because the caller was HUNGRY
  | { t: 'done'; result: WalkResult; linked: Map<number | string, number> };
/** What the caller posts to the worker. */
export type CallerMessage = { t: 'dirs'; dirs: SharedDir[] } | { t: 'finish' };
export interface WorkerInit {
  dev: number;
  shared: SharedArrayBuffer;
  port: MessagePort;
}

/** A count or an inode or device number: a non-negative integer. */
function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** A batch of directories handed between threads; a Buffer path arrives as a plain Uint8Array. */
function isSharedDirs(v: unknown): v is SharedDir[] {
  return (
    Array.isArray(v) &&
    v.every(
      (d) =>
        isRecord(d) &&
        (typeof d.path === 'string' || d.path instanceof Uint8Array) &&
        isCount(d.ino) &&
        Array.isArray(d.ancestors) &&
        d.ancestors.every(isCount),
    )
  );
}

function isWalkResult(v: unknown): v is WalkResult {
  return (
    isRecord(v) &&
    isCount(v.bytes) &&
    isCount(v.inodes) &&
    isCount(v.files) &&
    isCount(v.errors) &&
    isCount(v.denied) &&
    (v.deniedPath === undefined || typeof v.deniedPath === 'string')
  );
}

/** The worker's nlink > 1 inodes: inode key (a number, or a string past 2^53) → the bytes it added. */
function isLinked(v: unknown): v is Map<number | string, number> {
  if (!(v instanceof Map)) return false;
  for (const [key, bytes] of v as Map<unknown, unknown>) {
    if ((typeof key !== 'number' && typeof key !== 'string') || !isCount(bytes)) return false;
  }
  return true;
}

export function isWorkerMessage(v: unknown): v is WorkerMessage {
  if (!isRecord(v)) return false;
  if (v.t === 'idle') return isCount(v.got);
  if (v.t === 'dirs') return isSharedDirs(v.dirs);
  return v.t === 'done' && isWalkResult(v.result) && isLinked(v.linked);
}

export function isCallerMessage(v: unknown): v is CallerMessage {
  return isRecord(v) && (v.t === 'finish' || (v.t === 'dirs' && isSharedDirs(v.dirs)));
}

export function isWorkerInit(v: unknown): v is WorkerInit {
  return isRecord(v) && isCount(v.dev) && v.shared instanceof SharedArrayBuffer && v.shared.byteLength === SLOTS * 4 && v.port instanceof MessagePort;
}

/** A received value for an error message: short, whatever it is. */
export function describe(v: unknown): string {
  const s = inspect(v, { depth: 2, maxArrayLength: 4, maxStringLength: 64, breakLength: Infinity });
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/**
 * Two threads: the caller walks in slices as walk() does on one thread and hands the shallowest half of its waiting
 * directories (whole subtrees) to the worker whenever the worker is idle; when the caller runs dry it
 * asks the worker for some of its own. Each thread keeps its own nlink > 1 map; the caller dedupes
 * the worker's against its own at the end.
 */
export async function walkShared(
  root: string | Buffer,
  scanner: Scanner,
  url: URL,
  sliceMs: number,
  threadAfter: number,
  signal: AbortSignal | undefined,
  holdWhile?: () => Promise<unknown> | undefined,
): Promise<WalkResult> {
  const shared = new SharedArrayBuffer(SLOTS * 4);
  const slots = new Int32Array(shared);
  let worker: Worker | undefined;
  let port: MessagePort | undefined;
  let exited: Promise<void> | undefined;
  let failure: Error | undefined;
  let sent = 0;
  let idleGot = 0;
  let done: Extract<WorkerMessage, { t: 'done' }> | undefined;

  const post = (msg: CallerMessage): void => {
    port!.postMessage(msg);
    Atomics.add(slots, WAKE, 1);
    Atomics.notify(slots, WAKE);
  };
  const start = (): void => {
    const channel = new MessageChannel();
    port = channel.port1;
    const init: WorkerInit = { dev: scanner.dev, shared, port: channel.port2 };
    worker = new Worker(url, { workerData: init, transferList: [channel.port2] });
    exited = new Promise((resolve) => {
      worker!.once('error', (err) => (failure ??= err));
      worker!.once('exit', () => {
        if (done === undefined) failure ??= new Error('disk walk: the worker thread exited early');
        resolve();
      });
    });
  };
  const drain = (): void => {
    for (let m = port && receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port!)) {
      const msg: unknown = m.message;
      if (!isWorkerMessage(msg)) throw new Error(`disk walk: malformed message from the worker thread: ${describe(msg)}`);
      if (msg.t === 'idle') idleGot = msg.got;
      else if (msg.t === 'dirs') scanner.add(msg.dirs);
      else done = msg;
    }
  };
  const give = (): void => {
    if (scanner.stack.length === 0 || idleGot !== sent) return;
    if (worker === undefined) {
      if (scanner.result.inodes < threadAfter) return;
      start();
    }
    post({ t: 'dirs', dirs: scanner.take() });
    sent++;
  };
  /** Waits (without blocking the event loop) for the worker's next message, at most `ms`. */
  const waitWorker = async (ms: number): Promise<void> => {
    const seq = Atomics.load(slots, POSTED);
    drain();
    const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(slots, POSTED, seq, ms);
    if (w.async) {
      // A pending waitAsync does not keep Node's event loop alive; a timer of the same length does.
      const keepAlive = setTimeout(() => {}, ms + 1);
      await w.value;
      clearTimeout(keepAlive);
    }
    drain();
  };
  const check = (): void => {
    if (signal?.aborted) throw abortError(root, signal);
    if (failure !== undefined) throw failure;
  };

  try {
    let deadline = performance.now() + sliceMs;
    const pause = (): boolean => {
      drain();
      give();
      return performance.now() >= deadline;
    };
    for (;;) {
      if (!scanner.run(pause)) {
        await nextTurn(holdWhile);
        check();
        deadline = performance.now() + sliceMs;
        continue;
      }
      drain();
      if (!scanner.idle) continue; // the worker donated meanwhile
      if (worker === undefined || idleGot === sent) break; // both threads are done
      Atomics.store(slots, HUNGRY, 1);
      await waitWorker(Math.max(sliceMs, 5));
      check();
      Atomics.store(slots, HUNGRY, 0);
      deadline = performance.now() + sliceMs;
    }
    if (worker === undefined) return scanner.result;
    post({ t: 'finish' });
    while (done === undefined) {
      await waitWorker(Math.max(sliceMs, 5));
      if (done === undefined) check();
    }
    const result = scanner.result;
    result.bytes += done.result.bytes;
    result.inodes += done.result.inodes;
    result.files += done.result.files;
    result.errors += done.result.errors;
    result.denied += done.result.denied;
    if (result.deniedPath === undefined && done.result.deniedPath !== undefined) result.deniedPath = done.result.deniedPath;
    for (const [key, bytes] of done.linked) if (scanner.linked.has(key)) result.bytes -= bytes;
    return result;
  } finally {
    if (worker !== undefined) {
      if (done === undefined) {
        Atomics.store(slots, ABORT, 1); // the worker closes its directory and exits
        Atomics.add(slots, WAKE, 1);
        Atomics.notify(slots, WAKE);
        await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      port?.close();
      await worker.terminate();
    }
  }
}

/** ES2024 (Node ≥ 16), missing from this project's lib (ES2023). */
interface AtomicsWaitAsync {
  waitAsync(
    a: Int32Array,
    index: number,
    value: number,
    timeout: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}

/** The worker side of `walkShared` (src/disk/walker-worker.ts runs it with its workerData). */
export function serveWorker({ dev, shared, port }: WorkerInit): void {
  const slots = new Int32Array(shared);
  const scanner = new Scanner(dev);
  const post = (msg: WorkerMessage): void => {
    port.postMessage(msg);
    Atomics.add(slots, POSTED, 1);
    Atomics.notify(slots, POSTED);
  };
  const pause = (): boolean => {
    if (Atomics.load(slots, ABORT) !== 0) return true;
    if (Atomics.load(slots, HUNGRY) !== 0 && scanner.stack.length > 0) {
      Atomics.store(slots, HUNGRY, 0);
      post({ t: 'dirs', dirs: scanner.take() });
    }
    return false;
  };
  let got = 0;
  try {
    for (;;) {
      if (Atomics.load(slots, ABORT) !== 0) return;
      const seq = Atomics.load(slots, WAKE);
      const m = receiveMessageOnPort(port);
      if (m !== undefined) {
        const msg: unknown = m.message;
        if (!isCallerMessage(msg)) throw new Error(`disk walk worker: malformed message from the caller: ${describe(msg)}`);
        if (msg.t === 'finish') {
          post({ t: 'done', result: scanner.result, linked: scanner.linked });
          return;
        }
        scanner.add(msg.dirs);
        got++;
        continue;
      }
      if (!scanner.idle) {
        if (scanner.run(pause)) post({ t: 'idle', got });
        continue;
      }
      Atomics.wait(slots, WAKE, seq);
    }
  } finally {
    scanner.close();
    port.close();
  }
}
