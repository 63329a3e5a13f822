/** A cgroup's processes: its own cgroup.procs, and the descriptors and sockets of each process (/proc/<pid>/fd). */
import { procsFile } from '../cgroup/discover.js';
import type { CgroupLayout } from '../cgroup/types.js';
import { hostPath } from '../host/paths.js';
import { countFileDescriptors } from '../host/process-files.js';
import type { ProcessStats } from '../model/snapshot.js';
import { parseCgroupProcs } from '../proc/cgroup-procs.js';
import type { Pending } from './collector-errors.js';
import { settleFds, type FdOutcome } from './read-ahead.js';

/** The pids in the cgroup's cgroup.procs, as listed; undefined when the cgroup has no such file or it failed. */
export function readPids(layout: CgroupLayout, id: string, pending: Pending, read: (file: string) => string | undefined): number[] | undefined {
  const file = procsFile(layout, id);
  if (file === undefined) return undefined;
  try {
    const text = read(file);
    return text === undefined ? undefined : parseCgroupProcs(text, file);
  } catch (err) {
    pending.push(['process', file, err]);
    return undefined;
  }
}

/**
 * Process, descriptor and socket counts. A process that exits meanwhile is skipped; a failure (no CAP_SYS_PTRACE)
 * leaves descriptors and sockets absent, never a partial sum. `ahead`: counts the read-ahead thread made (each used
 * once); the others are counted here.
 */
export function processStats(procRoot: string, pids: readonly number[], pending: Pending, ahead?: Map<number, FdOutcome>): ProcessStats {
  let fds = 0;
  let sockets = 0;
  for (const pid of pids) {
    try {
      const counted = ahead?.get(pid);
      const n = counted !== undefined && ahead?.delete(pid) === true ? settleFds(counted) : countFileDescriptors(procRoot, pid);
      if (n === undefined) continue; // the process exited meanwhile
      fds += n.fds;
      sockets += n.sockets;
    } catch (err) {
      pending.push(['process', hostPath(procRoot, String(pid), 'fd'), err]);
      return { processes: pids.length };
    }
  }
  return { processes: pids.length, fileDescriptors: fds, sockets };
}
