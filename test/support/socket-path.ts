/**
 * Unix socket paths for fake daemons and proxies. sun_path holds 108 bytes with its NUL, so a path must stay under
 * 108 bytes: deep temp dirs (a tap testdir, a long $TMPDIR) do not fit, so sockets live directly in os.tmpdir()
 * under short names (or in /tmp when os.tmpdir() itself is too long).
 */
import os from 'node:os';
import path from 'node:path';

/** The most bytes a socket path may have (sun_path is 108 bytes, NUL included). */
export const MAX_SOCKET_PATH_BYTES = 107;

let seq = 0;

/**
 * A short socket path, unique per process and per call: `<os.tmpdir()>/pv-<tag>-<pid>-<n>.sock`. Nothing is created;
 * callers remove a stale file of that name before listening and the file in teardown. Throws if even the /tmp
 * variant would not fit (a tag that is too long).
 */
export function socketPath(tag = 'sock'): string {
  const name = `pv-${tag}-${process.pid}-${seq++}.sock`;
  for (const dir of [os.tmpdir(), '/tmp']) {
    const p = path.join(dir, name);
    if (Buffer.byteLength(p) <= MAX_SOCKET_PATH_BYTES) return p;
  }
  throw new Error(`socket path too long for sun_path (${MAX_SOCKET_PATH_BYTES} bytes): ${path.join('/tmp', name)}`);
}
