import { hostPath } from '../host/paths.js';
import { parseMeminfo } from '../proc/meminfo.js';
import { MAX, parseCpuMax, parseFlatKeyed, parseIoStat, parsePressure, parseUint, parseUintOrMax } from './parse.js';
import { defined, limitBytes, pageFaults, readParsed, workingSet } from './common.js';
import type { CgroupReadContext } from './types.js';
import type { CgroupSpec, CgroupStats, CollectorName, CpuStats, MemoryStats, PidsStats, PressureStats } from '../model/cgroup.js';

/**
 * cgroup v2 readers (Documentation/admin-guide/cgroup-v2.rst), with cAdvisor's semantics. The root cgroup has
 * no memory.current, memory.swap.*, cpu.max, cpu.weight, memory.max or pids.* files: its memory comes from
 * /proc/meminfo (as opencontainers/cgroups fs2 does) and its spec stays empty.
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

/** Root-cgroup usage and swap from /proc/meminfo: MemTotal − MemFree and SwapTotal − SwapFree. */
function meminfoUsage(ctx: CgroupReadContext): { usage?: number; swap?: number } {
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
  return { usage: diff('MemTotal', 'MemFree'), swap: diff('SwapTotal', 'SwapFree') };
}

/** Reads `path` under the cgroup2 mount `root`. */
export function readV2(ctx: CgroupReadContext, root: string, path: string): CgroupStats {
  const dir = hostPath(root, path);
  const read = <T>(collector: CollectorName, name: string, parse: (text: string, file: string) => T): T | undefined =>
    readParsed(ctx, collector, hostPath(dir, name), parse);

  const cpuStat = read('cpu', 'cpu.stat', parseFlatKeyed);
  const seconds = (key: string): number | undefined => {
    const us = cpuStat?.get(key);
    return us === undefined ? undefined : us / 1e6;
  };
  const cpu = defined<CpuStats>({
    usageSeconds: seconds('usage_usec'),
    userSeconds: seconds('user_usec'),
    systemSeconds: seconds('system_usec'),
    periods: cpuStat?.get('nr_periods'),
    throttledPeriods: cpuStat?.get('nr_throttled'),
    throttledSeconds: seconds('throttled_usec'),
  });

  let usage = read('memory', 'memory.current', parseUint);
  let swap = read('memory', 'memory.swap.current', parseUint);
  if (path === '/' && usage === undefined) {
    const host = meminfoUsage(ctx);
    usage = host.usage;
    swap ??= host.swap;
  }
  const memStat = read('memory', 'memory.stat', parseFlatKeyed);
  const memory = defined<MemoryStats>({
    usageBytes: usage,
    maxUsageBytes: read('memory', 'memory.peak', parseUint),
    workingSetBytes: workingSet(usage, memStat, 'inactive_file'),
    rssBytes: memStat?.get('anon'),
    cacheBytes: memStat?.get('file'),
    mappedFileBytes: memStat?.get('file_mapped'),
    swapBytes: swap,
    activeFileBytes: memStat?.get('active_file'),
    inactiveFileBytes: memStat?.get('inactive_file'),
    ...pageFaults(memStat),
  });

  const pidsMax = read('pids', 'pids.max', parseUintOrMax);
  const pids = defined<PidsStats>({
    current: read('pids', 'pids.current', parseUint),
    max: pidsMax === MAX ? 0 : pidsMax,
  });

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

  const blkio = read('blkio', 'io.stat', parseIoStat);
  const pressure = readPressure(ctx, dir);
  return defined<CgroupStats>({ cpu, memory, blkio, pids, spec, pressure }) ?? { spec };
}
