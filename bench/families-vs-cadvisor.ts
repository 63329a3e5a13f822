/**
 * The diskIO, oom_event, memory, process, cpu, tcp, udp and sched families podvisor added, each against a reference on
 * this node's real cgroups: cAdvisor 0.38.7's value for the same container (where 0.38.7 has the family) and the
 * kernel's own file, read just before and just after the scrapes.
 *
 *   node --import=tsx bench/families-vs-cadvisor.ts [--cadvisor <bin>] [--rounds <n>] [--out <file.md>]
 *
 * Builds dist/ (`npm run build --silent`), starts cAdvisor and podvisor (every kind that carries these families) on
 * free loopback ports, and four `podvisor-test:1` containers (label `podvisor.bench.families=1`, names `pv-fam-*`):
 *
 *   dio     dd with oflag=direct then iflag=direct (blkio rows), then sleeps
 *   ulimit  --ulimit nofile=1234:5678 --cpus 0.5 (a CFS quota, so the burst counters have a reason to exist)
 *   oom     -m 32m --memory-swap 32m running sleep; a `docker exec ... tail /dev/zero` is OOM-killed, the container lives
 *   net     busybox nc: a TCP listener and an established pair; busybox nc has no UDP, so UDP sockets are made in the
 *           container's network namespace by a host python3 under `nsenter -n` (one with unread datagrams, one with
 *           drops)
 *
 * Then `rounds` times: kernel files, both scrapes at once, kernel files again; per family and cgroup (`id` label: the
 * four containers, `/` and their parent `/docker`): podvisor, cAdvisor, the kernel. Then an exit check (a short-lived
 * process in `ulimit`: do the schedstat sums keep what it ran?), and podvisor again with its default flags, for the
 * series count. Writes the markdown report (default bench/results/<UTC date>-families-vs-cadvisor.md) and prints it;
 * cAdvisor's log and the last bodies go to a /tmp/podvisor-families-* scratch directory. Containers, the UDP helper
 * and the exporters are removed / stopped at the end, on failure and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { installSignalHandlers, onCleanup, runCleanup } from './lib/cleanup.js';
import { errorMessage, run, sleep } from './lib/exec.js';
import { exposition, freePort, REPO, scrape, startPodvisor, stopExporter, type Exporter, type Exposition } from './lib/exporter.js';
import { machine } from './lib/machine.js';

const log = (line: string): void => {
  process.stderr.write(`families: ${line}\n`);
};

// ---------------------------------------------------------------------------------------------------------------
// Flags and constants

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

const DATE = new Date().toISOString().slice(0, 10);
const CADVISOR_BIN = path.resolve(REPO, flag('cadvisor') ?? 'bench/.work/cadvisor/usr/bin/cadvisor');
const ROUNDS = Number(flag('rounds') ?? '3');
const OUT = path.resolve(REPO, flag('out') ?? `bench/results/${DATE}-families-vs-cadvisor.md`);
/** cAdvisor's log and the last bodies: scratch, outside the repository. */
const SCRATCH = fs.mkdtempSync('/tmp/podvisor-families-');
const CADVISOR_LOG = path.join(SCRATCH, 'cadvisor.log');

const IMAGE = 'podvisor-test:1';
const LABEL = 'podvisor.bench.families';
const NAME_PREFIX = 'pv-fam-';
const RUN_TAG = `${process.pid}`;

/** podvisor: every kind that carries one of the families (pressure and oom_event have no 0.38.7 counterpart). */
const PODVISOR_KINDS = 'cpu,memory,diskIO,disk,network,process,oom_event,pressure,tcp,udp,sched';
/**
 * cAdvisor 0.38.7 has no --enable_metrics and no oom_event kind: every kind is on except those in --disable_metrics,
 * which accepts only its ignoreWhitelist (cmd/cadvisor.go). Off here: what podvisor does not export with the kinds above
 * (percpu too, so both expose per-container CPU the same way and the series counts compare). perf_event, app and
 * cpuLoad cannot be disabled and export nothing without their own configuration.
 */
const CADVISOR_DISABLE = 'accelerator,cpu_topology,memory_numa,hugetlb,referenced_memory,resctrl,advtcp,percpu';

const FAMILIES = [
  'container_fs_reads_total',
  'container_fs_writes_total',
  'container_fs_reads_bytes_total',
  'container_fs_writes_bytes_total',
  'container_fs_sector_reads_total',
  'container_fs_sector_writes_total',
  'container_fs_reads_merged_total',
  'container_fs_writes_merged_total',
  'container_fs_read_seconds_total',
  'container_fs_write_seconds_total',
  'container_fs_io_current',
  'container_fs_io_time_seconds_total',
  'container_fs_io_time_weighted_seconds_total',
  'container_oom_events_total',
  'container_memory_kernel_usage',
  'container_ulimits_soft',
  'container_cpu_cfs_burst_periods_total',
  'container_network_tcp_usage_total',
  'container_network_tcp6_usage_total',
  'container_network_udp_usage_total',
  'container_network_udp6_usage_total',
  'container_cpu_schedstat_run_seconds_total',
  'container_cpu_schedstat_runqueue_seconds_total',
  'container_cpu_schedstat_run_periods_total',
] as const;
type Family = (typeof FAMILIES)[number];

/** Families cAdvisor 0.38.7 does not have, and the first release that has them (checked in google/cadvisor's tags). */
const NOT_IN_0_38_7: Partial<Record<Family, string>> = {
  container_oom_events_total: 'v0.40.0',
  container_memory_kernel_usage: 'v0.48.0',
  container_cpu_cfs_burst_periods_total: 'v0.55.0',
};

/** The labels that tell a family's series apart within one container. */
const EXTRA_LABELS = ['device', 'ulimit', 'tcp_state', 'udp_state'];

/** /proc/diskstats counters (0-based after the name) and the factor to the family's unit. */
const DISKSTATS_FIELD: Partial<Record<Family, readonly [index: number, factor: number]>> = {
  container_fs_reads_total: [0, 1],
  container_fs_reads_merged_total: [1, 1],
  container_fs_sector_reads_total: [2, 1],
  container_fs_read_seconds_total: [3, 1e-3],
  container_fs_writes_total: [4, 1],
  container_fs_writes_merged_total: [5, 1],
  container_fs_sector_writes_total: [6, 1],
  container_fs_write_seconds_total: [7, 1e-3],
  container_fs_io_current: [8, 1],
  container_fs_io_time_seconds_total: [9, 1e-3],
  container_fs_io_time_weighted_seconds_total: [10, 1e-3],
};
const FS_SECONDS: ReadonlySet<string> = new Set([
  'container_fs_read_seconds_total',
  'container_fs_write_seconds_total',
  'container_fs_io_time_seconds_total',
  'container_fs_io_time_weighted_seconds_total',
]);
/** blkio.throttle files (what both read on this kernel: no CFQ, BFQ without rows) and the op. */
const BLKIO_FIELD: Partial<Record<Family, readonly ['serviced' | 'bytes', string]>> = {
  container_fs_reads_total: ['serviced', 'Read'],
  container_fs_writes_total: ['serviced', 'Write'],
  container_fs_reads_bytes_total: ['bytes', 'Read'],
  container_fs_writes_bytes_total: ['bytes', 'Write'],
};
const SCHED: Partial<Record<Family, 'run' | 'runqueue' | 'periods'>> = {
  container_cpu_schedstat_run_seconds_total: 'run',
  container_cpu_schedstat_runqueue_seconds_total: 'runqueue',
  container_cpu_schedstat_run_periods_total: 'periods',
};
const TCP_STATES = ['established', 'synsent', 'synrecv', 'finwait1', 'finwait2', 'timewait', 'close', 'closewait', 'lastack', 'listen', 'closing'];

// ---------------------------------------------------------------------------------------------------------------
// The exposition

interface Sample {
  name: string;
  labels: Map<string, string>;
  value: number;
}

/** Sample lines of a text exposition (0.0.4), label values unescaped. */
function parseSamples(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const labels = new Map<string, string>();
    let rest: string;
    let name: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      let i = brace + 1;
      while (i < line.length && line[i] !== '}') {
        const eq = line.indexOf('=', i);
        const key = line.slice(i, eq).trim();
        i = eq + 2; // past ="
        let value = '';
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\') {
            const next = line[i + 1];
            value += next === 'n' ? '\n' : (next ?? '');
            i += 2;
          } else {
            value += line[i];
            i++;
          }
        }
        i++; // closing quote
        if (line[i] === ',') i++;
        labels.set(key, value);
      }
      rest = line.slice(i + 1).trim();
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const v = rest.split(/\s+/)[0] ?? '';
    out.push({ name, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

interface Parsed {
  exposition: Exposition;
  wireBytes: number;
  /** family (sample name) → id → label key → value */
  byFamily: Map<string, Map<string, Map<string, number>>>;
  names: Set<string>;
  /** series (name and every label) seen twice in one body */
  duplicates: string[];
}

const labelKey = (labels: Map<string, string>): string =>
  EXTRA_LABELS.filter((l) => labels.has(l))
    .map((l) => `${l}=${labels.get(l) ?? ''}`)
    .join(',');

function parse(body: string, wireBytes: number): Parsed {
  const byFamily = new Map<string, Map<string, Map<string, number>>>();
  const names = new Set<string>();
  const duplicates: string[] = [];
  const full = new Set<string>();
  for (const s of parseSamples(body)) {
    names.add(s.name);
    const series = `${s.name}{${[...s.labels.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}}`;
    if (full.has(series)) duplicates.push(series);
    full.add(series);
    const id = s.labels.get('id');
    if (id === undefined) continue;
    let ids = byFamily.get(s.name);
    if (ids === undefined) byFamily.set(s.name, (ids = new Map<string, Map<string, number>>()));
    let rows = ids.get(id);
    if (rows === undefined) ids.set(id, (rows = new Map<string, number>()));
    rows.set(labelKey(s.labels), s.value);
  }
  return { exposition: exposition(body), wireBytes, byFamily, names, duplicates };
}

async function scrapeParsed(e: Exporter, dump?: string): Promise<Parsed> {
  const s = await scrape(e.url, { timeoutMs: 60_000 });
  if (s.status !== 200) throw new Error(`${e.kind} /metrics: HTTP ${s.status}`);
  if (dump !== undefined) fs.writeFileSync(path.join(SCRATCH, dump), s.body);
  return parse(s.body, s.wireBytes);
}

// ---------------------------------------------------------------------------------------------------------------
// The kernel's own files

const CG = '/sys/fs/cgroup';

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function flatKeyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && k !== '' && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** `major:minor` → `/dev/<name>`, from /proc/partitions (podvisor's and cAdvisor's device names). */
function partitions(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (readText('/proc/partitions') ?? '').split('\n').slice(2)) {
    const [major, minor, , name] = line.trim().split(/\s+/);
    if (major !== undefined && minor !== undefined && name !== undefined) m.set(`${major}:${minor}`, `/dev/${name}`);
  }
  return m;
}

/** A blkio `_recursive` file: device → op → value; undefined when the file is missing. */
function blkioFile(cg: string, name: string, devs: Map<string, string>): Map<string, Record<string, number>> | undefined {
  const text = readText(path.join(CG, 'blkio', cg, name));
  if (text === undefined) return undefined;
  const m = new Map<string, Record<string, number>>();
  for (const line of text.split('\n')) {
    const [dev, op, v] = line.trim().split(/\s+/);
    if (dev === undefined || op === undefined || v === undefined || !dev.includes(':')) continue;
    const name = devs.get(dev) ?? dev;
    const row = m.get(name) ?? {};
    row[op] = Number(v);
    m.set(name, row);
  }
  return m;
}

function diskstats(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const line of (readText('/proc/diskstats') ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 14 || f[2] === undefined) continue;
    m.set(`/dev/${f[2]}`, f.slice(3, 14).map(Number));
  }
  return m;
}

function cgroupProcs(cg: string): number[] {
  return (readText(path.join(CG, 'cpu', cg, 'cgroup.procs')) ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

/** The processes of a cgroup and of every cgroup below it (what cAdvisor's GetAllPids returns). */
function treeProcs(cg: string): number[] {
  const out: number[] = [];
  const stack = [cg];
  for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
    out.push(...cgroupProcs(d));
    try {
      for (const e of fs.readdirSync(path.join(CG, 'cpu', d), { withFileTypes: true })) if (e.isDirectory()) stack.push(path.posix.join(d, e.name));
    } catch {
      // gone
    }
  }
  return out;
}

/** Mount points of tmpfs filesystems (cAdvisor names a tmpfs filesystem by its mount point). */
function tmpfsMountpoints(): Set<string> {
  const out = new Set<string>();
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('tmpfs ') === true) out.add(pre?.split(' ')[4] ?? '');
  }
  return out;
}

interface SchedSum {
  run: number;
  runqueue: number;
  periods: number;
  pids: number;
}

function schedSum(pids: readonly number[]): SchedSum {
  const s: SchedSum = { run: 0, runqueue: 0, periods: 0, pids: 0 };
  for (const pid of pids) {
    const f = (readText(`/proc/${pid}/schedstat`) ?? '').trim().split(' ').map(Number);
    if (f.length !== 3) continue;
    s.run += (f[0] ?? 0) / 1e9;
    s.runqueue += (f[1] ?? 0) / 1e9;
    s.periods += f[2] ?? 0;
    s.pids++;
  }
  return s;
}

function tcpStates(pid: number, file: 'tcp' | 'tcp6'): Record<string, number> | undefined {
  const text = readText(`/proc/${pid}/net/${file}`);
  if (text === undefined) return undefined;
  const out: Record<string, number> = Object.fromEntries(TCP_STATES.map((s) => [s, 0]));
  for (const line of text.split('\n').slice(1)) {
    const st = line.trim().split(/\s+/)[3];
    if (st === undefined) continue;
    const state = TCP_STATES[parseInt(st, 16) - 1];
    if (state !== undefined) out[state] = (out[state] ?? 0) + 1;
  }
  return out;
}

/** /proc/<pid>/net/udp as the kernel prints it: `tx_queue:rx_queue` in field 5, drops in field 13. */
function udpStats(pid: number, file: 'udp' | 'udp6'): Record<string, number> | undefined {
  const text = readText(`/proc/${pid}/net/${file}`);
  if (text === undefined) return undefined;
  const out = { listen: 0, dropped: 0, rx_queue: 0, tx_queue: 0 };
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const [tx, rx] = (f[4] ?? '0:0').split(':').map((h) => parseInt(h, 16));
    out.listen++;
    out.tx_queue += tx ?? 0;
    out.rx_queue += rx ?? 0;
    out.dropped += Number(f[12]);
  }
  return out;
}

function nofileSoft(pid: number): number | undefined {
  const m = /^Max open files\s+(\S+)/m.exec(readText(`/proc/${pid}/limits`) ?? '');
  return m === null ? undefined : m[1] === 'unlimited' ? -1 : Number(m[1]);
}

interface KernelView {
  serviced?: Map<string, Record<string, number>>;
  bytes?: Map<string, Record<string, number>>;
  diskstats: Map<string, number[]>;
  oomKill?: number;
  kmem?: number;
  nofile?: number;
  nrBursts?: number;
  quotaUs?: number;
  tcp?: Record<string, number>;
  tcp6?: Record<string, number>;
  udp?: Record<string, number>;
  udp6?: Record<string, number>;
  /** Σ over the cgroup's own cgroup.procs */
  sched: SchedSum;
  /** Σ over the cgroup's and its descendants' cgroup.procs (what cAdvisor's GetAllPids gives); set when it has descendants */
  schedTree?: SchedSum;
}

function kernelView(t: Target, devs: Map<string, string>): KernelView {
  const root = t.cg === '/';
  const own = cgroupProcs(t.cg);
  const tree = treeProcs(t.cg);
  const v: KernelView = {
    diskstats: diskstats(),
    sched: schedSum(own),
  };
  if (tree.length !== own.length) v.schedTree = schedSum(tree);
  const serviced = blkioFile(t.cg, 'blkio.throttle.io_serviced_recursive', devs);
  const bytes = blkioFile(t.cg, 'blkio.throttle.io_service_bytes_recursive', devs);
  if (serviced !== undefined) v.serviced = serviced;
  if (bytes !== undefined) v.bytes = bytes;
  const oom = root
    ? flatKeyed(readText('/proc/vmstat')).get('oom_kill')
    : flatKeyed(readText(path.join(CG, 'memory', t.cg, 'memory.oom_control'))).get('oom_kill');
  if (oom !== undefined) v.oomKill = oom;
  const kmem = readText(path.join(CG, 'memory', t.cg, 'memory.kmem.usage_in_bytes'));
  if (kmem !== undefined) v.kmem = Number(kmem.trim());
  const nofile = t.pid > 0 ? nofileSoft(t.pid) : undefined;
  if (nofile !== undefined) v.nofile = nofile;
  const cpuStat = flatKeyed(readText(path.join(CG, 'cpu', t.cg, 'cpu.stat')));
  const bursts = cpuStat.get('nr_bursts');
  if (bursts !== undefined) v.nrBursts = bursts;
  const quota = readText(path.join(CG, 'cpu', t.cg, 'cpu.cfs_quota_us'));
  if (quota !== undefined) v.quotaUs = Number(quota.trim());
  if (t.pid > 0) {
    const tcp = tcpStates(t.pid, 'tcp');
    const tcp6 = tcpStates(t.pid, 'tcp6');
    const udp = udpStats(t.pid, 'udp');
    const udp6 = udpStats(t.pid, 'udp6');
    if (tcp !== undefined) v.tcp = tcp;
    if (tcp6 !== undefined) v.tcp6 = tcp6;
    if (udp !== undefined) v.udp = udp;
    if (udp6 !== undefined) v.udp6 = udp6;
  }
  return v;
}

interface KernelRef {
  value?: number;
  /** where it comes from, as shown in the table */
  src: string;
}

/** The kernel's value for one series of one family. */
function kernelRef(family: Family, labels: Record<string, string>, k: KernelView, t: Target): KernelRef {
  const device = labels['device'];
  if (device !== undefined) {
    const b = BLKIO_FIELD[family];
    if (b !== undefined) {
      const v = (b[0] === 'serviced' ? k.serviced : k.bytes)?.get(device)?.[b[1]];
      if (v !== undefined) return { value: v, src: `blkio.throttle.${b[0] === 'serviced' ? 'io_serviced' : 'io_service_bytes'}_recursive ${b[1]}` };
    }
    const d = DISKSTATS_FIELD[family];
    const row = k.diskstats.get(device);
    if (d !== undefined && row !== undefined) return { value: (row[d[0]] ?? NaN) * d[1], src: `/proc/diskstats ${device.slice(5)}` };
    return { src: '—' };
  }
  switch (family) {
    case 'container_oom_events_total':
      return k.oomKill === undefined ? { src: '—' } : { value: k.oomKill, src: t.cg === '/' ? '/proc/vmstat oom_kill' : 'memory.oom_control oom_kill' };
    case 'container_memory_kernel_usage':
      return k.kmem === undefined ? { src: '—' } : { value: k.kmem, src: 'memory.kmem.usage_in_bytes' };
    case 'container_ulimits_soft':
      return labels['ulimit'] === 'max_open_files' || labels['ulimit'] === undefined
        ? k.nofile === undefined
          ? { src: '—' }
          : { value: k.nofile, src: `/proc/${t.cg === '/' ? 1 : 'pid'}/limits` }
        : { src: '—' };
    case 'container_cpu_cfs_burst_periods_total':
      return k.nrBursts === undefined ? { src: 'no nr_bursts' } : { value: k.nrBursts, src: `cpu.stat nr_bursts (quota ${k.quotaUs ?? '?'} µs)` };
    case 'container_network_tcp_usage_total':
    case 'container_network_tcp6_usage_total': {
      const six = family === 'container_network_tcp6_usage_total';
      const v = (six ? k.tcp6 : k.tcp)?.[labels['tcp_state'] ?? ''];
      return v === undefined ? { src: '—' } : { value: v, src: six ? 'net/tcp6' : 'net/tcp' };
    }
    case 'container_network_udp_usage_total':
    case 'container_network_udp6_usage_total': {
      const six = family === 'container_network_udp6_usage_total';
      const state = labels['udp_state'] ?? '';
      const key = state === 'rxqueued' ? 'rx_queue' : state === 'txqueued' ? 'tx_queue' : state;
      const v = (six ? k.udp6 : k.udp)?.[key];
      return v === undefined ? { src: '—' } : { value: v, src: `net/${six ? 'udp6' : 'udp'} ${key}` };
    }
    default: {
      const s = SCHED[family];
      if (s === undefined) return { src: '—' };
      return { value: k.sched[s], src: `schedstat Σ own cgroup.procs (${k.sched.pids} live)` };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Containers

interface Target {
  key: string;
  what: string;
  name?: string;
  dockerId?: string;
  runArgs?: string[];
  cg: string;
  pid: number;
}

const created: string[] = [];

async function removeContainers(ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await run('docker', ['rm', '-f', ...ids], { timeoutMs: 120_000 });
}

/** Leftovers of an earlier run of this script (our label and our name prefix, both). */
async function removeLeftovers(): Promise<number> {
  const out = (await run('docker', ['ps', '-a', '--filter', `label=${LABEL}=1`, '--format', '{{.ID}} {{.Names}}'])).stdout;
  const ids = out
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([id, name]) => id !== undefined && id !== '' && (name ?? '').startsWith(NAME_PREFIX))
    .map(([id]) => id ?? '');
  await removeContainers(ids);
  return ids.length;
}

async function dockerRun(key: string, what: string, flags: string[], cmd: string[]): Promise<Target> {
  const name = `${NAME_PREFIX}${key}-${RUN_TAG}`;
  const runArgs = ['run', '-d', '--name', name, '--label', `${LABEL}=1`, ...flags, IMAGE, ...cmd];
  const id = (await run('docker', runArgs, { timeoutMs: 120_000 })).stdout.trim();
  created.push(id);
  const pid = Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
  const line = (readText(`/proc/${pid}/cgroup`) ?? '').split('\n').find((l) => /^\d+:memory:/.test(l));
  const cg = line?.split(':')[2];
  if (cg === undefined) throw new Error(`${name}: no memory cgroup in /proc/${pid}/cgroup`);
  return { key, what, name, dockerId: id, runArgs: ['docker', ...runArgs], cg, pid };
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(1000);
  }
}

/** UDP sockets in a container's network namespace, made by a host python3 (busybox nc has no UDP). */
const UDP_SCRIPT = `
import socket, time
def sock(bind=None, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if bind: s.bind(bind)
    return s
quiet = sock(('127.0.0.1', 7100))                 # receives 10 datagrams and never reads them: rx_queue > 0
small = sock(('127.0.0.1', 7101), rcvbuf=2048)    # flooded past its receive buffer: drops > 0
tx = sock(); tx.connect(('127.0.0.1', 7100))      # a connected sender
flood = sock()
for _ in range(10): tx.send(b'x' * 100)
for _ in range(200): flood.sendto(b'y' * 1000, ('127.0.0.1', 7101))
print('ready', flush=True)
time.sleep(7200)
`;

async function startUdpHelper(pid: number): Promise<{ proc: ChildProcess; argv: string[] }> {
  const python = (await run('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
  const argv = ['nsenter', '-t', String(pid), '-n', python, '-c', UDP_SCRIPT];
  const proc = spawn(argv[0] ?? 'nsenter', argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const helperPid = proc.pid ?? 0;
  onCleanup(`stop the UDP helper (pid ${helperPid})`, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await until('the UDP helper', 15_000, () => {
    if (proc.exitCode !== null) throw new Error(`UDP helper exited: ${out}`);
    return out.includes('ready');
  });
  return { proc, argv: ['nsenter', '-t', '<net pid>', '-n', 'python3', '-c', '<script below>'] };
}

// ---------------------------------------------------------------------------------------------------------------
// cAdvisor

async function startCadvisor(port: number): Promise<{ e: Exporter; argv: string[] }> {
  const args = [
    '-port',
    String(port),
    '-listen_ip',
    '127.0.0.1',
    '-logtostderr',
    '-docker_only=false',
    '-housekeeping_interval=1s',
    '-allow_dynamic_housekeeping=false',
    `-disable_metrics=${CADVISOR_DISABLE}`,
  ];
  const logFd = fs.openSync(CADVISOR_LOG, 'w');
  const proc = spawn(CADVISOR_BIN, args, { cwd: '/', stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const tail = (): string =>
    (readText(CADVISOR_LOG) ?? '')
      .split('\n')
      .filter((l) => l !== '' && !l.includes('perf_event'))
      .slice(-3)
      .join(' | ');
  const e: Exporter = { kind: 'cadvisor', proc, pid: proc.pid ?? 0, url: `http://127.0.0.1:${port}`, tail };
  const unregister = onCleanup(`stop cAdvisor (pid ${e.pid})`, () => stopExporter(e));
  proc.once('exit', unregister);
  await until('cAdvisor /healthz', 60_000, async () => {
    if (proc.exitCode !== null) throw new Error(`cAdvisor exited: ${tail()}`);
    try {
      const r = await fetch(`${e.url}/healthz`);
      return r.status === 200;
    } catch {
      return false;
    }
  });
  return { e, argv: [CADVISOR_BIN.replace(`${REPO}/`, ''), ...args] };
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison

type Verdict = 'match' | '≈' | 'differs' | 'podvisor only' | 'cAdvisor only' | 'absent in both';

interface Row {
  family: Family;
  labels: string;
  pv?: number;
  ca?: number;
  kBefore?: number;
  kAfter?: number;
  kSrc: string;
  /** sched of a cgroup with descendants: the sum over the whole subtree */
  kTree?: number;
  verdict: Verdict;
  /** podvisor against the kernel: within [before, after]; `≥ live` (sched): above the live processes' sum */
  pvKernel: 'match' | '≈' | '≥ live' | 'differs' | '—';
  /** a known reason for a difference, or '' */
  why: string;
}

const close = (a: number, b: number, rel: number): boolean => a === b || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));

function verdictOf(pv: number | undefined, ca: number | undefined): Verdict {
  if (pv === undefined && ca === undefined) return 'absent in both';
  if (pv === undefined) return 'cAdvisor only';
  if (ca === undefined) return 'podvisor only';
  if (pv === ca || close(pv, ca, 1e-12)) return 'match';
  if (close(pv, ca, 0.02)) return '≈';
  return 'differs';
}

function pvAgainstKernel(pv: number | undefined, before: number | undefined, after: number | undefined, sched: boolean): Row['pvKernel'] {
  if (pv === undefined || before === undefined || after === undefined) return '—';
  const lo = Math.min(before, after);
  const hi = Math.max(before, after);
  const eps = 1e-9 * Math.max(1, Math.abs(hi));
  if (pv >= lo - eps && pv <= hi + eps) return 'match';
  // schedstat sums keep the last reading of processes that exited: above the live sum is the rule, below is not.
  if (sched && pv > hi) return '≥ live';
  if (close(pv, lo, 0.02) || close(pv, hi, 0.02)) return '≈';
  return 'differs';
}

const TMPFS = tmpfsMountpoints();

function explain(r: Row, t: Target, kAfter: KernelView): string {
  const device = /device=([^,]+)/.exec(r.labels)?.[1];
  const fromDiskstats = r.kSrc.startsWith('/proc/diskstats');
  const added = NOT_IN_0_38_7[r.family];
  const sched = SCHED[r.family] !== undefined;
  if (added !== undefined && r.verdict === 'podvisor only') return `not in cAdvisor 0.38.7 (added in ${added})`;
  if (r.family === 'container_ulimits_soft' && t.cg === '/' && r.verdict === 'cAdvisor only')
    return "cAdvisor's raw handler gives `/` pid 1 and reports pid 1's limits; podvisor reports ulimits only for a runtime's container";
  if (t.cg === '/' && r.verdict === 'cAdvisor only' && device !== undefined && TMPFS.has(device) && r.ca === 0)
    return "cAdvisor's `/` lists tmpfs filesystems too (named by mount point, no diskstats: 0); podvisor only block-device filesystems";
  if (t.dockerId !== undefined && fromDiskstats && r.verdict === 'cAdvisor only' && r.ca === 0)
    return "cAdvisor 0.38.7 gives a Docker container a row for its layer's filesystem with the diskstats fields at 0 (its FsStats carry usage only; v0.39.0+ fills in the whole device's counters); podvisor gives a container no filesystem row";
  if (t.pid === 0 && r.verdict === 'cAdvisor only' && r.ca === 0 && /^container_network_(tcp|udp)6?_usage_total$/.test(r.family))
    return 'cAdvisor emits every state as 0 for a cgroup with no process to read a network namespace from (a raw cgroup: pid 0); podvisor emits nothing';
  if (sched && r.verdict === 'cAdvisor only' && r.kTree !== undefined && r.ca !== undefined && (r.ca >= r.kTree || close(r.ca, r.kTree, 0.05)))
    return "cAdvisor sums the processes of the cgroup and all its descendants (GetAllPids walks the subtree); podvisor reads only the cgroup's own cgroup.procs, and a cgroup without processes of its own has no series";
  if (r.pv !== undefined && r.ca !== undefined && r.verdict !== 'match') {
    if (FS_SECONDS.has(r.family) && fromDiskstats && r.ca > 0 && close(r.pv, r.ca * 1e6, 0.05))
      return 'cAdvisor 0.38.7 divides /proc/diskstats milliseconds by 1e9 (a million times too small); podvisor gives seconds';
    if (fromDiskstats && t.cg !== '/' && r.ca === 0 && device !== undefined)
      return "cAdvisor 0.38.7's Docker handler leaves the diskstats fields of the layer's filesystem row at 0 (filled from v0.39.0, container/docker/fs.go addDiskStats)";
    const udp = r.family === 'container_network_udp6_usage_total' ? kAfter.udp6 : r.family === 'container_network_udp_usage_total' ? kAfter.udp : undefined;
    if (udp !== undefined) {
      const state = /udp_state=(\w+)/.exec(r.labels)?.[1];
      const opposite = state === 'rxqueued' ? udp['tx_queue'] : state === 'txqueued' ? udp['rx_queue'] : undefined;
      if (opposite !== undefined && r.ca === opposite)
        return "cAdvisor scans the kernel's `tx_queue:rx_queue` as rx:tx (swapped); podvisor reports the kernel's rx_queue as rxqueued";
    }
    if (sched && t.cg === '/')
      return "both sum every process of the node and keep the last reading of every process they saw that has exited since, each sampled at its own pace (cAdvisor every 1 s, podvisor at each scrape), so both run above the kernel's live sums";
    if (sched && (r.pvKernel === 'match' || (r.kTree !== undefined && close(r.pv, r.kTree, 0.02))) && r.ca > r.pv)
      return "cAdvisor's sum keeps the last reading of short-lived processes that have exited (the container's start-up `sh`/`dd`/`sleep 1`, the OOM-killed `tail`), which its 1 s housekeeping saw; podvisor was not scraped while they lived and never saw them (same rule, other sampling: see the exit check)";
    if (r.pvKernel !== 'differs' && (t.cg === '/' || sched) && (close(r.pv, r.ca, 0.1) || Math.abs(r.pv - r.ca) <= 3))
      return "moves between readings: cAdvisor's value is from its last housekeeping (≤ 1 s old), podvisor's from the scrape";
  }
  return '';
}

interface Round {
  at: string;
  /** target key → rows */
  rows: Map<string, Row[]>;
  pv: Parsed;
  ca: Parsed;
  ms: { pv: number; ca: number };
}

function compareTarget(t: Target, pv: Parsed, ca: Parsed, kb: KernelView, ka: KernelView): Row[] {
  const rows: Row[] = [];
  for (const family of FAMILIES) {
    const pvRows = pv.byFamily.get(family)?.get(t.cg) ?? new Map<string, number>();
    const caRows = ca.byFamily.get(family)?.get(t.cg) ?? new Map<string, number>();
    const keys = [...new Set([...pvRows.keys(), ...caRows.keys()])].sort();
    if (keys.length === 0) keys.push('');
    for (const key of keys) {
      const labels: Record<string, string> = Object.fromEntries(
        key
          .split(',')
          .filter((p) => p !== '')
          .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
      );
      const before = kernelRef(family, labels, kb, t);
      const after = kernelRef(family, labels, ka, t);
      const r: Row = {
        family,
        labels: key === '' ? (pvRows.size === 0 && caRows.size === 0 ? '—' : '') : key,
        kSrc: after.src,
        verdict: verdictOf(pvRows.get(key), caRows.get(key)),
        pvKernel: '—',
        why: '',
      };
      const pvv = pvRows.get(key);
      const cav = caRows.get(key);
      if (pvv !== undefined) r.pv = pvv;
      if (cav !== undefined) r.ca = cav;
      if (before.value !== undefined) r.kBefore = before.value;
      if (after.value !== undefined) r.kAfter = after.value;
      const s = SCHED[family];
      if (s !== undefined && ka.schedTree !== undefined) r.kTree = ka.schedTree[s];
      r.pvKernel = pvAgainstKernel(r.pv, r.kBefore, r.kAfter, SCHED[family] !== undefined);
      r.why = explain(r, t, ka);
      rows.push(r);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// The exit check: both keep the last reading of an exited process in the schedstat sums

const EXIT_CMD = 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 3';

/** Scrapes both and reads the kernel before, while and after a short-lived `sh` (and its `sleep`) runs in `t`. */
async function exitCheck(t: Target, pv: Exporter, ca: Exporter): Promise<string[][]> {
  const rows: string[][] = [];
  const snap = async (phase: string): Promise<void> => {
    const [p, c] = await Promise.all([scrapeParsed(pv), scrapeParsed(ca)]);
    const k = schedSum(cgroupProcs(t.cg));
    const v = (x: Parsed, f: Family): number | undefined => x.byFamily.get(f)?.get(t.cg)?.get('');
    rows.push([
      phase,
      String(k.pids),
      num(v(p, 'container_cpu_schedstat_run_periods_total')),
      num(v(c, 'container_cpu_schedstat_run_periods_total')),
      num(k.periods),
      num(v(p, 'container_cpu_schedstat_run_seconds_total')),
      num(v(c, 'container_cpu_schedstat_run_seconds_total')),
      num(k.run),
    ]);
  };
  await snap('before');
  const proc = spawn('docker', ['exec', t.dockerId ?? '', 'sh', '-c', EXIT_CMD], { stdio: 'ignore' });
  const unregister = onCleanup(`stop docker exec (pid ${proc.pid ?? 0})`, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await sleep(1500);
  await snap('while it runs (1.5 s in)');
  await exited;
  unregister();
  await sleep(2500); // cAdvisor's housekeeping
  await snap('2.5 s after it exited');
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

function num(v: number | undefined): string {
  if (v === undefined) return 'absent';
  if (Number.isInteger(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(4);
  return String(Number(v.toPrecision(9)));
}

function kernelCell(r: Row): string {
  if (r.kAfter === undefined) return r.kSrc === '—' ? '—' : `— (${r.kSrc})`;
  const v = r.kBefore === undefined || r.kBefore === r.kAfter ? num(r.kAfter) : `${num(r.kBefore)} → ${num(r.kAfter)}`;
  const all = r.kTree === undefined ? '' : `; with descendants: ${num(r.kTree)}`;
  return `${v} (${r.kSrc}${all})`;
}

const short = (f: string): string => f.replace(/^container_/, '');

function table(headers: string[], rows: string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Main

/** sha256 over every file under `dir` (relative path and content, sorted): which source tree dist/ was built from. */
function digest(dir: string): string {
  const h = createHash('sha256');
  const files: string[] = [];
  const stack = [dir];
  for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) files.push(p);
    }
  }
  for (const f of files.sort())
    h.update(`${path.relative(dir, f)}\0`)
      .update(fs.readFileSync(f))
      .update('\0');
  return h.digest('hex').slice(0, 16);
}

async function versionOf(cmd: string, args: string[], pick: (s: string) => string = (s) => s.split('\n')[0] ?? ''): Promise<string> {
  try {
    const r = await run(cmd, args);
    return pick(`${r.stdout}${r.stderr}`).trim() || '?';
  } catch (err) {
    return `? (${errorMessage(err)})`;
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (cgroup and /proc files of other processes, nsenter)');
  if (!fs.existsSync(CADVISOR_BIN)) throw new Error(`${CADVISOR_BIN} missing: run bench/cadvisor-fetch.sh`);
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds: ${ROUNDS} is not a whole number ≥ 1`);
  await run('docker', ['image', 'inspect', IMAGE]).catch(() => {
    throw new Error(`docker image ${IMAGE} missing (or dockerd down): run test/support/provision.sh`);
  });

  log('npm run build --silent');
  const srcDigest = digest(path.join(REPO, 'src'));
  await run('npm', ['run', 'build', '--silent'], { cwd: REPO, timeoutMs: 300_000 });

  const started = new Date();
  const m = machine();
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version?: string };
  const rev = await versionOf('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const srcState = await versionOf('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'], (s) =>
    s.trim() === '' ? 'src/ clean' : 'src/ with uncommitted changes',
  );
  const versions = {
    podvisor: `${pkg.version ?? '?'} (git ${rev}, ${srcState}, src/ digest ${srcDigest}; dist/ built by this script)`,
    cadvisor: await versionOf(CADVISOR_BIN, ['--version']),
    docker: await versionOf('docker', ['version', '--format', '{{.Server.Version}}']),
    containerd: await versionOf('containerd', ['--version']),
    runc: await versionOf('runc', ['--version']),
    busybox: await versionOf('docker', ['run', '--rm', IMAGE, 'sh', '-c', 'busybox | head -1']),
    python: await versionOf('python3', ['--version']),
    node: process.version,
  };
  const scheduler = (readText('/sys/block/vda/queue/scheduler') ?? '?').trim();

  const leftovers = await removeLeftovers();
  if (leftovers > 0) log(`removed ${leftovers} leftover ${NAME_PREFIX}* containers of an earlier run`);
  onCleanup('remove the pv-fam-* containers', () => removeContainers(created));

  // Exporters first, so both see the containers from their start (and the OOM kill happens while both run).
  const caPort = await freePort();
  log(`starting cAdvisor on 127.0.0.1:${caPort}`);
  const { e: ca, argv: caArgv } = await startCadvisor(caPort);
  const pvArgs = [`--enable-metrics=${PODVISOR_KINDS}`];
  log(`starting podvisor ${pvArgs.join(' ')}`);
  let pv = await startPodvisor(pvArgs);
  const pvPort = new URL(pv.url).port;

  log('starting containers');
  const dio = await dockerRun(
    'dio',
    'direct I/O: dd oflag=direct (16 MiB), then dd iflag=direct, then sleep',
    [],
    [
      'sh',
      '-c',
      'dd if=/dev/zero of=/dio bs=64k count=256 oflag=direct 2>/dev/null && dd if=/dio of=/dev/null bs=64k iflag=direct 2>/dev/null && touch /done; exec sleep 3600',
    ],
  );
  const ulimit = await dockerRun(
    'ulimit',
    'nofile 1234:5678 and a CFS quota (0.5 CPU), sleep',
    ['--ulimit', 'nofile=1234:5678', '--cpus', '0.5'],
    ['sleep', '3600'],
  );
  const oom = await dockerRun(
    'oom',
    "32 MiB, no swap, sleep; an exec'd `tail /dev/zero` is OOM-killed",
    ['-m', '32m', '--memory-swap', '32m'],
    ['sleep', '3600'],
  );
  const net = await dockerRun(
    'net',
    'nc: LISTEN on 7001, an ESTABLISHED pair on 7002 (busybox `nc -l` binds `::`, so the listener and the server side are tcp6 sockets, the client a tcp one); UDP sockets from a host python3 in its netns',
    [],
    ['sh', '-c', 'nc -l -p 7001 >/dev/null & nc -l -p 7002 -e cat & sleep 1; sleep 3600 | nc 127.0.0.1 7002 >/dev/null & exec sleep 3600'],
  );
  const root: Target = { key: '/', what: 'the root cgroup (the node)', cg: '/', pid: 1 };
  const parent: Target = {
    key: '/docker',
    what: "the Docker containers' parent: a raw cgroup with no process of its own, like a pod cgroup",
    cg: '/docker',
    pid: 0,
  };
  const targets: Target[] = [dio, ulimit, oom, net, root, parent];

  await until(
    'the direct I/O to finish',
    60_000,
    async () =>
      await run('docker', ['exec', dio.dockerId ?? '', 'test', '-f', '/done']).then(
        () => true,
        () => false,
      ),
  );
  await sleep(1500); // nc's listeners and the connection
  const udp = await startUdpHelper(net.pid);

  const ids = targets.map((t) => t.cg);
  const sees = (p: Parsed, family: string): boolean => ids.every((id) => p.byFamily.get(family)?.has(id) === true);
  const containerIds = [dio, ulimit, oom, net].map((t) => t.cg);
  log('waiting for both exporters to see the containers');
  const waitedCa = await until('cAdvisor to report the containers', 120_000, async () => {
    const p = await scrapeParsed(ca);
    return sees(p, 'container_cpu_usage_seconds_total') && containerIds.every((id) => p.byFamily.get('container_ulimits_soft')?.has(id) === true);
  });
  const waitedPv = await until("podvisor to report the containers and their layers' filesystem (first disk walk)", 180_000, async () => {
    const p = await scrapeParsed(pv);
    return sees(p, 'container_cpu_usage_seconds_total') && containerIds.every((id) => p.byFamily.get('container_fs_usage_bytes')?.has(id) === true);
  });

  // The OOM kill, with both exporters running.
  log('OOM: docker exec tail /dev/zero');
  const oomBefore = kernelView(oom, partitions()).oomKill ?? 0;
  const execResult = await run('docker', ['exec', oom.dockerId ?? '', 'tail', '/dev/zero'], { timeoutMs: 120_000 }).then(
    () => 'exit 0 (not killed?)',
    (err: unknown) => errorMessage(err).replace(/^.*?: /, ''),
  );
  await until('memory.oom_control oom_kill to count the kill', 20_000, () => (kernelView(oom, partitions()).oomKill ?? 0) > oomBefore);
  const oomRunning = (await run('docker', ['inspect', '-f', '{{.State.Running}}', oom.dockerId ?? ''])).stdout.trim();
  const oomAfter = kernelView(oom, partitions()).oomKill ?? 0;
  const kmsgLine = await versionOf('dmesg', [], (s) =>
    (
      s
        .split('\n')
        .filter((l) => /Memory cgroup out of memory: Killed process|oom-kill:/.test(l) && l.includes(oom.dockerId ?? '\u0000'))
        .pop() ?? ''
    ).replace(/\s+/g, ' '),
  );
  await sleep(3000); // a few housekeepings of cAdvisor

  // Rounds: kernel, both scrapes at once, kernel.
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    if (i > 0) await sleep(3000);
    const devs = partitions();
    const kb = new Map(targets.map((t) => [t.key, kernelView(t, devs)]));
    const t0 = performance.now();
    const lastRound = i === ROUNDS - 1;
    const [pvP, caP] = await Promise.all([
      scrapeParsed(pv, lastRound ? 'podvisor-kinds.txt' : undefined).then((p) => ({ p, ms: performance.now() - t0 })),
      scrapeParsed(ca, lastRound ? 'cadvisor.txt' : undefined).then((p) => ({ p, ms: performance.now() - t0 })),
    ]);
    const ka = new Map(targets.map((t) => [t.key, kernelView(t, devs)]));
    const rows = new Map<string, Row[]>();
    for (const t of targets) rows.set(t.key, compareTarget(t, pvP.p, caP.p, kb.get(t.key) as KernelView, ka.get(t.key) as KernelView));
    rounds.push({ at: new Date().toISOString(), rows, pv: pvP.p, ca: caP.p, ms: { pv: pvP.ms, ca: caP.ms } });
    log(`round ${i + 1}/${ROUNDS} done`);
  }

  log(`exit check: \`${EXIT_CMD}\` in ${ulimit.name ?? ''}`);
  const exitRows = await exitCheck(ulimit, pv, ca);

  // podvisor with its defaults, for the series count.
  await stopExporter(pv);
  log('starting podvisor with its default flags');
  pv = await startPodvisor([]);
  await until('podvisor (defaults) to report the containers and their layers', 180_000, async () => {
    const p = await scrapeParsed(pv);
    return containerIds.every((id) => p.byFamily.get('container_fs_usage_bytes')?.has(id) === true);
  });
  const pvDefaults = await scrapeParsed(pv, 'podvisor-defaults.txt');
  await stopExporter(pv);
  const last = rounds[rounds.length - 1] as Round;
  const caFinal = await scrapeParsed(ca);
  await stopExporter(ca);
  udp.proc.kill('SIGKILL');

  const otherContainers = (await run('docker', ['ps', '-q'])).stdout.split('\n').filter((l) => l !== '').length - 4;
  const cgroupCount = Math.max(...[last.pv, last.ca].map((p) => p.byFamily.get('container_cpu_usage_seconds_total')?.size ?? 0));

  // ---------------------------------------------------------------- the report
  const md: string[] = [];
  const cadvisorVersion = versions.cadvisor.replace(/^cAdvisor version /, '');
  md.push(`# New families against cAdvisor 0.38.7 and the kernel: ${DATE}`);
  md.push('');
  md.push(
    `Generated by \`node --import=tsx bench/families-vs-cadvisor.ts\` (started ${started.toISOString()}, ${ROUNDS} rounds). Every value below was read on this node, from real cgroups, in the same second by both exporters and the kernel files.`,
  );
  md.push('');
  md.push('## Machine and versions');
  md.push('');
  md.push(
    table(
      ['what', 'value'],
      [
        ['kernel (`uname -r`)', m.kernel],
        ['OS', m.os],
        ['cgroups', m.cgroups],
        ['CPUs / memory', `${m.nproc} × ${m.cpuModel} / ${m.memoryMiB} MiB`],
        ['block device', `vda, I/O scheduler \`${scheduler}\` (so no CFQ files and empty BFQ ones: both exporters use blkio.throttle.*)`],
        ['podvisor', versions.podvisor],
        ['cAdvisor', cadvisorVersion],
        ['Docker / containerd / runc', `${versions.docker} (cgroupfs driver, overlay2) / ${versions.containerd} / ${versions.runc.split('\n')[0] ?? ''}`],
        ['busybox (podvisor-test:1)', versions.busybox],
        ['python3 (UDP helper)', versions.python],
        ['Node', versions.node],
        ['node state', `${otherContainers} other running Docker containers; ${cgroupCount} cgroups reported`],
      ],
    ),
  );
  md.push('');
  md.push('## Commands');
  md.push('');
  md.push('```sh');
  md.push('npm run build --silent');
  md.push(`${caArgv.join(' ')}   # cwd /`);
  md.push(`MALLOC_ARENA_MAX=2 node dist/main.js --listen-address=127.0.0.1:${pvPort} ${pvArgs.join(' ')}`);
  md.push('MALLOC_ARENA_MAX=2 node dist/main.js --listen-address=127.0.0.1:<port>   # defaults, for the series count only');
  for (const t of [dio, ulimit, oom, net]) md.push((t.runArgs ?? []).map((a) => (/[\s&;|'"<>]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' '));
  md.push(`docker exec ${oom.name ?? ''} tail /dev/zero   # ${execResult}`);
  md.push(`${udp.argv.join(' ')}`);
  md.push('```');
  md.push('');
  md.push("The UDP helper (busybox `nc` has no `-u`; run on the host, inside the `net` container's network namespace only):");
  md.push('');
  md.push('```python');
  md.push(UDP_SCRIPT.trim());
  md.push('```');
  md.push('');
  md.push(
    `Both exporters are scraped at once with \`Accept: text/plain;version=0.0.4\`, \`Accept-Encoding: gzip\` on \`/metrics\`; the kernel files are read just before and just after (\`a → b\` in the tables when they moved). cAdvisor runs with 1 s housekeeping and no dynamic backoff, so its values are at most ~1 s old; podvisor gathers on the scrape. podvisor saw every container after ${waitedPv.toFixed(0)} s (its first disk walk included), cAdvisor after ${waitedCa.toFixed(0)} s.`,
  );
  md.push('');
  md.push('## The containers');
  md.push('');
  md.push(
    table(
      ['key', 'name', 'id label (cgroup)', 'what'],
      targets.map((t) => [t.key, t.name ?? '—', `\`${t.cg}\``, t.what]),
    ),
  );
  md.push('');
  md.push(
    `OOM: \`memory.oom_control\` oom_kill of \`oom\` went ${oomBefore} → ${oomAfter}; the container is still running: ${oomRunning}. Kernel log: \`${kmsgLine || '(no matching line)'}\`.`,
  );
  md.push('');

  // Families present.
  md.push('## Which exporter serves which family');
  md.push('');
  md.push(
    `podvisor with \`--enable-metrics=${PODVISOR_KINDS}\`, podvisor with its defaults, cAdvisor 0.38.7 with \`-disable_metrics=${CADVISOR_DISABLE}\`: series over the whole node, and how many cgroups have the family.`,
  );
  md.push('');
  const count = (p: Parsed, f: string): number => [...(p.byFamily.get(f)?.values() ?? [])].reduce((n, rows) => n + rows.size, 0);
  const cell = (p: Parsed, f: Family, absent = 'absent'): string =>
    count(p, f) > 0 ? `${count(p, f)} series, ${p.byFamily.get(f)?.size ?? 0} cgroups` : absent;
  md.push(
    table(
      ['family', 'podvisor (kinds)', 'podvisor (defaults)', 'cAdvisor 0.38.7'],
      FAMILIES.map((f) => [
        short(f),
        cell(last.pv, f),
        cell(pvDefaults, f),
        cell(last.ca, f, `absent${NOT_IN_0_38_7[f] === undefined ? '' : ` (added in ${NOT_IN_0_38_7[f]})`}`),
      ]),
    ),
  );
  md.push('');
  const cgroupsWith = (p: Parsed): number => p.byFamily.get('container_cpu_usage_seconds_total')?.size ?? 0;
  md.push(
    `${cgroupsWith(last.pv)} cgroups in podvisor's body, ${cgroupsWith(last.ca)} in cAdvisor's. cAdvisor emits the tcp, udp and sched families for every cgroup (zeros where it has no process or network namespace to read); podvisor only where it reads a namespace (tcp, udp) or has seen a process of the cgroup's own (sched).`,
  );
  md.push('');
  const families = (p: Parsed): Set<string> => new Set([...p.names].filter((n) => n.startsWith('container_') || n.startsWith('machine_')));
  const onlyPv = [...families(last.pv)].filter((n) => !families(last.ca).has(n)).sort();
  const onlyCa = [...families(last.ca)].filter((n) => !families(last.pv).has(n)).sort();
  md.push(`\`container_*\`/\`machine_*\` families only podvisor (kinds) serves: ${onlyPv.map((n) => `\`${n}\``).join(', ') || 'none'}.`);
  md.push('');
  md.push(`Only cAdvisor serves: ${onlyCa.map((n) => `\`${n}\``).join(', ') || 'none'}.`);
  md.push('');
  const rootDevices = (p: Parsed): string =>
    [...(p.byFamily.get('container_fs_usage_bytes')?.get('/')?.keys() ?? [])]
      .map((k) => k.replace(/^device=/, ''))
      .sort()
      .join(', ') || 'none';
  md.push(
    `Filesystems of \`/\` (the \`device\` labels of \`container_fs_usage_bytes{id="/"}\`, the same list the diskIO filesystem rows use): podvisor ${rootDevices(last.pv)}; cAdvisor ${rootDevices(last.ca)}.`,
  );
  md.push('');
  const dupes = [...new Set([...last.pv.duplicates.map((d) => `podvisor: ${d}`), ...last.ca.duplicates.map((d) => `cAdvisor: ${d}`)])];
  if (dupes.length > 0) {
    md.push(`Duplicate series (same name and labels twice in one body): ${dupes.slice(0, 10).join('; ')}${dupes.length > 10 ? ` … (${dupes.length})` : ''}.`);
    md.push('');
  }

  md.push('## Series count and body size');
  md.push('');
  const sizeRow = (what: string, p: Parsed): string[] => [
    what,
    String(p.exposition.series),
    String(p.exposition.containerSeries),
    String(p.exposition.families),
    (p.exposition.bytes / 1024).toFixed(1),
    (p.wireBytes / 1024).toFixed(1),
  ];
  md.push(
    table(
      ['exporter', 'series', 'container_* series', '# TYPE families', 'body KiB', 'gzip KiB'],
      [
        sizeRow('podvisor, these kinds', last.pv),
        sizeRow('podvisor, defaults', pvDefaults),
        sizeRow('cAdvisor 0.38.7, these kinds (last round)', last.ca),
        sizeRow('cAdvisor 0.38.7, at the end', caFinal),
      ],
    ),
  );
  md.push('');
  md.push(
    `Ratios (podvisor / cAdvisor, these kinds): series ${(last.pv.exposition.series / last.ca.exposition.series).toFixed(2)}, body ${(last.pv.exposition.bytes / last.ca.exposition.bytes).toFixed(2)}, gzip ${(last.pv.wireBytes / last.ca.wireBytes).toFixed(2)}. cAdvisor puts every Docker label on every series (\`-store_container_labels\` defaults to true; podvisor's \`--store-container-labels\` to false), which weighs on its body, not on the series count. podvisor's kinds add \`pressure\` and \`oom_event\` families 0.38.7 does not have.`,
  );
  md.push('');

  // Per-target tables (last round).
  md.push(`## Values (round ${ROUNDS} of ${ROUNDS}, ${last.at})`);
  md.push('');
  md.push(
    '`kernel`: the file read just before → just after the two scrapes. `pv=kernel`: podvisor within that range (`≈`: within 2 %). `verdict`: podvisor against cAdvisor (`≈`: within 2 %). `why`: the known reason for a difference.',
  );
  for (const t of targets) {
    md.push('');
    md.push(`### ${t.key === '/' ? '`/`' : `${t.key}: \`${t.cg}\``}`);
    md.push('');
    const rows = last.rows.get(t.key) ?? [];
    md.push(
      table(
        ['family', 'labels', 'podvisor', 'cAdvisor', 'kernel', 'pv=kernel', 'verdict', 'why'],
        rows.map((r) => [short(r.family), r.labels, num(r.pv), num(r.ca), kernelCell(r), r.pvKernel, r.verdict, r.why]),
      ),
    );
  }
  md.push('');

  md.push('## Exit check: schedstat keeps exited processes');
  md.push('');
  md.push(
    `After the rounds, \`docker exec ${ulimit.name ?? ''} sh -c '${EXIT_CMD}'\`: both exporters and the kernel (Σ of the live processes' /proc/<pid>/schedstat) before it, while it runs (after one scrape of each has seen it), and after it exited. Both sums must keep what the exited processes ran (never fall); the kernel's live sum falls back.`,
  );
  md.push('');
  md.push(
    table(
      [
        'when',
        'live pids',
        'podvisor run_periods',
        'cAdvisor run_periods',
        'kernel live Σ run_periods',
        'podvisor run_seconds',
        'cAdvisor run_seconds',
        'kernel live Σ run_seconds',
      ],
      exitRows,
    ),
  );
  md.push('');

  // Summary over all rounds.
  md.push(`## Summary per family (${ROUNDS} rounds × ${targets.length} targets)`);
  md.push('');
  md.push('Counts of series-rounds. `expected` = a difference with a known reason (the `why` column); `unexplained` = a difference without one.');
  md.push('');
  const summary: string[][] = [];
  const unexplained: string[] = [];
  const pvKernelDiffs: string[] = [];
  for (const f of FAMILIES) {
    const c = { match: 0, approx: 0, expected: 0, unexplained: 0, pvOnly: 0, caOnly: 0, none: 0, pvK: 0, pvKBad: 0 };
    for (const round of rounds) {
      for (const t of targets) {
        for (const r of (round.rows.get(t.key) ?? []).filter((x) => x.family === f)) {
          if (r.verdict === 'match') c.match++;
          else if (r.verdict === '≈') c.approx++;
          else if (r.verdict === 'absent in both') c.none++;
          else if (r.verdict === 'podvisor only' && r.why === '') c.pvOnly++;
          else if (r.verdict === 'cAdvisor only' && r.why === '') c.caOnly++;
          else if (r.why !== '') c.expected++;
          else c.unexplained++;
          if (r.verdict === 'differs' && r.why === '')
            unexplained.push(`${t.key} ${short(f)}{${r.labels}}: podvisor ${num(r.pv)}, cAdvisor ${num(r.ca)}, kernel ${kernelCell(r)}`);
          if ((r.verdict === 'podvisor only' || r.verdict === 'cAdvisor only') && r.why === '')
            unexplained.push(`${t.key} ${short(f)}{${r.labels}}: ${r.verdict} (podvisor ${num(r.pv)}, cAdvisor ${num(r.ca)}, kernel ${kernelCell(r)})`);
          if (r.pvKernel === 'match' || r.pvKernel === '≈' || r.pvKernel === '≥ live') c.pvK++;
          if (r.pvKernel === 'differs') {
            c.pvKBad++;
            pvKernelDiffs.push(`${t.key} ${short(f)}{${r.labels}}: podvisor ${num(r.pv)}, kernel ${kernelCell(r)}`);
          }
        }
      }
    }
    summary.push([
      short(f),
      String(c.match),
      String(c.approx),
      String(c.expected),
      String(c.unexplained),
      String(c.pvOnly),
      String(c.caOnly),
      String(c.none),
      `${c.pvK} / ${c.pvK + c.pvKBad}`,
    ]);
  }
  md.push(
    table(['family', 'match', '≈', 'expected diff', 'unexplained diff', 'podvisor only', 'cAdvisor only', 'absent in both', 'podvisor = kernel'], summary),
  );
  md.push('');

  // Differences and why.
  const allRows = rounds.flatMap((r) => [...r.rows.entries()].flatMap(([k, rows]) => rows.map((row) => ({ k, row }))));
  const reasons = new Map<string, Set<string>>();
  for (const { k, row } of allRows) {
    if (row.why === '') continue;
    const s = reasons.get(row.why) ?? new Set<string>();
    s.add(`${k} ${short(row.family)}`);
    reasons.set(row.why, s);
  }
  const fsRatio = allRows
    .filter(({ k, row }) => k === '/' && FS_SECONDS.has(row.family) && row.pv !== undefined && row.ca !== undefined && row.ca > 0)
    .map(({ row }) => (row.pv ?? 0) / (row.ca ?? 1));
  const udpNet = last.rows.get('net')?.filter((r) => r.family === 'container_network_udp_usage_total') ?? [];
  const udpCell = (state: string, which: 'pv' | 'ca' | 'k'): string => {
    const r = udpNet.find((x) => x.labels === `udp_state=${state}`);
    return num(which === 'pv' ? r?.pv : which === 'ca' ? r?.ca : r?.kAfter);
  };
  const oomRow = last.rows.get('oom')?.find((r) => r.family === 'container_oom_events_total');
  const oomRoot = last.rows.get('/')?.find((r) => r.family === 'container_oom_events_total');
  md.push('## Differences and why');
  md.push('');
  md.push(
    `- **fs \`*_seconds_total\` from /proc/diskstats**: cAdvisor 0.38.7 turns the diskstats milliseconds into "seconds" with \`/ float64(time.Second)\` (1e9), podvisor with / 1000. Observed podvisor / cAdvisor on \`/\`: ${fsRatio.length === 0 ? 'no row with both non-zero' : `${Math.min(...fsRatio).toExponential(3)} … ${Math.max(...fsRatio).toExponential(3)}`} (1e6 expected; off by the milliseconds that passed between the two readings). podvisor's seconds equal the kernel's ms / 1000 (the pv=kernel column).`,
  );
  const containerFsRows = allRows.filter(({ k, row }) => k !== '/' && k !== '/docker' && row.kSrc.startsWith('/proc/diskstats') && row.pv !== undefined).length;
  md.push(
    containerFsRows > 0
      ? "- **fs rows of a Docker container's layer** (every diskIO family except the bytes ones, `device=/dev/vda`): podvisor puts the device's /proc/diskstats counters there, as cAdvisor does from v0.39.0 (`container/docker/fs.go`, `addDiskStats`); 0.38.7's Docker handler builds that FsStats with usage only, so its diskstats fields are 0. These values are the whole device's, not the container's: the same number on every container on /dev/vda."
      : "- **fs rows of a Docker container's layer** (every diskIO family except the bytes ones, `device=/dev/vda`): cAdvisor 0.38.7 gives every Docker container a row for its layer's filesystem whose diskstats fields are 0 (its Docker handler builds that FsStats with usage only; from v0.39.0, `container/docker/fs.go` `addDiskStats`, the row carries the whole device's /proc/diskstats counters, the same number on every container on the device). podvisor gives a container no such row (README: absent rather than a fake 0), so these rows are cAdvisor-only. Where a container has a blkio row for the device (`dio`'s reads and writes), cAdvisor's filesystem row has the same labels and its registry drops it: both show the blkio value.",
  );
  md.push(
    `- **UDP queues**: the kernel prints \`tx_queue:rx_queue\`; cAdvisor scans it into (rx, tx), so its \`rxqueued\` is the kernel's tx_queue. On \`net\`: kernel rx_queue ${udpCell('rxqueued', 'k')}, tx_queue ${udpCell('txqueued', 'k')}; podvisor rxqueued ${udpCell('rxqueued', 'pv')}, txqueued ${udpCell('txqueued', 'pv')}; cAdvisor rxqueued ${udpCell('rxqueued', 'ca')}, txqueued ${udpCell('txqueued', 'ca')}. \`listen\` counts every UDP socket in both (the kernel has no UDP listen state).`,
  );
  md.push(
    `- **OOM kills**: \`container_oom_events_total\` is not in 0.38.7 at all (added in v0.40.0, where it counts the OOM killer's /dev/kmsg lines seen since cAdvisor started, so a kill before its start is not counted). podvisor reads the kernel's counter: \`oom\` ${num(oomRow?.pv)} (memory.oom_control oom_kill ${num(oomRow?.kAfter)}), \`/\` ${num(oomRoot?.pv)} (/proc/vmstat oom_kill ${num(oomRoot?.kAfter)}: the node's kills since boot, including those of other users of this machine, not a sum over cgroups).`,
  );
  md.push(
    '- **`container_memory_kernel_usage`** (v0.48.0) and **`container_cpu_cfs_burst_periods_total`** (v0.55.0) are not in 0.38.7: podvisor against the kernel only. The burst counter exists only where the container has a CFS quota (as newer cAdvisor: `condition: Quota != 0`), so here only on `ulimit` (`--cpus 0.5`); podvisor additionally needs `nr_bursts` in cpu.stat (this kernel has it).',
  );
  md.push(
    "- **schedstat of a subtree**: both sum the processes of a cgroup and of every cgroup below it (cAdvisor through `GetAllPids`, podvisor by adding up the cgroups it reports), so a pod or a parent such as `/docker` has the sums of its containers; for `/` that is every process on the node. The kernel column shows the cgroup's own processes and, with descendants, the subtree's.",
  );
  md.push(
    "- **schedstat of processes that exited**: both keep the last reading of each process they saw, so what a process ran stays in the sum after it exits (the exit check above). Each sees only the processes alive at one of its readings: cAdvisor every second, podvisor at each scrape. The `dio` container's `dd`s and the `oom` container's `tail` lived between podvisor's scrapes and count only in cAdvisor's sums.",
  );
  md.push(
    '- **`/` filesystems**: cAdvisor 0.38.7 lists tmpfs mounts too (its processMounts takes tmpfs and names it by mount point), with no diskstats, so its `/` has extra diskIO rows at 0 (`/dev/shm`, `/sys/fs/cgroup`, ...); podvisor lists block-device filesystems only, for container_fs_usage_bytes as for the diskIO rows.',
  );
  md.push(
    '- **tcp/udp on a cgroup without its own network namespace** (`/docker`, and every other raw cgroup): cAdvisor emits all 11 TCP and 4 UDP states as 0 (for v4 and v6), podvisor nothing.',
  );
  md.push(
    "- **Counters that move** (`/` diskstats, blkio and TCP of the host's namespace, schedstat of running processes): cAdvisor's value is from its last housekeeping (≤ 1 s), podvisor's from the scrape; the kernel range shows which one is current.",
  );
  md.push('');
  md.push('Every known reason seen, with where:');
  md.push('');
  for (const [why, where] of reasons) md.push(`- ${why}: ${[...where].join(', ')}`);
  md.push('');
  md.push('## Unexplained');
  md.push('');
  md.push(
    unexplained.length === 0
      ? 'None: every difference between podvisor and cAdvisor has a reason above.'
      : `Differences with no reason above (each round):\n\n${[...new Set(unexplained)].map((u) => `- ${u}`).join('\n')}`,
  );
  md.push('');
  md.push(
    pvKernelDiffs.length === 0
      ? "podvisor against the kernel: every series with a kernel file was within the file's before/after range (or 2 % of it; schedstat sums: at or above the live processes' sum)."
      : `podvisor outside the kernel's before/after range (by more than 2 %):\n\n${[...new Set(pvKernelDiffs)].map((u) => `- ${u}`).join('\n')}`,
  );
  md.push('');
  md.push(`Scratch (not kept): cAdvisor's log and the last round's bodies were in \`${SCRATCH}\` during the run.`);
  md.push('');
  md.push(
    `Scrape wall time of the concurrent pairs (ratio podvisor / cAdvisor, per round): ${rounds.map((r) => (r.ms.pv / r.ms.ca).toFixed(2)).join(', ')} (not a benchmark: one scrape each, both at once, cAdvisor with 1 s housekeeping).`,
  );
  md.push('');

  const text = md.join('\n');
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, text);
  process.stdout.write(`${text}\n`);
  log(`report: ${path.relative(REPO, OUT)}`);
}

installSignalHandlers(log);
let code = 0;
try {
  await main();
} catch (err) {
  log(`FAILED: ${errorMessage(err)}`);
  code = 1;
} finally {
  await runCleanup(log);
}
process.exit(code);
