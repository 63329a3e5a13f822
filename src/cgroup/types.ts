/** Where the cgroup hierarchies are, and what a cgroup reader needs from its caller. */
import type { CollectorName } from '../model/cgroup.js';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

/** Where the cgroup hierarchies are mounted, as absolute paths already resolved under --rootfs. */
export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 controller (`cpu`, `cpuacct`, `memory`, `blkio`, `pids`, `cpuset`, `devices`, ...) → its mount point. Co-mounted controllers share a dir. */
  v1: ReadonlyMap<string, string>;
  /** The cgroup2 mount point, if any (pure v2, or hybrid's `/sys/fs/cgroup/unified`). */
  v2?: string;
}

/** Everything a cgroup reader needs from outside. */
export interface CgroupReadContext {
  layout: CgroupLayout;
  /** Reads a whole pseudo-file; `undefined` if it does not exist; throws otherwise. */
  read(file: string): string | undefined;
  /** A file exists but could not be read or parsed: the series it feeds are left out and the error counted. */
  onError(collector: CollectorName, file: string, err: unknown): void;
  /** Root-cgroup memory on v2 comes from /proc/meminfo; this returns its text (or undefined). */
  readMeminfo(): string | undefined;
  /**
   * v1 only: the blkio files worth trying, in order, as found by probeBlkioFiles at the hierarchy root once per
   * gather. Absent: try every candidate in each cgroup.
   */
  blkioFiles?: readonly string[];
}
