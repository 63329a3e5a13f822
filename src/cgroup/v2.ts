import { hostPath } from '../host/paths.js';
import { parseMeminfo } from '../proc/meminfo.js';
import { MAX, parseCpuMax, parseFlatKeyed, parseIoStatAll, parseNumaStat, parsePressure, parseUint, parseUintOrMax } from './parse.js';
import { byteRows, defined, limitBytes, nodeOomKills, NUMA_TYPES, pageFaults, readParsed, seconds, workingSet } from './common.js';
import type { CgroupReadContext } from './types.js';
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
  PressureStats,
} from '../model/cgroup.js';
import type { MetricKind } from '../model/kinds.js';

/**
 * cgroup v2 readers (Documentation/admin-guide/cgroup-v2.rst), with cAdvisor's semantics. The root cgroup has
 * no memory.current, memory.swap.*, memory.events, cpu.max, cpu.weight, memory.max or pids.* files: its usage is
 * `anon + file` of its memory.stat, as the kubelet's cAdvisor reports it (opencontainers/cgroups fs2
 * rootStatsFromMeminfo), its swap SwapTotal − SwapFree from /proc/meminfo, its OOM kills the node's
 * (/proc/vmstat), and its spec stays empty.
 */

/** Shown in errors about the root cgroup's memory, which is read through `ctx.readMeminfo()`. */
const MEMINFO = '/proc/meminfo';

/** cpu.weight (1..10000) back to v1 shares (2..262144), as cAdvisor converts it (integer division). */
export function weightToShares(weight: number): number {
  return 2 + Math.floor(((weight - 1) * 262142) / 9999);
}

/** PSI totals of one cgroup directory; used on v2 and for hybrid's unified hierarchy. */
export function readPressure(ctx: CgroupReadContext, dir: string): CgroupStats['pressure'] {
  const read = (name: string): PressureStats | undefined => readParsed(ctx, 'pressure', hostPath(dir, name), parsePressure);
  return defined({ cpu: read('cpu.pressure'), memory: read('memory.pressure'), io: read('io.pressure') });
}

/** Root-cgroup swap from /proc/meminfo: SwapTotal − SwapFree. */
function meminfoSwap(ctx: CgroupReadContext): number | undefined {
  let info: ReadonlyMap<string, number> | undefined;
  try {
    const text = ctx.readMeminfo();
    info = text === undefined ? undefined : parseMeminfo(text, MEMINFO);
  } catch (err) {
    ctx.onError('memory', MEMINFO, err);
  }
  const diff = (total: string, free: string): number | undefined => {
    const t = info?.get(total);
    const f = info?.get(free);
    return t === undefined || f === undefined ? undefined : Math.max(0, t - f);
  };
  return diff('SwapTotal', 'SwapFree');
}

/**
 * The root's usage as runc's cgroup library (and so the kubelet's cAdvisor) computes it: memory.stat `anon + file`,
 * what v1's root usage_in_bytes counts (rss + cache). Unknown if either key is missing.
 */
export function rootUsage(stat: ReadonlyMap<string, number> | undefined): number | undefined {
  const anon = stat?.get('anon');
  const file = stat?.get('file');
  return anon === undefined || file === undefined ? undefined : anon + file;
}

/** Reads `path` under the cgroup2 mount `root`. */
export function readV2(ctx: CgroupReadContext, root: string, path: string): CgroupStats {
  const dir = hostPath(root, path);
  const read = <T>(collector: CollectorName, name: string, parse: (text: string, file: string) => T): T | undefined =>
    readParsed(ctx, collector, hostPath(dir, name), parse);
  const on = (kind: MetricKind): boolean => ctx.kinds === undefined || ctx.kinds.has(kind);

  let cpu: CpuStats | undefined;
  if (on('cpu')) {
    const cpuStat = read('cpu', 'cpu.stat', parseFlatKeyed);
    const seconds = (key: string): number | undefined => {
      const us = cpuStat?.get(key);
      return us === undefined ? undefined : us / 1e6;
    };
    cpu = defined<CpuStats>({
      usageSeconds: seconds('usage_usec'),
      userSeconds: seconds('user_usec'),
      systemSeconds: seconds('system_usec'),
      periods: cpuStat?.get('nr_periods'),
      throttledPeriods: cpuStat?.get('nr_throttled'),
      throttledSeconds: seconds('throttled_usec'),
      burstPeriods: cpuStat?.get('nr_bursts'),
      burstSeconds: seconds('burst_usec'),
    });
  }

  // memory.events: `high` and `max` (memory kind), `oom_kill` (oom_event kind); the root has none.
  const events = on('memory') || on('oom_event') ? read(on('memory') ? 'memory' : 'oom', 'memory.events', parseFlatKeyed) : undefined;

  let memory: MemoryStats | undefined;
  if (on('memory')) {
    let usage = read('memory', 'memory.current', parseUint);
    let swap = read('memory', 'memory.swap.current', parseUint);
    const memStat = read('memory', 'memory.stat', parseFlatKeyed);
    if (path === '/' && usage === undefined) {
      usage = rootUsage(memStat);
      swap ??= meminfoSwap(ctx);
    }
    memory = defined<MemoryStats>({
      usageBytes: usage,
      maxUsageBytes: read('memory', 'memory.peak', parseUint),
      workingSetBytes: workingSet(usage, memStat, 'inactive_file'),
      rssBytes: memStat?.get('anon'),
      cacheBytes: memStat?.get('file'),
      mappedFileBytes: memStat?.get('file_mapped'),
      swapBytes: swap,
      activeFileBytes: memStat?.get('active_file'),
      inactiveFileBytes: memStat?.get('inactive_file'),
      kernelUsageBytes: memStat?.get('kernel'),
      eventsHigh: events?.get('high'),
      eventsMax: events?.get('max'),
      ...pageFaults(memStat),
    });
  }
  const oomKills = !on('oom_event') ? undefined : path === '/' ? nodeOomKills(ctx) : events?.get('oom_kill');

  let pids: PidsStats | undefined;
  if (on('process')) {
    const pidsMax = read('pids', 'pids.max', parseUintOrMax);
    pids = defined<PidsStats>({
      current: read('pids', 'pids.current', parseUint),
      max: pidsMax === MAX ? 0 : pidsMax,
    });
  }

  const cpuMax = read('spec', 'cpu.max', parseCpuMax);
  const weight = read('spec', 'cpu.weight', parseUint);
  const memMax = read('spec', 'memory.max', parseUintOrMax);
  const memMin = read('spec', 'memory.min', parseUintOrMax);
  const swapMax = read('spec', 'memory.swap.max', parseUintOrMax);
  const spec: CgroupSpec =
    defined<CgroupSpec>({
      cpuPeriod: cpuMax?.period,
      cpuQuota: cpuMax === undefined || cpuMax.quota === MAX ? undefined : cpuMax.quota,
      cpuShares: weight === undefined ? undefined : weightToShares(weight),
      memoryLimitBytes: memMax === undefined ? undefined : limitBytes(memMax),
      memoryReservationBytes: memMin === undefined ? undefined : limitBytes(memMin),
      memorySwapLimitBytes: swapMax === undefined ? undefined : limitBytes(swapMax),
    }) ?? {};

  let blkio: BlkioDeviceStats[] | undefined;
  let io: DiskIoStats | undefined;
  if (on('diskIO')) {
    const stat = read('blkio', 'io.stat', parseIoStatAll);
    if (stat !== undefined) {
      blkio = byteRows(stat.bytes);
      const nonEmpty = (rows: DeviceCounters[] | undefined): DeviceCounters[] | undefined => (rows === undefined || rows.length === 0 ? undefined : rows);
      io = defined<DiskIoStats>({
        serviced: nonEmpty(stat.serviced),
        costUsage: nonEmpty(seconds(stat.costUsage, 1e6)),
        costWait: nonEmpty(seconds(stat.costWait, 1e6)),
        costIndebt: nonEmpty(seconds(stat.costIndebt, 1e6)),
        costIndelay: nonEmpty(seconds(stat.costIndelay, 1e6)),
      });
    }
  }

  const pressure = on('pressure') ? readPressure(ctx, dir) : undefined;
  const hugetlb = on('hugetlb') ? readHugetlbV2(ctx, read) : undefined;
  let numa: NumaStats | undefined;
  if (on('memory_numa')) {
    const rows = read('memory', 'memory.numa_stat', parseNumaStat);
    if (rows !== undefined) {
      // v2 counts bytes; cAdvisor's family counts pages.
      const container: Record<string, Record<string, number>> = {};
      for (const type of NUMA_TYPES) {
        const nodes = rows.get(type);
        if (nodes !== undefined) container[type] = Object.fromEntries(Object.entries(nodes).map(([n, bytes]) => [n, Math.floor(bytes / PAGE_SIZE)]));
      }
      if (Object.keys(container).length > 0) numa = { container };
    }
  }
  return defined<CgroupStats>({ cpu, memory, blkio, io, oomKills, pids, spec, pressure, hugetlb, numa }) ?? { spec };
}

/** The page size memory.numa_stat's bytes are divided by: 4 KiB on x86-64 and the arm64 kernels of common distributions. */
const PAGE_SIZE = 4096;

/** hugetlb.<size>.current and hugetlb.<size>.events `max` for each huge page size (v2 has no max usage). */
function readHugetlbV2(
  ctx: CgroupReadContext,
  read: <T>(collector: CollectorName, name: string, parse: (text: string, file: string) => T) => T | undefined,
): HugetlbStats[] | undefined {
  const out: HugetlbStats[] = [];
  for (const size of ctx.hugepageSizes ?? []) {
    const usage = read('hugetlb', `hugetlb.${size}.current`, parseUint);
    if (usage === undefined) continue;
    const failcnt = read('hugetlb', `hugetlb.${size}.events`, parseFlatKeyed)?.get('max');
    out.push({ pagesize: size, usageBytes: usage, ...(failcnt === undefined ? {} : { failcnt }) });
  }
  return out.length === 0 ? undefined : out;
}
