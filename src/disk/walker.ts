/**
 * The in-process disk-usage walker: what cAdvisor ≤v0.32 got from `du -s` plus `find -xdev` and ≥v0.33
 * from `GetDirUsage` (`lib/fs/fs.go`), without a child process and without starving the event loop.
 *
 * - lstat only: a symlink counts its own blocks and one entry and is never followed;
 * - one device: an entry whose st_dev differs from the root's is not entered and adds no bytes (as
 *   `du -x`), but is listed as an entry (as `find -xdev`, which prints the mount point itself);
 * - bytes are `st_blocks * 512`; a non-directory with nlink > 1 adds its bytes once (as du);
 * - entries are counted per name, hard links included (as `find -xdev | wc -l`);
 * - read errors are counted, not thrown: entries that vanish mid-walk are normal (as for `du`), but EACCES/EPERM
 *   are also counted as `denied`: the sums then miss whatever the walk could not see, and the caller
 *   (usage.ts) fails the measurement instead of publishing them;
 * - names are read and joined as Buffers, so newlines and invalid UTF-8 survive;
 * - one directory handle open at a time, read in batches; subdirectories wait on an explicit stack
 *   (depth-first, no recursion), and nothing per file outlives its lstat except nlink > 1 inodes;
 * - the work runs in synchronous slices of `sliceMs`, with a `setImmediate` turn and an abort check
 *   between slices. Synchronous lstat in slices measured ~4.5× faster than the promise API here
 *   (bench/results/2026-11-22-walker.md);
 * - past 20,000 entries a worker thread (walker-worker.ts) takes whole subtrees off the caller's stack
 *   (one directory handle open per thread), so both cores lstat: 1.7× the single-thread speed on 2 vCPUs.
 */
import { lstatSync, opendirSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as eventLoopTurn } from 'node:timers/promises';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/** One event-loop turn between slices, then as long as `holdWhile` returns a promise, that promise. */
async function nextTurn(holdWhile?: () => Promise<unknown> | undefined): Promise<void> {
  await eventLoopTurn();
  for (let hold = holdWhile?.(); hold !== undefined; hold = holdWhile?.()) await hold;
}

export interface WalkResult {
  /** Sum of st_blocks * 512 on the root's device, hard links once: `du -s -B1 -x`. */
  bytes: number;
  /** Entries seen, the root and mount points included, hard links per name: `find -xdev | wc -l`. */
  inodes: number;
  /** The non-directory entries among `inodes` (regular files, symlinks, sockets, devices, fifos). */
  files: number;
  /** Entries or directories that could not be read (vanished, permission denied, ...); the walk still resolves. */
  errors: number;
  /**
   * The part of `errors` that was EACCES or EPERM: a directory that could not be opened or an entry that could not
   * be lstat'ed for lack of permission, so whatever lies below it is missing from `bytes` and `inodes`. Unlike a
   * vanished entry (ENOENT, ENOTDIR: deleted during the walk, normal, as for `du`), this is an undercount the
   * caller must not publish as the usage (see `DiskPermissionError`).
   */
  denied: number;
  /** The first denied path, when `denied` > 0 (for the message). */
  deniedPath?: string;
}

/** EACCES and EPERM: the walk could not see everything for lack of permission (e.g. no CAP_DAC_READ_SEARCH). */
export function isDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

export interface WalkOptions {
  signal?: AbortSignal;
  /** yield to the event loop every this many ms of work (default 10) */
  sliceMs?: number;
  /**
   * Asked between slices; while it returns a promise, the walk waits for it (e.g. a gather running on the same
   * thread: the scrape waiting on it goes first). Default: never hold.
   */
  holdWhile?: () => Promise<unknown> | undefined;
  /**
   * 1: walk in the caller's thread only; 2: also in a worker thread (both cores: the lstats are mostly
   * kernel time; more acts as 2). Default 2. Running from source (tsx) without `workerUrl`: always 1.
   */
  threads?: number;
  /** The worker entry (default: the compiled walker-worker.js next to this module). */
  workerUrl?: URL;
  /** Entries the caller walks alone before it starts the worker (default 20,000): small trees stay on one thread. */
  threadAfter?: number;
}

const DEFAULT_THREADS = 2;
const THREAD_AFTER = 20_000;
const DEFAULT_WORKER = new URL('./walker-worker.js', import.meta.url);
/** Loaded as .ts (tsx): a worker would not get tsx's loader, and there is no compiled worker next to it. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** A directory waiting to be read; `parent` links the ancestors for the cycle check (bind mounts). */
interface PendingDir {
  path: string | Buffer;
  ino: number;
  parent: PendingDir | undefined;
}

const SLASH = 0x2f;
/** Entries per `Dir` read batch: bounded memory for directories of any size. */
const DIR_BUFFER = 512;
/** Entries between clock reads. */
const CLOCK_EVERY = 64;

/**
 * Walks `root` and sums its disk usage. Rejects when the root cannot be lstat'ed, and with an
 * `AbortError` when `signal` aborts: a cancelled walk never resolves to a partial number.
 */
export async function walk(root: string | Buffer, opts: WalkOptions = {}): Promise<WalkResult> {
  const { signal } = opts;
  const sliceMs = opts.sliceMs ?? 10;
  if (signal?.aborted) throw abortError(root, signal);

  const rootBuffer = trimSlashes(typeof root === 'string' ? Buffer.from(root) : root);
  // A root that survives a UTF-8 round trip is walked with string paths (faster); otherwise as Buffers.
  const rootString = rootBuffer.toString('utf8');
  const rootPath = Buffer.from(rootString).equals(rootBuffer) ? rootString : rootBuffer;
  let rootStat: Stats;
  try {
    rootStat = lstatSync(rootPath);
  } catch (err) {
    throw rootError(root, err);
  }

  const scanner = new Scanner(rootStat.dev);
  if (scanner.count(rootPath, rootStat)) scanner.stack.push({ path: rootPath, ino: rootStat.ino, parent: undefined });

  const workerUrl = opts.workerUrl ?? (FROM_SOURCE ? undefined : DEFAULT_WORKER);
  const threads = workerUrl === undefined ? 1 : (opts.threads ?? DEFAULT_THREADS);
  try {
    if (threads > 1 && workerUrl !== undefined) {
      return await walkShared(root, scanner, workerUrl, sliceMs, opts.threadAfter ?? THREAD_AFTER, signal, opts.holdWhile);
    }
    let deadline = performance.now() + sliceMs;
    const pause = (): boolean => performance.now() >= deadline;
    while (!scanner.run(pause)) {
      await nextTurn(opts.holdWhile);
      if (signal?.aborted) throw abortError(root, signal);
      deadline = performance.now() + sliceMs;
    }
    return scanner.result;
  } finally {
    scanner.close();
  }
}

/** The second thread: int32 slots of the SharedArrayBuffer shared with it. */
const ABORT = 0; // set by the caller: stop, close, exit
const HUNGRY = 1; // set by the caller when it has nothing left: donate waiting directories
const WAKE = 2; // bumped (and notified) by the caller after each message it posts
const POSTED = 3; // bumped (and notified) by the worker after each message it posts

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

/**
 * Two threads: the caller walks in slices as above and hands the shallowest half of its waiting
 * directories (whole subtrees) to the worker whenever the worker is idle; when the caller runs dry it
 * asks the worker for some of its own. Each thread keeps its own nlink > 1 map; the caller dedupes
 * the worker's against its own at the end.
 */
async function walkShared(
  root: string | Buffer,
  scanner: Scanner,
  url: URL,
  sliceMs: number,
  threadAfter: number,
  signal: AbortSignal | undefined,
  holdWhile?: () => Promise<unknown> | undefined,
): Promise<WalkResult> {
  const shared = new SharedArrayBuffer(4 * 4);
  const slots = new Int32Array(shared);
  let worker: Worker | undefined;
  let port: MessagePort | undefined;
  let exited: Promise<void> | undefined;
  let failure: unknown;
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
      const msg = m.message as WorkerMessage;
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
        const msg = m.message as CallerMessage;
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

/** A directory handed between threads: the path (a string or bytes) and the inodes of its ancestors. */
export interface SharedDir {
  path: string | Uint8Array;
  ino: number;
  ancestors: number[];
}

/** The synchronous walk state of one thread: counts, the nlink > 1 inodes, the open directory, the stack. */
class Scanner {
  readonly result: WalkResult = { bytes: 0, inodes: 0, files: 0, errors: 0, denied: 0 };
  /** Non-directories with nlink > 1 seen by this thread: inode key → the bytes added for it. */
  readonly linked = new Map<number | string, number>();
  readonly stack: PendingDir[] = [];
  private dir: Dir | undefined;
  private current: PendingDir | undefined;
  private pass: Pass = Pass.Utf8;
  private skipped = false; // pass Utf8 met a name that only the Buffer pass can spell

  constructor(readonly dev: number) {}

  get idle(): boolean {
    return this.dir === undefined && this.stack.length === 0;
  }

  /** Counts one lstat'ed entry; returns true when it is a directory to enter. */
  count(path: string | Buffer, st: Stats): boolean {
    const result = this.result;
    result.inodes++;
    if (st.dev !== this.dev) return false; // a mount point: listed by find -xdev, skipped by du -x
    const isDir = st.isDirectory();
    const bytes = st.blocks * 512;
    if (!isDir) {
      result.files++;
      if (st.nlink > 1) {
        const key = inodeKey(path, st, result);
        if (key === undefined) return false;
        if (this.linked.has(key)) return false;
        this.linked.set(key, bytes);
      }
    }
    result.bytes += bytes;
    return isDir;
  }

  /** Hands over the shallowest half of the waiting directories (the largest subtrees), rounded up. */
  take(): SharedDir[] {
    return this.stack.splice(0, Math.ceil(this.stack.length / 2)).map((d) => {
      const ancestors: number[] = [];
      for (let p = d.parent; p !== undefined; p = p.parent) ancestors.push(p.ino);
      return { path: d.path, ino: d.ino, ancestors };
    });
  }

  add(dirs: SharedDir[]): void {
    for (const d of dirs) {
      let parent: PendingDir | undefined;
      for (let i = d.ancestors.length - 1; i >= 0; i--) parent = { path: '', ino: d.ancestors[i]!, parent };
      // a Buffer arrives as a plain Uint8Array: wrap it again, without copying
      const path = typeof d.path === 'string' ? d.path : Buffer.from(d.path.buffer, d.path.byteOffset, d.path.byteLength);
      this.stack.push({ path, ino: d.ino, parent });
    }
  }

  /**
   * Walks until nothing is left (returns true) or `pause`, asked every CLOCK_EVERY entries, returns
   * true (returns false; the next call resumes where this one stopped).
   */
  run(pause: () => boolean): boolean {
    const result = this.result;
    let sinceClock = 0;
    for (;;) {
      if (++sinceClock >= CLOCK_EVERY) {
        sinceClock = 0;
        if (pause()) return false;
      }

      const dir = this.dir;
      const current = this.current;
      if (dir === undefined || current === undefined) {
        const next = this.stack.pop();
        this.current = next;
        if (next === undefined) return true;
        this.pass = typeof next.path === 'string' ? Pass.Utf8 : Pass.BufferAll;
        this.skipped = false;
        this.dir = openDir(next.path, this.pass, result);
        continue;
      }

      let entry: Dirent | null;
      try {
        entry = dir.readSync();
      } catch (err) {
        countError(err, result, current.path); // e.g. the directory was removed while we read it
        entry = null;
      }
      if (entry === null) {
        closeQuietly(dir);
        this.dir = undefined;
        if (this.pass === Pass.Utf8 && this.skipped) {
          this.pass = Pass.BufferReplaced;
          this.dir = openDir(Buffer.from(current.path as string), this.pass, result);
        }
        continue;
      }

      let path: string | Buffer;
      if (this.pass === Pass.Utf8) {
        const name = entry.name;
        if (name.includes(REPLACEMENT)) {
          this.skipped = true;
          continue;
        }
        path = joinString(current.path as string, name);
      } else {
        // With `encoding: 'buffer'` the name is a Buffer; @types/node still types it as string.
        const name = entry.name as unknown as Buffer;
        if (this.pass === Pass.BufferReplaced && !name.toString('utf8').includes(REPLACEMENT)) continue;
        path = joinBuffer(Buffer.isBuffer(current.path) ? current.path : Buffer.from(current.path), name);
      }

      let st: Stats | undefined;
      try {
        st = lstatSync(path, { throwIfNoEntry: false });
      } catch (err) {
        // Listed but not lstat-able (a directory readable without search permission): find -xdev
        // still lists the name, so it counts as an entry, with no bytes.
        countError(err, result, path);
        result.inodes++;
        if (!entry.isDirectory()) result.files++;
        continue;
      }
      if (st === undefined) {
        result.errors++; // vanished between readdir and lstat
        continue;
      }
      if (this.count(path, st)) {
        if (isAncestor(current, st.ino))
          result.errors++; // a bind mount of an ancestor: a cycle
        else this.stack.push({ path, ino: st.ino, parent: current });
      }
    }
  }

  close(): void {
    if (this.dir !== undefined) closeQuietly(this.dir);
    this.dir = undefined;
  }
}

/**
 * How a directory is read. String paths are ~20% cheaper than Buffers for opendir and lstat, so a
 * directory is first read as UTF-8 strings, skipping any name that decodes with U+FFFD (invalid UTF-8
 * or a literal U+FFFD); if there were any, it is read again as Buffers for exactly those names. Below a
 * directory whose own name needed a Buffer, everything is read as Buffers.
 */
const enum Pass {
  Utf8,
  BufferReplaced,
  BufferAll,
}

const REPLACEMENT = '\uFFFD';

function openDir(path: string | Buffer, pass: Pass, result: WalkResult): Dir | undefined {
  try {
    return pass === Pass.Utf8
      ? opendirSync(path as string, { bufferSize: DIR_BUFFER })
      : // @types/node's OpenDirOptions omits 'buffer', which node accepts (names come back as Buffers)
        opendirSync(path as string, { encoding: 'buffer' as BufferEncoding, bufferSize: DIR_BUFFER });
  } catch (err) {
    countError(err, result, path);
    return undefined;
  }
}

function joinString(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function joinBuffer(dir: Buffer, name: Buffer): Buffer {
  const slash = dir.length > 0 && dir[dir.length - 1] === SLASH ? 0 : 1;
  const out = Buffer.allocUnsafe(dir.length + slash + name.length);
  dir.copy(out, 0);
  if (slash === 1) out[dir.length] = SLASH;
  name.copy(out, dir.length + slash);
  return out;
}

/** `/a/b//` → `/a/b`; `/` stays `/`. */
function trimSlashes(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === SLASH) end--;
  return end === path.length ? path : path.subarray(0, end);
}

/** The hard-link key: the inode number (one device), exact even past 2^53 via a bigint lstat (its failure is counted). */
function inodeKey(path: string | Buffer, st: Stats, result: WalkResult): number | string | undefined {
  if (Number.isSafeInteger(st.ino)) return st.ino;
  try {
    return lstatSync(path, { bigint: true }).ino.toString();
  } catch (err) {
    countError(err, result, path);
    return undefined;
  }
}

function isAncestor(dir: PendingDir, ino: number): boolean {
  for (let d: PendingDir | undefined = dir; d !== undefined; d = d.parent) {
    if (d.ino === ino) return true;
  }
  return false;
}

/** Filesystem errors (they carry an errno code) are counted, EACCES/EPERM also as denied; anything else is a bug and is thrown. */
function countError(err: unknown, result: WalkResult, path: string | Buffer): void {
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    result.errors++;
    if (isDenied(err)) {
      result.denied++;
      result.deniedPath ??= path.toString();
    }
    return;
  }
  throw err;
}

function closeQuietly(dir: Dir): void {
  try {
    dir.closeSync();
  } catch {
    // already closed or its fd is gone: nothing left to release
  }
}

function abortError(root: string | Buffer, signal: AbortSignal): Error {
  const err = new Error(`disk walk of ${String(root)} aborted`, { cause: signal.reason });
  err.name = 'AbortError';
  return Object.assign(err, { code: 'ABORT_ERR' });
}

function rootError(root: string | Buffer, cause: unknown): Error {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = cause instanceof Error ? cause.message : String(cause);
  const err = new Error(`disk walk: cannot lstat the root ${String(root)}: ${why}`, { cause });
  return code === undefined ? err : Object.assign(err, { code });
}
