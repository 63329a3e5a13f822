import type { CgroupReadContext } from './types.js';
import { parseFlatKeyed } from './parse.js';
import type { BlkioDeviceStats, CollectorName, DeviceCounters, MemoryStats } from '../model/cgroup.js';

/** Helpers shared by the v1 and v2 readers. */

/**
 * Reads one cgroup file through the context and parses it. Absent (`undefined` from `ctx.read`) gives `undefined`
 * silently; a read error or a ParseError is reported to `ctx.onError(collector, file, err)` and also gives
 * `undefined`, so one bad file never takes the rest of the cgroup's stats with it.
 */
export function readParsed<T>(ctx: CgroupReadContext, collector: CollectorName, file: string, parse: (text: string, file: string) => T): T | undefined {
  try {
    const text = ctx.read(file);
    return text === undefined ? undefined : parse(text, file);
  } catch (err) {
    ctx.onError(collector, file, err);
    return undefined;
  }
}

/** `o` without its undefined fields, or `undefined` if none is left: a group with no data is no group. */
export function defined<T extends object>(o: T): T | undefined {
  const result: Partial<T> = {};
  let any = false;
  for (const key of Object.keys(o) as (keyof T)[]) {
    if (o[key] === undefined) continue;
    result[key] = o[key];
    any = true;
  }
  return any ? (result as T) : undefined;
}

/** Limits above 2^62 are "unlimited" (v1 prints 9223372036854771712): cAdvisor reports them as 0. */
export const UNLIMITED_ABOVE = 2 ** 62;

export function limitBytes(value: number | 'max'): number {
  return value === 'max' || value > UNLIMITED_ABOVE ? 0 : value;
}

/**
 * usage − inactive_file, floored at 0 (cAdvisor setMemoryStats). With memory.stat present but the key missing,
 * the working set is the usage, as in cAdvisor; with memory.stat unreadable it is unknown.
 */
export function workingSet(usage: number | undefined, stat: ReadonlyMap<string, number> | undefined, inactiveFileKey: string): number | undefined {
  if (usage === undefined || stat === undefined) return undefined;
  return Math.max(0, usage - (stat.get(inactiveFileKey) ?? 0));
}

/**
 * container_memory_failures_total. cAdvisor (setMemoryStats) puts memory.stat `pgfault`/`pgmajfault` in both
 * the container and the hierarchy scope, on v1 as on v2 (cAdvisor 0.38.7 on this host: root pgfault 28057 in both
 * scopes, while root total_pgfault is in the millions), so podvisor does the same.
 */
export function pageFaults(stat: ReadonlyMap<string, number> | undefined): Pick<MemoryStats, 'pgfault' | 'pgmajfault'> {
  const pgfault = stat?.get('pgfault');
  const pgmajfault = stat?.get('pgmajfault');
  return {
    pgfault: pgfault === undefined ? undefined : { container: pgfault, hierarchy: pgfault },
    pgmajfault: pgmajfault === undefined ? undefined : { container: pgmajfault, hierarchy: pgmajfault },
  };
}

/** The memory.numa_stat rows cAdvisor exports (container_memory_numa_pages{type}). */
export const NUMA_TYPES = ['file', 'anon', 'unevictable'] as const;

/** Rows of a bytes statistic (v1 io_service_bytes, v2 io.stat rbytes/wbytes) as the blkio model keeps them. */
export function byteRows(rows: readonly DeviceCounters[]): BlkioDeviceStats[] {
  return rows.map(({ major, minor, values }) => ({ major, minor, bytes: values }));
}

/** Each device's values divided by `per` (ns → s, µs → s). */
export function seconds(rows: readonly DeviceCounters[] | undefined, per: number): DeviceCounters[] | undefined {
  return rows?.map(({ major, minor, values }) => ({ major, minor, values: Object.fromEntries(Object.entries(values).map(([op, v]) => [op, v / per])) }));
}

/** The node's OOM kills since boot: /proc/vmstat `oom_kill` (kernel >= 4.13), the root cgroup's count. */
export function nodeOomKills(ctx: CgroupReadContext): number | undefined {
  if (ctx.readVmstat === undefined) return undefined;
  try {
    const text = ctx.readVmstat();
    return text === undefined ? undefined : parseFlatKeyed(text, VMSTAT).get('oom_kill');
  } catch (err) {
    ctx.onError('oom', VMSTAT, err);
    return undefined;
  }
}

/** Shown in errors about /proc/vmstat, read through `ctx.readVmstat()`. */
const VMSTAT = '/proc/vmstat';
