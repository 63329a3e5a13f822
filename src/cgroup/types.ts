/** Where the cgroup hierarchies are, and what a cgroup reader needs from its caller. */
import type { CollectorName } from '../model/cgroup.js';
import type { MetricKind } from '../model/kinds.js';

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
  /** /proc/vmstat's text (or undefined): the root cgroup's OOM kill count. Absent: not read. */
  readVmstat?(): string | undefined;
  /**
   * v1 only: the blkio file groups worth trying, in order, as found by probeBlkioGroups at the hierarchy root once per
   * gather. Absent: try every group in each cgroup.
   */
  blkioGroups?: readonly BlkioGroup[];
  /** The metric kinds on: files of the others are not read. Absent: every kind. */
  kinds?: ReadonlySet<MetricKind>;
  /** Huge page sizes as cgroup files name them (`2MB`, `1GB`), for the hugetlb kind; absent or empty: none. */
  hugepageSizes?: readonly string[];
}

/**
 * One v1 blkio accounting: the bytes and ops files, and the scheduler's own statistics (CFQ, or BFQ with
 * CONFIG_BFQ_CGROUP_DEBUG). Throttle accounting has only the first two.
 */
export interface BlkioGroup {
  bytes: string;
  serviced: string;
  serviceTime?: string;
  merged?: string;
  queued?: string;
  sectors?: string;
}
