/**
 * The synchronous walk state of one thread (the caller's, and the worker's in walk-threads.ts): lstat, counting,
 * hard-link dedupe, the UTF-8 and Buffer passes over a directory, one directory handle open at a time, and the stack of
 * directories waiting to be read. No event loop, no threads: `run` works until its `pause` says stop.
 */
import { lstatSync, opendirSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { errnoCode } from '../guards.js';

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
  const code = errnoCode(err);
  return code === 'EACCES' || code === 'EPERM';
}

/** A directory waiting to be read; `parent` links the ancestors for the cycle check (bind mounts). */
export interface PendingDir {
  path: string | Buffer;
  ino: number;
  parent: PendingDir | undefined;
}

const SLASH = 0x2f;
/** Entries per `Dir` read batch: bounded memory for directories of any size. */
const DIR_BUFFER = 512;
/** Entries between clock reads. */
const CLOCK_EVERY = 64;

/** A directory handed between threads: the path (a string or bytes) and the inodes of its ancestors. */
export interface SharedDir {
  path: string | Uint8Array;
  ino: number;
  ancestors: number[];
}

/** The synchronous walk state of one thread: counts, the nlink > 1 inodes, the open directory, the stack. */
export class Scanner {
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
      ? opendirSync(path, { bufferSize: DIR_BUFFER })
      : // @types/node's OpenDirOptions omits 'buffer', which node accepts (names come back as Buffers)
        opendirSync(path, { encoding: 'buffer' as BufferEncoding, bufferSize: DIR_BUFFER });
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
export function trimSlashes(path: Buffer): Buffer {
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
  if (err instanceof Error && errnoCode(err) !== undefined) {
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
