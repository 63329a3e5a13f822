/**
 * What podvisor learns from one cgroup's files, in base units (seconds, bytes).
 * Every field is optional: `undefined` means the file is absent or could not be read or parsed,
 * and it becomes no sample, never a fake 0.
 */

export interface CpuStats {
  /** v1 cpuacct.usage, v2 cpu.stat usage_usec. */
  usageSeconds?: number;
  /** v1 cpuacct.usage_percpu, index = cpu number. Not available on v2. */
  perCpuSeconds?: readonly number[];
  /** v1 cpuacct.stat user (USER_HZ ticks), v2 cpu.stat user_usec. */
  userSeconds?: number;
  /** v1 cpuacct.stat system, v2 cpu.stat system_usec. */
  systemSeconds?: number;
  /** cpu.stat nr_periods. */
  periods?: number;
  /** cpu.stat nr_throttled. */
  throttledPeriods?: number;
  /** v1 cpu.stat throttled_time (ns), v2 throttled_usec. */
  throttledSeconds?: number;
  /** cpu.stat nr_bursts (kernel >= 5.14, with cpu.cfs_burst_us / cpu.max.burst). */
  burstPeriods?: number;
  /** v1 cpu.stat burst_time (ns), v2 burst_usec. */
  burstSeconds?: number;
}

export interface MemoryStats {
  /** v1 memory.usage_in_bytes, v2 memory.current (root on v2: MemTotal - MemFree from /proc/meminfo). */
  usageBytes?: number;
  /** v1 memory.max_usage_in_bytes, v2 memory.peak (kernel >= 5.19). */
  maxUsageBytes?: number;
  /** usage - inactive_file (v1 total_inactive_file), floored at 0. */
  workingSetBytes?: number;
  /** v1 memory.stat total_rss, v2 anon. */
  rssBytes?: number;
  /** v1 total_cache, v2 file. */
  cacheBytes?: number;
  /** v1 total_mapped_file, v2 file_mapped. */
  mappedFileBytes?: number;
  /** v1 total_swap (memory.stat), v2 memory.swap.current (root on v2: SwapTotal - SwapFree). */
  swapBytes?: number;
  /** v1 total_active_file, v2 active_file. */
  activeFileBytes?: number;
  /** v1 total_inactive_file, v2 inactive_file. */
  inactiveFileBytes?: number;
  /** v1 memory.failcnt. No v2 equivalent: absent on v2. */
  failcnt?: number;
  /** v1 memory.kmem.usage_in_bytes; v2 memory.stat `kernel` (kernel >= 5.18; absent before, never a fake 0). */
  kernelUsageBytes?: number;
  /** v2 memory.events `high`: times the cgroup was throttled past memory.high. */
  eventsHigh?: number;
  /** v2 memory.events `max`: times usage hit memory.max. */
  eventsMax?: number;
  /**
   * Page faults, memory.stat `pgfault` / `pgmajfault` (v1 and v2). cAdvisor puts the same value in both scopes
   * (setMemoryStats), so `hierarchy` is NOT v1 `total_pgfault`: cAdvisor 0.38.7 on a v1 host shows the root's
   * `pgfault` in both scopes.
   */
  pgfault?: { container: number; hierarchy: number };
  pgmajfault?: { container: number; hierarchy: number };
}

/** One block device's counters of one blkio/io.stat statistic, by operation (`Read`, `Write`, `Total`, ...). */
export interface DeviceCounters {
  major: number;
  minor: number;
  values: Readonly<Record<string, number>>;
}

/**
 * Block I/O beyond bytes, cAdvisor's DiskIo. Counts by operation; times in seconds.
 * - serviced: v1 blkio.*io_serviced_recursive (Read, Write, Sync, Async, Discard, Total); v2 io.stat rios/wios (Read, Write).
 * - serviceTime, merged, queued, sectors: v1 CFQ (or BFQ debug) files only; the kernel has no v2 counterpart.
 * - cost*: v2 io.stat `cost.usage`, `cost.wait`, `cost.indebt`, `cost.indelay` (the iocost controller), one `Count` each.
 */
export interface DiskIoStats {
  serviced?: readonly DeviceCounters[];
  serviceTime?: readonly DeviceCounters[];
  merged?: readonly DeviceCounters[];
  queued?: readonly DeviceCounters[];
  sectors?: readonly DeviceCounters[];
  costUsage?: readonly DeviceCounters[];
  costWait?: readonly DeviceCounters[];
  costIndebt?: readonly DeviceCounters[];
  costIndelay?: readonly DeviceCounters[];
}

/** One huge page size's accounting (`pagesize` label as cAdvisor writes it: `2MB`, `1GB`). */
export interface HugetlbStats {
  pagesize: string;
  /** v1 hugetlb.<size>.usage_in_bytes, v2 hugetlb.<size>.current. */
  usageBytes?: number;
  /** v1 hugetlb.<size>.max_usage_in_bytes; v2 has none (absent). */
  maxUsageBytes?: number;
  /** v1 hugetlb.<size>.failcnt, v2 hugetlb.<size>.events `max`. */
  failcnt?: number;
}

/** memory.numa_stat, in pages, per NUMA node: `type` (file, anon, unevictable) → node → pages. */
export interface NumaStats {
  /** The cgroup's own pages (v1 `file=`, `anon=`, `unevictable=`; v2 the same rows, converted from bytes). */
  container?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** v1 `hierarchical_*` rows; v2 has none (its rows are already hierarchical: absent here). */
  hierarchy?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** One block device's I/O from v1 blkio.*io_service_bytes_recursive or v2 io.stat. */
export interface BlkioDeviceStats {
  major: number;
  minor: number;
  /** Bytes by operation: v1 Read, Write, Sync, Async, Discard, Total; v2 Read, Write. */
  bytes: Readonly<Record<string, number>>;
}

export interface PidsStats {
  /** pids.current: tasks (threads) in the cgroup. */
  current?: number;
  /** pids.max; "max" (unlimited) is 0, as cAdvisor reports it. */
  max?: number;
}

/** Limits and shares (cAdvisor's ContainerSpec). */
export interface CgroupSpec {
  /** v1 cpu.cfs_period_us, v2 cpu.max period (µs, as cAdvisor exports it). */
  cpuPeriod?: number;
  /** v1 cpu.cfs_quota_us, v2 cpu.max quota (µs). `undefined` when unlimited (-1 / "max"): cAdvisor then emits nothing. */
  cpuQuota?: number;
  /** v1 cpu.shares, v2 cpu.weight converted back to shares (2 + (weight-1)*262142/9999). */
  cpuShares?: number;
  /** v1 memory.limit_in_bytes, v2 memory.max. Unlimited ("max", or above 2^62) is 0, as cAdvisor. */
  memoryLimitBytes?: number;
  /** v1 memory.soft_limit_in_bytes, v2 memory.min. Unlimited is 0. */
  memoryReservationBytes?: number;
  /** v1 memory.memsw.limit_in_bytes, v2 memory.swap.max. Unlimited is 0. */
  memorySwapLimitBytes?: number;
}

/** A PSI file (cpu.pressure, memory.pressure, io.pressure): the `total` fields, in seconds. */
export interface PressureStats {
  someSeconds?: number;
  fullSeconds?: number;
}

export interface CgroupStats {
  cpu?: CpuStats;
  memory?: MemoryStats;
  blkio?: readonly BlkioDeviceStats[];
  io?: DiskIoStats;
  /**
   * OOM kills counted by the kernel: v2 memory.events `oom_kill` (this cgroup and its descendants), v1
   * memory.oom_control `oom_kill` (kernel >= 4.13; this cgroup only). Absent where the kernel has no counter.
   */
  oomKills?: number;
  hugetlb?: readonly HugetlbStats[];
  numa?: NumaStats;
  /** v1 cpuset.memory_migrate (0 or 1). */
  memoryMigrate?: number;
  pids?: PidsStats;
  spec: CgroupSpec;
  pressure?: { cpu?: PressureStats; memory?: PressureStats; io?: PressureStats };
}

/**
 * The collectors a file belongs to: podvisor_collector_errors_total{collector} counts the files of each that existed
 * but could not be read or parsed. Every one of them is exported, 0 included.
 */
export const COLLECTORS = [
  'accelerator',
  'blkio',
  'cpu',
  'cpuset',
  'discovery',
  'hugetlb',
  'machine',
  'memory',
  'network',
  'oom',
  'pids',
  'pressure',
  'process',
  'sched',
  'spec',
] as const;
export type CollectorName = (typeof COLLECTORS)[number];
