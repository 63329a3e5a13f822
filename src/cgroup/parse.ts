import { ParseError } from '../errors.js';
import type { DeviceCounters, PressureStats } from '../model/cgroup.js';

/**
 * Small pure parsers for cgroup v1 and v2 pseudo-files, `(text, file) → value`.
 * Shapes follow Documentation/admin-guide/cgroup-v2.rst ("Interface Files": flat keyed, nested keyed)
 * and cgroup-v1/{cpuacct,memory,blkio-controller}.rst. Malformed input throws `ParseError(file, reason)`;
 * negative counters (kernel bugs, e.g. memory.stat on some kernels) are clamped to 0 as opencontainers/cgroups
 * `fscommon.ParseUint` does. Numbers above 2^53 lose precision, as in any Prometheus float sample.
 */

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?\d+(?:\.\d+)?$/;
const DEVICE = /^(\d+):(\d+)$/;

/** `max`, the cgroup v2 (and v1 pids.max) spelling of "no limit". */
export const MAX = 'max';
export type Max = typeof MAX;

/** A signed integer token, or undefined. */
function integer(token: string | undefined): number | undefined {
  if (token === undefined || !INTEGER.test(token)) return undefined;
  return Number(token);
}

/** A counter token: an integer, negatives clamped to 0; undefined if not an integer. */
function counter(token: string | undefined): number | undefined {
  const n = integer(token);
  return n === undefined ? undefined : Math.max(0, n);
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

function single(text: string, file: string): string {
  const value = text.trim();
  if (value === '' || /\s/.test(value)) throw new ParseError(file, `expected one value, got "${text.trim()}"`);
  return value;
}

/** A single unsigned value (`memory.usage_in_bytes`, `pids.current`, `cpu.weight`); negatives clamp to 0. */
export function parseUint(text: string, file: string): number {
  const token = single(text, file);
  const n = counter(token);
  if (n === undefined) throw new ParseError(file, `expected an unsigned integer, got "${token}"`);
  return n;
}

/** A single signed value (`cpu.cfs_quota_us`, where -1 means unlimited). */
export function parseInt64(text: string, file: string): number {
  const token = single(text, file);
  const n = integer(token);
  if (n === undefined) throw new ParseError(file, `expected an integer, got "${token}"`);
  return n;
}

/** A single unsigned value or `max` (`memory.max`, `memory.swap.max`, `pids.max`). */
export function parseUintOrMax(text: string, file: string): number | Max {
  const token = single(text, file);
  if (token === MAX) return MAX;
  return parseUint(token, file);
}

/** A flat keyed file, `key value` per line (`memory.stat`, `cpu.stat`, `cpuacct.stat`). Values clamp at 0. */
export function parseFlatKeyed(text: string, file: string): ReadonlyMap<string, number> {
  const result = new Map<string, number>();
  for (const line of lines(text)) {
    const fields = line.trim().split(/\s+/);
    const value = counter(fields[1]);
    if (fields.length !== 2 || value === undefined) throw new ParseError(file, `expected "<key> <integer>", got "${line}"`);
    result.set(fields[0] ?? '', value);
  }
  return result;
}

export interface NestedKeyedEntry {
  key: string;
  /** Numeric fields only; non-numeric values (`depth=max` from io.latency) are left out. Integers clamp at 0. */
  fields: ReadonlyMap<string, number>;
}

/** A nested keyed file, `<key> <sub>=<value> ...` per line (`io.stat`). */
export function parseNestedKeyed(text: string, file: string): NestedKeyedEntry[] {
  const result: NestedKeyedEntry[] = [];
  for (const line of lines(text)) {
    const [key = '', ...pairs] = line.trim().split(/\s+/);
    const fields = new Map<string, number>();
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new ParseError(file, `expected "<name>=<value>", got "${pair}" in "${line}"`);
      const value = pair.slice(eq + 1);
      if (DECIMAL.test(value)) fields.set(pair.slice(0, eq), Math.max(0, Number(value)));
    }
    result.push({ key, fields });
  }
  return result;
}

function device(key: string, file: string): { major: number; minor: number } {
  const m = DEVICE.exec(key);
  if (m === null) throw new ParseError(file, `expected a "<major>:<minor>" device, got "${key}"`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** io.stat keys per cAdvisor statistic: bytes and ops by operation, iocost times (µs) as one `Count`. */
const IO_STAT_KEYS = {
  bytes: [
    ['rbytes', 'Read'],
    ['wbytes', 'Write'],
  ],
  serviced: [
    ['rios', 'Read'],
    ['wios', 'Write'],
  ],
  costUsage: [['cost.usage', 'Count']],
  costWait: [['cost.wait', 'Count']],
  costIndebt: [['cost.indebt', 'Count']],
  costIndelay: [['cost.indelay', 'Count']],
} as const;
export type IoStatName = keyof typeof IO_STAT_KEYS;

/**
 * v2 `io.stat`, as cAdvisor maps it: `rbytes`/`wbytes` → bytes Read/Write, `rios`/`wios` → serviced Read/Write, and
 * the iocost rows (`cost.usage`, `cost.wait`, `cost.indebt`, `cost.indelay`, µs) where the iocost controller is on.
 * A device without any key of a statistic is left out of that statistic.
 */
export function parseIoStatAll(text: string, file: string): Record<IoStatName, DeviceCounters[]> {
  const result: Record<IoStatName, DeviceCounters[]> = { bytes: [], serviced: [], costUsage: [], costWait: [], costIndebt: [], costIndelay: [] };
  for (const { key, fields } of parseNestedKeyed(text, file)) {
    const dev = device(key, file);
    for (const stat of Object.keys(IO_STAT_KEYS) as IoStatName[]) {
      const values: Record<string, number> = {};
      let any = false;
      for (const [field, op] of IO_STAT_KEYS[stat]) {
        const v = fields.get(field);
        if (v === undefined) continue;
        values[op] = v;
        any = true;
      }
      if (any) result[stat].push({ ...dev, values });
    }
  }
  return result;
}

/**
 * A v1 blkio statistic file: `<major>:<minor> <Op> <value>` rows (Op = Read, Write, Sync, Async, Discard, Total), or
 * `<major>:<minor> <value>` rows for the files without operations (`blkio.sectors_recursive`, `blkio.time_recursive`:
 * op `Count`, as opencontainers/cgroups reads them), and a final grand `Total <value>` that is not a device and is
 * dropped. Devices keep file order.
 */
export function parseBlkioDevices(text: string, file: string): DeviceCounters[] {
  const devices = new Map<string, { major: number; minor: number; values: Record<string, number> }>();
  for (const line of lines(text)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 2 && fields[0] === 'Total' && counter(fields[1]) !== undefined) continue;
    const [key = '', op, raw] = fields.length === 2 ? [fields[0], 'Count', fields[1]] : fields;
    const value = counter(raw);
    if (fields.length < 2 || fields.length > 3 || value === undefined || op === undefined || op === '') {
      throw new ParseError(file, `expected "<major>:<minor> <op> <integer>" or "<major>:<minor> <integer>", got "${line}"`);
    }
    let entry = devices.get(key);
    if (entry === undefined) {
      entry = { ...device(key, file), values: {} };
      devices.set(key, entry);
    }
    entry.values[op] = value;
  }
  return [...devices.values()];
}

/**
 * `memory.numa_stat`: one row per type, `<type>[=<total>] N0=<v> N1=<v> ...` (v1 writes `total=12 N0=12`, v2
 * `anon N0=4096`). Returns type → node number (as text) → value, for every row.
 */
export function parseNumaStat(text: string, file: string): Map<string, Record<string, number>> {
  const result = new Map<string, Record<string, number>>();
  for (const line of lines(text)) {
    const [head = '', ...pairs] = line.trim().split(/\s+/);
    const type = head.includes('=') ? head.slice(0, head.indexOf('=')) : head;
    const nodes: Record<string, number> = {};
    for (const pair of pairs) {
      const m = /^N(\d+)=(-?\d+)$/.exec(pair);
      if (m === null) throw new ParseError(file, `expected "N<node>=<integer>", got "${pair}" in "${line}"`);
      nodes[m[1] ?? ''] = Math.max(0, Number(m[2]));
    }
    if (type === '') throw new ParseError(file, `expected a type, got "${line}"`);
    result.set(type, nodes);
  }
  return result;
}

/**
 * A PSI file (`cpu.pressure`, `memory.pressure`, `io.pressure`):
 * `some avg10=0.00 avg60=0.00 avg300=0.00 total=123` and optionally a `full ...` line; `total` is in µs.
 */
export function parsePressure(text: string, file: string): PressureStats {
  const result: PressureStats = {};
  for (const line of lines(text)) {
    const [kind = '', ...pairs] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') throw new ParseError(file, `expected a "some" or "full" line, got "${line}"`);
    const total = pairs.find((p) => p.startsWith('total='));
    const micros = counter(total?.slice('total='.length));
    if (micros === undefined) throw new ParseError(file, `missing an integer total= in "${line}"`);
    if (kind === 'some') result.someSeconds = micros / 1e6;
    else result.fullSeconds = micros / 1e6;
  }
  return result;
}

/** v2 `cpu.max`: `$MAX $PERIOD`, e.g. `max 100000` or `50000 100000` (µs). */
export function parseCpuMax(text: string, file: string): { quota: number | Max; period: number } {
  const fields = text.trim().split(/\s+/);
  const [rawQuota, rawPeriod] = fields;
  const quota = rawQuota === MAX ? MAX : counter(rawQuota);
  const period = counter(rawPeriod);
  if (fields.length !== 2 || quota === undefined || period === undefined) {
    throw new ParseError(file, `expected "<quota|max> <period>", got "${text.trim()}"`);
  }
  return { quota, period };
}

/** v1 `cpuacct.usage_percpu`: space-separated ns per CPU (the kernel leaves a trailing space). */
export function parsePerCpu(text: string, file: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '') throw new ParseError(file, 'empty');
  return trimmed.split(/\s+/).map((token) => {
    const n = counter(token);
    if (n === undefined) throw new ParseError(file, `expected integers, got "${token}"`);
    return n;
  });
}

/** A cgroup v1 `devices.list` entry: the devices a cgroup may use (`c 195:0 rwm`; `a *:* rwm` is every device). */
export interface DeviceRule {
  type: 'a' | 'b' | 'c';
  /** undefined: `*`, any. */
  major?: number;
  minor?: number;
}

/** Parses cgroup v1 `devices.list` (Documentation/admin-guide/cgroup-v1/devices.rst): `type major:minor access` lines. */
export function parseDevicesList(text: string, file: string): DeviceRule[] {
  const rules: DeviceRule[] = [];
  for (const line of lines(text)) {
    const m = /^([abc]) (\*|\d+):(\*|\d+) [rwm]+$/.exec(line.trim());
    if (m === null) throw new ParseError(file, `"${line}" is not a device rule`);
    const [, type, major, minor] = m;
    const rule: DeviceRule = { type: type === 'a' ? 'a' : type === 'b' ? 'b' : 'c' };
    if (major !== undefined && major !== '*') rule.major = Number(major);
    if (minor !== undefined && minor !== '*') rule.minor = Number(minor);
    rules.push(rule);
  }
  return rules;
}
