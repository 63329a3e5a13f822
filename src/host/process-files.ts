import fs from 'node:fs';
import { errnoCode } from '../guards.js';
import { isMissing } from './file-reader.js';
import { hostPath } from './paths.js';

/** The process is gone (or was never there): ENOENT/ENOTDIR, or ESRCH from a dying task. */
function isGone(err: unknown): boolean {
  return isMissing(err) || errnoCode(err) === 'ESRCH';
}

/**
 * Counts the open file descriptors of `<procRoot>/<pid>/fd`, and how many of them are sockets
 * (the link target starts with `socket:`), as cAdvisor does for container_file_descriptors / container_sockets.
 * - `undefined` if the process is gone;
 * - a descriptor closed between the readdir and its readlink is not counted;
 * - any other failure (EACCES without CAP_SYS_PTRACE / CAP_DAC_READ_SEARCH) throws, for the caller to count.
 */
export function countFileDescriptors(procRoot: string, pid: number): { fds: number; sockets: number } | undefined {
  const dir = hostPath(procRoot, String(pid), 'fd');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
  let fds = 0;
  let sockets = 0;
  for (const name of names) {
    let target: string;
    try {
      target = fs.readlinkSync(hostPath(dir, name));
    } catch (err) {
      if (isGone(err)) continue;
      throw err;
    }
    fds++;
    if (target.startsWith('socket:')) sockets++;
  }
  return { fds, sockets };
}

/**
 * The network namespace of a process, as the kernel names it (`net:[4026531840]`): processes with equal ids
 * share a namespace. `undefined` if the process is gone; other failures (EACCES) throw.
 */
export function netnsId(procRoot: string, pid: number): string | undefined {
  try {
    return fs.readlinkSync(hostPath(procRoot, String(pid), 'ns', 'net'));
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}
