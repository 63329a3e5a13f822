/**
 * The in-process disk-usage walker: what cAdvisor ≤v0.32 got from `du -s` plus `find -xdev` and ≥v0.33
 * from `GetDirUsage` (`lib/fs/fs.go`), without a child process and without starving the event loop.
 *
 * - lstat only: a symlink counts its own blocks and one entry and is never followed;
 * - one device: an entry whose st_dev differs from the root's is not entered and adds no bytes (as
 *   `du -x`), but is listed as an entry (as `find -xdev`, which prints the mount point itself);
 * - bytes are `st_blocks * 512`; a non-directory with nlink > 1 adds its bytes once (as du);
 * - entries are counted per name, hard links included (as `find -xdev | wc -l`);
 * - names are read and joined as Buffers, so newlines and invalid UTF-8 survive;
 * - one directory handle open at a time, read in batches; subdirectories wait on an explicit stack
 *   (depth-first, no recursion), and nothing per file outlives its lstat except nlink > 1 inodes;
 * - the work runs in synchronous slices of `sliceMs`, with a `setImmediate` turn and an abort check
 *   between slices. Synchronous lstat in slices measured ~4.5× faster than the promise API here
 *   (bench/results/2026-11-22-walker.md).
 */
import { lstatSync, opendirSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface WalkResult {
  /** Sum of st_blocks * 512 on the root's device, hard links once: `du -s -B1 -x`. */
  bytes: number;
  /** Entries seen, the root and mount points included, hard links per name: `find -xdev | wc -l`. */
  inodes: number;
  /** The non-directory entries among `inodes` (regular files, symlinks, sockets, devices, fifos). */
  files: number;
  /** Entries or directories that could not be read (vanished, permission denied, ...); never fatal. */
  errors: number;
}

export interface WalkOptions {
  signal?: AbortSignal;
  /** yield to the event loop every this many ms of work (default 10) */
  sliceMs?: number;
}

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

  const dev = rootStat.dev;
  const result: WalkResult = { bytes: 0, inodes: 0, files: 0, errors: 0 };
  const linked = new Set<number | string>();
  const stack: PendingDir[] = [];

  /** Counts one lstat'ed entry; returns true when it is a directory to enter. */
  const count = (path: string | Buffer, st: Stats): boolean => {
    result.inodes++;
    if (st.dev !== dev) return false; // a mount point: listed by find -xdev, skipped by du -x
    const isDir = st.isDirectory();
    if (!isDir) {
      result.files++;
      if (st.nlink > 1) {
        const key = inodeKey(path, st);
        if (key === undefined) {
          result.errors++;
          return false;
        }
        if (linked.has(key)) return false;
        linked.add(key);
      }
    }
    result.bytes += st.blocks * 512;
    return isDir;
  };

  if (count(rootPath, rootStat)) stack.push({ path: rootPath, ino: rootStat.ino, parent: undefined });

  let dir: Dir | undefined;
  let current: PendingDir | undefined;
  let pass: Pass = Pass.Utf8;
  let skipped = false; // pass Utf8 met a name that only the Buffer pass can spell
  try {
    let deadline = performance.now() + sliceMs;
    let sinceClock = 0;
    for (;;) {
      if (++sinceClock >= CLOCK_EVERY) {
        sinceClock = 0;
        if (performance.now() >= deadline) {
          await nextTurn();
          if (signal?.aborted) throw abortError(root, signal);
          deadline = performance.now() + sliceMs;
        }
      }

      if (dir === undefined || current === undefined) {
        current = stack.pop();
        if (current === undefined) break;
        pass = typeof current.path === 'string' ? Pass.Utf8 : Pass.BufferAll;
        skipped = false;
        dir = openDir(current.path, pass, result);
        continue;
      }

      let entry: Dirent | null;
      try {
        entry = dir.readSync();
      } catch (err) {
        countError(err, result); // e.g. the directory was removed while we read it
        entry = null;
      }
      if (entry === null) {
        closeQuietly(dir);
        dir = undefined;
        if (pass === Pass.Utf8 && skipped) {
          pass = Pass.BufferReplaced;
          dir = openDir(Buffer.from(current.path as string), pass, result);
        }
        continue;
      }

      let path: string | Buffer;
      if (pass === Pass.Utf8) {
        const name = entry.name;
        if (name.includes(REPLACEMENT)) {
          skipped = true;
          continue;
        }
        path = joinString(current.path as string, name);
      } else {
        // With `encoding: 'buffer'` the name is a Buffer; @types/node still types it as string.
        const name = entry.name as unknown as Buffer;
        if (pass === Pass.BufferReplaced && !name.toString('utf8').includes(REPLACEMENT)) continue;
        path = joinBuffer(Buffer.isBuffer(current.path) ? current.path : Buffer.from(current.path), name);
      }

      let st: Stats | undefined;
      try {
        st = lstatSync(path, { throwIfNoEntry: false });
      } catch (err) {
        // Listed but not lstat-able (a directory readable without search permission): find -xdev
        // still lists the name, so it counts as an entry, with no bytes.
        countError(err, result);
        result.inodes++;
        if (!entry.isDirectory()) result.files++;
        continue;
      }
      if (st === undefined) {
        result.errors++; // vanished between readdir and lstat
        continue;
      }
      if (count(path, st)) {
        if (isAncestor(current, st.ino)) result.errors++; // a bind mount of an ancestor: a cycle
        else stack.push({ path, ino: st.ino, parent: current });
      }
    }
  } finally {
    if (dir !== undefined) closeQuietly(dir);
  }
  return result;
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
    countError(err, result);
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

/** The hard-link key: the inode number (one device), exact even past 2^53 via a bigint lstat. */
function inodeKey(path: string | Buffer, st: Stats): number | string | undefined {
  if (Number.isSafeInteger(st.ino)) return st.ino;
  try {
    return lstatSync(path, { bigint: true }).ino.toString();
  } catch {
    return undefined;
  }
}

function isAncestor(dir: PendingDir, ino: number): boolean {
  for (let d: PendingDir | undefined = dir; d !== undefined; d = d.parent) {
    if (d.ino === ino) return true;
  }
  return false;
}

/** Filesystem errors (they carry an errno code) are counted; anything else is a bug and is thrown. */
function countError(err: unknown, result: WalkResult): void {
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    result.errors++;
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
