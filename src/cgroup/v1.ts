import { hostPath } from '../host/paths.js';
import { MAX, parseBlkioRecursive, parseFlatKeyed, parseInt64, parsePerCpu, parseUint, parseUintOrMax } from './parse.js';
import { defined, limitBytes, pageFaults, readParsed, workingSet } from './common.js';
import type { CgroupReadContext } from './types.js';
import type { BlkioDeviceStats, CgroupSpec, CgroupStats, CollectorName, CpuStats, MemoryStats, PidsStats } from '../model/cgroup.js';

/**
 * cgroup v1 readers, with cAdvisor's semantics (container/libcontainer/handler.go over opencontainers/cgroups fs).
 * Each file is read at most once per call, from the hierarchy of its controller.
 */

/** USER_HZ: cpuacct.stat counts in clock ticks of 1/100 s on every Linux architecture podvisor runs on. */
const USER_HZ = 100;

/**
 * blkio bytes come from the first of these that has a device row: the CFQ file (kernels before 5.0), the BFQ one,
 * then blk-throttle's, which counts every bio even without a limit (opencontainers/cgroups fs/blkio.go order).
 */
const BLKIO_SERVICE_BYTES: readonly string[] = [
  'blkio.io_service_bytes_recursive',
  'blkio.bfq.io_service_bytes_recursive',
  'blkio.throttle.io_service_bytes_recursive',
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

  const usage = read('cpu', 'cpuacct', 'cpuacct.usage', parseUint);
  const perCpu = read('cpu', 'cpuacct', 'cpuacct.usage_percpu', parsePerCpu);
  const cpuacctStat = read('cpu', 'cpuacct', 'cpuacct.stat', parseFlatKeyed);
  const cpuStat = read('cpu', 'cpu', 'cpu.stat', parseFlatKeyed);
  const throttledNs = cpuStat?.get('throttled_time');
  const userTicks = cpuacctStat?.get('user');
  const systemTicks = cpuacctStat?.get('system');
  const cpu = defined<CpuStats>({
    usageSeconds: usage === undefined ? undefined : usage / 1e9,
    perCpuSeconds: perCpu?.map((ns) => ns / 1e9),
    userSeconds: userTicks === undefined ? undefined : userTicks / USER_HZ,
    systemSeconds: systemTicks === undefined ? undefined : systemTicks / USER_HZ,
    periods: cpuStat?.get('nr_periods'),
    throttledPeriods: cpuStat?.get('nr_throttled'),
    throttledSeconds: throttledNs === undefined ? undefined : throttledNs / 1e9,
  });

  const memUsage = read('memory', 'memory', 'memory.usage_in_bytes', parseUint);
  const memStat = read('memory', 'memory', 'memory.stat', parseFlatKeyed);
  const memory = defined<MemoryStats>({
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
    ...pageFaults(memStat),
  });

  const pidsMax = read('pids', 'pids', 'pids.max', parseUintOrMax);
  const pids = defined<PidsStats>({
    current: read('pids', 'pids', 'pids.current', parseUint),
    max: pidsMax === MAX ? 0 : pidsMax,
  });

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

  const blkio = readBlkio(ctx.blkioFiles ?? BLKIO_SERVICE_BYTES, (name) => read('blkio', 'blkio', name, parseBlkioRecursive));
  return defined<CgroupStats>({ cpu, memory, blkio, pids, spec }) ?? { spec };
}

/** The first candidate file with a device row; `[]` if the files exist but have none; `undefined` if none exists. */
function readBlkio(candidates: readonly string[], read: (name: string) => BlkioDeviceStats[] | undefined): BlkioDeviceStats[] | undefined {
  let seen: BlkioDeviceStats[] | undefined;
  for (const name of candidates) {
    const rows = read(name);
    if (rows !== undefined && rows.length > 0) return rows;
    seen ??= rows;
  }
  return seen;
}

/**
 * Which blkio files are worth trying in the cgroups of this gather, decided once at the hierarchy root. The files are
 * `_recursive`: the root's counts include every descendant's, so a file with no device row at the root (BFQ when
 * another scheduler runs) has none anywhere below, and a file missing at the root (CFQ on kernels >= 5.0) is missing
 * everywhere. Dropping those keeps the per-cgroup choice exactly as before and, on this kind of machine, turns three
 * reads per cgroup (one a failing open) into one. Unreadable root: no hint.
 */
export function probeBlkioFiles(ctx: CgroupReadContext): readonly string[] | undefined {
  const root = ctx.layout.v1.get('blkio');
  if (root === undefined) return [];
  let firstExisting: string | undefined;
  for (const name of BLKIO_SERVICE_BYTES) {
    const file = hostPath(root, name);
    let rows: BlkioDeviceStats[] | undefined;
    try {
      const text = ctx.read(file);
      rows = text === undefined ? undefined : parseBlkioRecursive(text, file);
    } catch {
      return undefined;
    }
    if (rows === undefined) continue;
    if (rows.length > 0) return BLKIO_SERVICE_BYTES.slice(BLKIO_SERVICE_BYTES.indexOf(name));
    firstExisting ??= name;
  }
  return firstExisting === undefined ? [] : [firstExisting];
}
