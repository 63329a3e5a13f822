import { hostPath } from '../host/paths.js';
import { MAX, parseBlkioDevices, parseFlatKeyed, parseInt64, parseNumaStat, parsePerCpu, parseUint, parseUintOrMax } from './parse.js';
import { byteRows, defined, limitBytes, nodeOomKills, NUMA_TYPES, pageFaults, readParsed, seconds, workingSet } from './common.js';
import type { BlkioGroup, CgroupReadContext } from './types.js';
import type {
  BlkioDeviceStats,
  CgroupSpec,
  CgroupStats,
  CollectorName,
  CpuStats,
  DeviceCounters,
  DiskIoStats,
  HugetlbStats,
  MemoryStats,
  NumaStats,
  PidsStats,
} from '../model/cgroup.js';
import type { MetricKind } from '../model/kinds.js';

/**
 * cgroup v1 readers, with cAdvisor's semantics (container/libcontainer/handler.go over opencontainers/cgroups fs).
 * Each file is read at most once per call, from the hierarchy of its controller.
 */

/** USER_HZ: cpuacct.stat counts in clock ticks of 1/100 s on every Linux architecture podvisor runs on. */
const USER_HZ = 100;

/**
 * blkio accounting comes from the first of these groups whose bytes file has a device row: CFQ (kernels before 5.0),
 * BFQ, then blk-throttle's, which counts every bio even without a limit (opencontainers/cgroups fs/blkio.go order).
 * The scheduler's own statistics (service time, merges, queue, sectors) exist only with CFQ, or BFQ built with
 * CONFIG_BFQ_CGROUP_DEBUG.
 */
const BLKIO_GROUPS: readonly BlkioGroup[] = [
  {
    bytes: 'blkio.io_service_bytes_recursive',
    serviced: 'blkio.io_serviced_recursive',
    serviceTime: 'blkio.io_service_time_recursive',
    merged: 'blkio.io_merged_recursive',
    queued: 'blkio.io_queued_recursive',
    sectors: 'blkio.sectors_recursive',
  },
  {
    bytes: 'blkio.bfq.io_service_bytes_recursive',
    serviced: 'blkio.bfq.io_serviced_recursive',
    serviceTime: 'blkio.bfq.io_service_time_recursive',
    merged: 'blkio.bfq.io_merged_recursive',
    queued: 'blkio.bfq.io_queued_recursive',
    sectors: 'blkio.bfq.sectors_recursive',
  },
  { bytes: 'blkio.throttle.io_service_bytes_recursive', serviced: 'blkio.throttle.io_serviced_recursive' },
];

/** Reads `path` in the v1 hierarchies of `ctx.layout`; controllers that are not mounted give no data. */
export function readV1(ctx: CgroupReadContext, path: string): CgroupStats {
  const file = (controller: string, name: string): string | undefined => {
    const root = ctx.layout.v1.get(controller);
    return root === undefined ? undefined : hostPath(root, path, name);
  };
  const read = <T>(collector: CollectorName, controller: string, name: string, parse: (text: string, file: string) => T): T | undefined => {
    const f = file(controller, name);
    return f === undefined ? undefined : readParsed(ctx, collector, f, parse);
  };
  const on = (kind: MetricKind): boolean => ctx.kinds === undefined || ctx.kinds.has(kind);

  let cpu: CpuStats | undefined;
  if (on('cpu')) {
    const usage = read('cpu', 'cpuacct', 'cpuacct.usage', parseUint);
    const perCpu = on('percpu') ? read('cpu', 'cpuacct', 'cpuacct.usage_percpu', parsePerCpu) : undefined;
    const cpuacctStat = read('cpu', 'cpuacct', 'cpuacct.stat', parseFlatKeyed);
    const cpuStat = read('cpu', 'cpu', 'cpu.stat', parseFlatKeyed);
    const ns = (key: string): number | undefined => {
      const v = cpuStat?.get(key);
      return v === undefined ? undefined : v / 1e9;
    };
    const userTicks = cpuacctStat?.get('user');
    const systemTicks = cpuacctStat?.get('system');
    cpu = defined<CpuStats>({
      usageSeconds: usage === undefined ? undefined : usage / 1e9,
      perCpuSeconds: perCpu?.map((n) => n / 1e9),
      userSeconds: userTicks === undefined ? undefined : userTicks / USER_HZ,
      systemSeconds: systemTicks === undefined ? undefined : systemTicks / USER_HZ,
      periods: cpuStat?.get('nr_periods'),
      throttledPeriods: cpuStat?.get('nr_throttled'),
      throttledSeconds: ns('throttled_time'),
      burstPeriods: cpuStat?.get('nr_bursts'),
      burstSeconds: ns('burst_time'),
    });
  }

  let memory: MemoryStats | undefined;
  if (on('memory')) {
    const memUsage = read('memory', 'memory', 'memory.usage_in_bytes', parseUint);
    const memStat = read('memory', 'memory', 'memory.stat', parseFlatKeyed);
    memory = defined<MemoryStats>({
      usageBytes: memUsage,
      maxUsageBytes: read('memory', 'memory', 'memory.max_usage_in_bytes', parseUint),
      workingSetBytes: workingSet(memUsage, memStat, 'total_inactive_file'),
      rssBytes: memStat?.get('total_rss'),
      cacheBytes: memStat?.get('total_cache'),
      mappedFileBytes: memStat?.get('total_mapped_file'),
      swapBytes: memStat?.get('total_swap'),
      activeFileBytes: memStat?.get('total_active_file'),
      inactiveFileBytes: memStat?.get('total_inactive_file'),
      failcnt: read('memory', 'memory', 'memory.failcnt', parseUint),
      kernelUsageBytes: read('memory', 'memory', 'memory.kmem.usage_in_bytes', parseUint),
      ...pageFaults(memStat),
    });
  }

  // The root's count is the node's (/proc/vmstat): v1 counts a kill only in the cgroup of the killed task.
  const oomKills = !on('oom_event')
    ? undefined
    : path === '/'
      ? nodeOomKills(ctx)
      : read('oom', 'memory', 'memory.oom_control', parseFlatKeyed)?.get('oom_kill');

  let pids: PidsStats | undefined;
  if (on('process')) {
    const pidsMax = read('pids', 'pids', 'pids.max', parseUintOrMax);
    pids = defined<PidsStats>({
      current: read('pids', 'pids', 'pids.current', parseUint),
      max: pidsMax === MAX ? 0 : pidsMax,
    });
  }

  const quota = read('spec', 'cpu', 'cpu.cfs_quota_us', parseInt64);
  const limit = read('spec', 'memory', 'memory.limit_in_bytes', parseUint);
  const softLimit = read('spec', 'memory', 'memory.soft_limit_in_bytes', parseUint);
  const swapLimit = read('spec', 'memory', 'memory.memsw.limit_in_bytes', parseUint);
  const spec: CgroupSpec =
    defined<CgroupSpec>({
      cpuPeriod: read('spec', 'cpu', 'cpu.cfs_period_us', parseUint),
      cpuQuota: quota === undefined || quota < 0 ? undefined : quota,
      cpuShares: read('spec', 'cpu', 'cpu.shares', parseUint),
      memoryLimitBytes: limit === undefined ? undefined : limitBytes(limit),
      memoryReservationBytes: softLimit === undefined ? undefined : limitBytes(softLimit),
      memorySwapLimitBytes: swapLimit === undefined ? undefined : limitBytes(swapLimit),
    }) ?? {};

  let blkio: BlkioDeviceStats[] | undefined;
  let io: DiskIoStats | undefined;
  if (on('diskIO')) {
    const devices = (name: string | undefined): DeviceCounters[] | undefined =>
      name === undefined ? undefined : read('blkio', 'blkio', name, parseBlkioDevices);
    const found = readBlkio(ctx.blkioGroups ?? BLKIO_GROUPS, devices);
    if (found !== undefined) {
      blkio = byteRows(found.bytes);
      const g = found.group;
      io = defined<DiskIoStats>({
        serviced: devices(g.serviced),
        serviceTime: seconds(devices(g.serviceTime), 1e9),
        merged: devices(g.merged),
        queued: devices(g.queued),
        sectors: devices(g.sectors),
      });
    }
  }

  const hugetlb = on('hugetlb') ? readHugetlb(ctx, read) : undefined;
  let numa: NumaStats | undefined;
  if (on('memory_numa')) {
    const rows = read('memory', 'memory', 'memory.numa_stat', parseNumaStat);
    if (rows !== undefined) {
      const pick = (prefix: string): Record<string, Record<string, number>> | undefined => {
        const out: Record<string, Record<string, number>> = {};
        for (const type of NUMA_TYPES) {
          const nodes = rows.get(prefix + type);
          if (nodes !== undefined) out[type] = nodes;
        }
        return Object.keys(out).length === 0 ? undefined : out;
      };
      numa = defined<NumaStats>({ container: pick(''), hierarchy: pick('hierarchical_') });
    }
  }
  const memoryMigrate = on('cpuset') ? read('cpuset', 'cpuset', 'cpuset.memory_migrate', parseUint) : undefined;
  return defined<CgroupStats>({ cpu, memory, blkio, io, oomKills, pids, spec, hugetlb, numa, memoryMigrate }) ?? { spec };
}

/** hugetlb.<size>.{usage_in_bytes,max_usage_in_bytes,failcnt} for each huge page size. */
function readHugetlb(
  ctx: CgroupReadContext,
  read: <T>(collector: CollectorName, controller: string, name: string, parse: (text: string, file: string) => T) => T | undefined,
): HugetlbStats[] | undefined {
  const out: HugetlbStats[] = [];
  for (const size of ctx.hugepageSizes ?? []) {
    const usage = read('hugetlb', 'hugetlb', `hugetlb.${size}.usage_in_bytes`, parseUint);
    if (usage === undefined) continue;
    out.push({
      pagesize: size,
      usageBytes: usage,
      ...defined({
        maxUsageBytes: read('hugetlb', 'hugetlb', `hugetlb.${size}.max_usage_in_bytes`, parseUint),
        failcnt: read('hugetlb', 'hugetlb', `hugetlb.${size}.failcnt`, parseUint),
      }),
    });
  }
  return out.length === 0 ? undefined : out;
}

/**
 * The first group whose bytes file has a device row, with those rows; the first existing one (with no rows) if none
 * has any; undefined if no group's bytes file exists.
 */
function readBlkio(
  groups: readonly BlkioGroup[],
  read: (name: string) => DeviceCounters[] | undefined,
): { group: BlkioGroup; bytes: DeviceCounters[] } | undefined {
  let seen: { group: BlkioGroup; bytes: DeviceCounters[] } | undefined;
  for (const group of groups) {
    const rows = read(group.bytes);
    if (rows !== undefined && rows.length > 0) return { group, bytes: rows };
    if (rows !== undefined) seen ??= { group, bytes: rows };
  }
  return seen;
}

/**
 * Which blkio groups are worth trying in the cgroups of this gather, decided once at the hierarchy root. The files are
 * `_recursive`: the root's counts include every descendant's, so a file with no device row at the root (BFQ when
 * another scheduler runs) has none anywhere below, and a file missing at the root (CFQ on kernels >= 5.0) is missing
 * everywhere. Dropping those keeps the per-cgroup choice exactly as before and, on this kind of machine, turns three
 * reads per cgroup (one a failing open) into one. Unreadable root: no hint.
 */
export function probeBlkioGroups(ctx: CgroupReadContext): readonly BlkioGroup[] | undefined {
  const root = ctx.layout.v1.get('blkio');
  if (root === undefined) return [];
  let firstExisting: BlkioGroup | undefined;
  for (const [i, group] of BLKIO_GROUPS.entries()) {
    const file = hostPath(root, group.bytes);
    let rows: DeviceCounters[] | undefined;
    try {
      const text = ctx.read(file);
      rows = text === undefined ? undefined : parseBlkioDevices(text, file);
    } catch {
      return undefined;
    }
    if (rows === undefined) continue;
    if (rows.length > 0) return BLKIO_GROUPS.slice(i);
    firstExisting ??= group;
  }
  return firstExisting === undefined ? [] : [firstExisting];
}
