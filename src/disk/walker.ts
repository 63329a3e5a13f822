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
 *
 * The files: this one is the entry (options, the root, the single-thread loop); scanner.ts is the synchronous walk
 * state of one thread (lstat, counting, hard links, the UTF-8 and Buffer passes); walk-threads.ts is the two-thread
 * protocol, both sides, and walker-worker.ts the worker's entry; walk-slices.ts is what both loops do between slices.
 */
import { lstatSync, type Stats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { errnoCode } from '../guards.js';
import { Scanner, trimSlashes, type WalkResult } from './scanner.js';
import { abortError, nextTurn } from './walk-slices.js';
import { DEFAULT_WORKER, walkShared } from './walk-threads.js';

export { isDenied, type WalkResult } from './scanner.js';

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
  /** The worker entry (default: the compiled walker-worker.js next to walk-threads.js, in dist/disk/). */
  workerUrl?: URL;
  /** Entries the caller walks alone before it starts the worker (default 20,000): small trees stay on one thread. */
  threadAfter?: number;
}

const DEFAULT_THREADS = 2;
const THREAD_AFTER = 20_000;

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

  const workerUrl = opts.workerUrl ?? DEFAULT_WORKER;
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

function rootError(root: string | Buffer, cause: unknown): Error {
  const code = errnoCode(cause);
  const why = cause instanceof Error ? cause.message : String(cause);
  const err = new Error(`disk walk: cannot lstat the root ${String(root)}: ${why}`, { cause });
  return code === undefined ? err : Object.assign(err, { code });
}
