/**
 * What the `accelerator` kind costs, with the fake NVML (test/support/fake-nvml.ts) scripted as 8 GPUs and 100 processes
 * (spread round robin over the GPUs, each with memory and an SM sample every poll). The processes are real: 100 `sleep`
 * children of this bench, so attribution really reads their /proc/<pid>/cgroup (they are in no container: nothing is
 * attributed). When bench containers run (`bench/containers.sh up N`), a second scripted node puts the processes in them
 * (the containers' own pids, topped up with sleep children) and a fake kubelet PodResources API
 * (test/support/fake-pod-resources.ts) assigns each of those containers its GPU as a time-slicing replica (`uuid::k`):
 * the whole attribution path. Three measures:
 *
 * 1. gather + render + encode in-process (createGatherer, as main wires it), the default kinds without `accelerator`
 *    (a node without NVML) against the same with it, passes interleaved (each pass starting with the next set); median
 *    and p90 ratios, files read per gather (a counting FileReader), series and body bytes added. The NVML and
 *    PodResources polls run in the background and are kept out of this measure (NVML polls once at start; PodResources
 *    every 60 s): a gather only attributes the last poll;
 * 2. one NVML poll (NvmlSampler.poll(), timed directly in a child process of its own): wall and CPU ms (process CPU, the
 *    libuv pool thread included), the native calls per poll from the fake's call log (FAKE_NVML_LOG, in another child so
 *    the log's appends are not timed), and the background cost per --accelerator-interval (10 s) as % of one core;
 * 3. RSS (VmRSS, VmHWM) of a child process that builds the gatherer without and with the kind and gathers a few times,
 *    children interleaved off/on; plus what importing koffi costs a bare node (only a podvisor with the kind on and NVML found imports it).
 *
 * The fake answers from memory (a stat() of its scenario per call): real NVML calls go to the driver and cost more
 * wall time (not CPU of ours), so part 2 is podvisor's own overhead per call, not the driver's.
 *
 *   node --import=tsx bench/accelerator-cost.ts [passes=21] [out.md]    (out.svg next to out.md)
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLayout } from '../src/cgroup/layout.js';
import { listCgroups } from '../src/cgroup/discover.js';
import { parseArgs } from '../src/config.js';
import { createGatherer, type AcceleratorOptions, type GatherSetup } from '../src/gather/setup.js';
import { NvmlSampler } from '../src/gpu/sampler.js';
import { FileReader } from '../src/host/file-reader.js';
import { silentLogger } from '../src/log.js';
import { assemble, encodeFamilies } from '../src/metrics/exposition.js';
import { renderSnapshot } from '../src/metrics/index.js';
import { DEFAULT_KINDS, type MetricKind } from '../src/model/kinds.js';
import type { Snapshot } from '../src/model/snapshot.js';
import { buildFakeNvml, fakeNvmlEnv, readNvmlLog, writeScenario, type FakeGpu, type FakeScenario } from '../test/support/fake-nvml.js';
import { FakePodResources, type FakePod } from '../test/support/fake-pod-resources.js';
import { socketPath } from '../test/support/socket-path.js';
import { median, percentile } from './lib/stats.js';

const SELF = fileURLToPath(import.meta.url);
const GPUS = 8;
const PROCESSES = 100;
/** Longer than any run, under setInterval's 2^31-1 ms limit: the NVML sampler polls once, at start. */
const NEVER_MS = 2_000_000_000;
const INTERVAL_MS = 10_000;
const POLLS = 200;
const RSS_ROUNDS = 7;
const RSS_GATHERS = 5;

// ---- node state and scenario ----

const gpuUuid = (i: number): string => `GPU-${(0xa100 + i).toString(16)}0000-1111-2222-3333-${i.toString(16).padStart(12, '0')}`;

/** 8 H100-shaped GPUs, MIG supported and off; process `k` of `pids` on GPU k % 8, with memory and an SM sample. */
function scenario(pids: readonly number[]): FakeScenario {
  const gpus: FakeGpu[] = [];
  for (let g = 0; g < GPUS; g++) {
    const mine = pids.filter((_, k) => k % GPUS === g);
    gpus.push({
      uuid: gpuUuid(g),
      name: 'NVIDIA H100 80GB HBM3',
      minor: g,
      memTotal: 80 * 2 ** 30,
      memUsed: mine.length * 2 ** 30,
      memFree: (80 - mine.length) * 2 ** 30,
      memReserved: 512 * 2 ** 20,
      utilGpu: 40 + g,
      utilMem: 20 + g,
      powerMw: 300_000 + g * 1000,
      tempC: 50 + g,
      migMode: 0,
      compute: mine.map((pid, k) => ({ pid, mem: (k + 1) * 2 ** 26 })),
      graphics: [],
      samples: mine.map((pid, k) => ({ pid, sm: (k * 7) % 60, mem: (k * 3) % 40 })),
    });
  }
  return { driverVersion: '550.54.15', gpus };
}

interface BenchContainer {
  name: string;
  pid: number;
  namespace: string;
  pod: string;
  container: string;
}

/** Running podvisor-bench-* containers: their main pid and Kubernetes labels (none: docker missing or none up). */
function benchContainers(): BenchContainer[] {
  try {
    const names = execFileSync('docker', ['ps', '--filter', 'name=^podvisor-bench-', '--format', '{{.Names}}'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '')
      .sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')));
    if (names.length === 0) return [];
    const fmt =
      '{{.Name}} {{.State.Pid}} {{index .Config.Labels "io.kubernetes.pod.namespace"}} {{index .Config.Labels "io.kubernetes.pod.name"}} {{index .Config.Labels "io.kubernetes.container.name"}}';
    return execFileSync('docker', ['inspect', '-f', fmt, ...names], { encoding: 'utf8', maxBuffer: 16 << 20 })
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [name = '', pid = '0', namespace = '', pod = '', container = ''] = l.split(' ');
        return { name: name.replace(/^\//, ''), pid: Number(pid), namespace, pod, container };
      })
      .filter((c) => c.pid > 0 && c.namespace !== '' && c.pod !== '' && c.container !== '');
  } catch {
    return [];
  }
}

// ---- part 1: gathers ----

/** The files only the kind reads: a process's cgroups (NVML's pids) and cgroup v1 devices.list (cAdvisor's fallback). */
const PID_CGROUP = /^\/proc\/\d+\/cgroup$/;
const DEVICES_LIST = /\/devices\.list$/;

class CountingReader extends FileReader {
  count = 0;
  pidReads = 0;
  pidMs = 0;
  devReads = 0;
  devMs = 0;
  override read(file: string): string | undefined {
    this.count++;
    const pid = PID_CGROUP.test(file);
    if (!pid && !DEVICES_LIST.test(file)) return super.read(file);
    const t0 = performance.now();
    try {
      return super.read(file);
    } finally {
      const ms = performance.now() - t0;
      if (pid) {
        this.pidReads++;
        this.pidMs += ms;
      } else {
        this.devReads++;
        this.devMs += ms;
      }
    }
  }
}

interface SetRow {
  name: string;
  setup: GatherSetup;
  reader: CountingReader;
  ms: number[];
  /** Per pass: ms spent reading the kind's files, /proc/<pid>/cgroup and devices.list. */
  pidMs: number[];
  devMs: number[];
  pidReads: number;
  devReads: number;
  reads: number;
  series: number;
  accSeries: { container: number; machine: number; self: number };
  bytes: number;
  attributions: string;
}

function seriesOf(body: Buffer): { all: number; container: number; machine: number; self: number } {
  const lines = body
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
  return {
    all: lines.length,
    container: lines.filter((l) => l.startsWith('container_accelerator_')).length,
    machine: lines.filter((l) => l.startsWith('machine_accelerator_')).length,
    self: lines.filter((l) => l.startsWith('podvisor_accelerator_')).length,
  };
}

function accOptions(nvmlLibrary: string, podResourcesSocket: string): AcceleratorOptions {
  return { nvmlLibrary, intervalMs: NEVER_MS, timeoutMs: 5_000, podResourcesSocket, podResourcesIntervalMs: 60_000, podResourcesTimeoutMs: 5_000 };
}

/** Gathers until `ready` holds (the background polls answered), at most 30 s. */
async function waitReady(setup: GatherSetup, ready: (s: Snapshot) => boolean, what: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const snap = await setup.gatherer.gather();
    if (ready(snap)) return;
    if (Date.now() > until) throw new Error(`${what}: not ready after 30 s (status ${JSON.stringify(snap.acceleratorStatus)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- children: parts 2 and 3 ----

interface PollResult {
  firstMs: number;
  firstCpuMs: number;
  wallMs: number[];
  cpuMs: number[];
  devices: number;
  processes: number;
  samples: number;
}

/** The binding (and koffi) loaded as podvisor loads it: only in a process that polls NVML. */
async function loadLibrary(lib: string): Promise<ReturnType<typeof import('../src/gpu/nvml/library.js').loadNvml>> {
  const { loadNvml } = await import('../src/gpu/nvml/library.js');
  return loadNvml(lib, { timeoutMs: 5_000 });
}

async function childPoll(lib: string, polls: number): Promise<PollResult> {
  const library = await loadLibrary(lib);
  const sampler = new NvmlSampler({ library, intervalMs: NEVER_MS, log: silentLogger });
  const timed = async (): Promise<[number, number]> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sampler.poll();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return [wall, (c.user + c.system) / 1000];
  };
  const [firstMs, firstCpuMs] = await timed();
  const s = sampler.current();
  if (s === undefined) throw new Error('the first NVML poll failed');
  const wallMs: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < polls; i++) {
    const [w, c] = await timed();
    wallMs.push(w);
    cpuMs.push(c);
  }
  const last = sampler.current();
  await sampler.close();
  return {
    firstMs,
    firstCpuMs,
    wallMs,
    cpuMs,
    devices: last?.devices.length ?? 0,
    processes: (last?.devices ?? []).reduce((n, d) => n + (d.processes?.length ?? 0), 0),
    samples: (last?.devices ?? []).reduce((n, d) => n + (d.processUtilization?.length ?? 0), 0),
  };
}

interface CallsResult {
  first: number;
  steady: number;
  perFunction: Record<string, number>;
}

/** Native calls per poll, from the fake's log (set through FAKE_NVML_LOG in the environment). */
async function childCalls(lib: string, logFile: string): Promise<CallsResult> {
  const library = await loadLibrary(lib);
  const sampler = new NvmlSampler({ library, intervalMs: NEVER_MS, log: silentLogger });
  await sampler.poll();
  const first = readNvmlLog(logFile).length;
  await sampler.poll();
  const lines = readNvmlLog(logFile).slice(first);
  await sampler.close();
  const perFunction: Record<string, number> = {};
  for (const [fn = '?'] of lines) perFunction[fn] = (perFunction[fn] ?? 0) + 1;
  return { first, steady: lines.length, perFunction };
}

interface RssResult {
  rssMiB: number;
  hwmMiB: number;
  heapMiB: number;
  externalMiB: number;
}

function statusMiB(key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

async function childRss(on: boolean, lib: string): Promise<RssResult> {
  const layout = loadLayout('/');
  const parsed = parseArgs([], {});
  if (parsed.kind !== 'run') throw new Error('unexpected');
  const kinds: MetricKind[] = DEFAULT_KINDS.filter((k) => on || k !== 'accelerator');
  const setup = createGatherer(
    {
      layout,
      rootfs: '/',
      allowPrefixes: [],
      machineInfoIntervalMs: 1e12,
      runtimes: parsed.config.runtimes,
      kinds,
      ...(on ? { accelerator: { ...accOptions(lib, ''), intervalMs: INTERVAL_MS } } : {}),
    },
    silentLogger,
  );
  if (on) await waitReady(setup, (s) => (s.accelerators?.length ?? 0) === GPUS, 'rss child');
  for (let i = 0; i < RSS_GATHERS; i++) assemble([encodeFamilies(renderSnapshot(await setup.gatherer.gather()))], 'text');
  // Two full collections first (the child runs with --expose-gc): what the process holds, not where the last gather's
  // garbage happened to be.
  gc?.();
  gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const mem = process.memoryUsage();
  const out = { rssMiB: statusMiB('VmRSS'), hwmMiB: statusMiB('VmHWM'), heapMiB: mem.heapUsed / 2 ** 20, externalMiB: mem.external / 2 ** 20 };
  await setup.close();
  return out;
}

/** Runs this file as a child in `mode`; its last stdout line is the JSON answer. */
function child<T>(mode: string, args: Record<string, unknown>, env: Record<string, string>): T {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import=tsx', SELF], {
    env: { ...process.env, ...env, BENCH_ACCELERATOR_CHILD: JSON.stringify({ mode, ...args }) },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`child ${mode} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T; // our own child's answer, not external data
}

/** What `import('koffi')` adds to a bare node's RSS (median of 5 fresh processes). */
function koffiImportMiB(): number {
  const script =
    "const f=()=>Number(/^VmRSS:\\s+(\\d+)/m.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1])/1024;const a=f();require('koffi');console.log(f()-a)";
  const xs = Array.from({ length: 5 }, () =>
    Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: path.dirname(path.dirname(SELF)) })),
  );
  return median(xs);
}

// ---- the report ----

const fmt = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const signed = (n: number): string => `${n >= 0 ? '+' : ''}${n}`;
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Bar {
  label: string;
  value: number;
  tick?: number;
  /** Text after the value. */
  note?: string;
}

/** Horizontal bar groups, each on its own scale (hand-written SVG, as the other results' charts). */
function chart(title: string, groups: readonly { title: string; unit: string; bars: readonly Bar[] }[]): string {
  const W = 820;
  const LABEL = 300;
  const BAR = 330;
  const ROW = 24;
  const out: string[] = [`<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`];
  let y = 36;
  for (const g of groups) {
    out.push(`<text x="10" y="${y + 14}" font-size="13" font-weight="bold">${esc(g.title)}</text>`);
    y += 22;
    const max = Math.max(...g.bars.map((b) => Math.max(b.value, b.tick ?? 0)), 1e-9);
    for (const b of g.bars) {
      const w = Math.max(1, (b.value / max) * BAR);
      out.push(`<text x="20" y="${y + 15}" font-size="12">${esc(b.label)}</text>`);
      out.push(`<rect x="${LABEL}" y="${y + 3}" width="${w.toFixed(1)}" height="16" fill="#4e79a7"/>`);
      if (b.tick !== undefined) {
        const tx = LABEL + (b.tick / max) * BAR;
        out.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${y + 1}" y2="${y + 21}" stroke="#e15759" stroke-width="2"/>`);
      }
      const label = `${fmt(b.value, b.value < 10 ? 2 : 1)} ${g.unit}${b.tick === undefined ? '' : `, p90 ${fmt(b.tick, b.tick < 10 ? 2 : 1)}`}${b.note ?? ''}`;
      out.push(
        `<text x="${(LABEL + Math.max(w, b.tick === undefined ? 0 : ((b.tick ?? 0) / max) * BAR) + 6).toFixed(1)}" y="${y + 15}" font-size="12">${esc(label)}</text>`,
      );
      y += ROW;
    }
    y += 10;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" font-family="sans-serif">\n${out.join('\n')}\n</svg>\n`;
}

// ---- main ----

async function main(): Promise<void> {
  const passes = Number(process.argv[2] ?? 21);
  const out = process.argv[3];
  if (!Number.isInteger(passes) || passes < 1) throw new Error(`passes must be a positive integer, got ${process.argv[2]}`);
  const loadStart = os.loadavg().map((l) => l.toFixed(2));
  const { path: lib } = buildFakeNvml();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-accelerator-bench-'));
  const scenarioFile = path.join(dir, 'scenario');
  const sleepers: ChildProcess[] = [];
  const killSleepers = (): void => {
    for (const c of sleepers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    killSleepers();
    fs.rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, sig);
  };
  process.once('exit', killSleepers);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rows: SetRow[] = [];
  let podResources: FakePodResources | undefined;
  let closing = false;
  try {
    for (let i = 0; i < PROCESSES; i++) sleepers.push(spawn('sleep', ['3600'], { stdio: 'ignore' }));
    const sleeperPids = sleepers.map((c) => c.pid).filter((p): p is number => p !== undefined);
    if (sleeperPids.length !== PROCESSES) throw new Error('could not start the sleep children');
    const containers = benchContainers();
    const layout = loadLayout('/');
    const cgroups = listCgroups(layout, []).length;
    const parsed = parseArgs([], {});
    if (parsed.kind !== 'run') throw new Error('unexpected');
    const runtimes = parsed.config.runtimes;
    const offKinds: MetricKind[] = DEFAULT_KINDS.filter((k) => k !== 'accelerator');
    const base = { layout, rootfs: '/', allowPrefixes: [], machineInfoIntervalMs: 1e12, runtimes };
    const addSet = async (name: string, build: (reader: CountingReader) => GatherSetup, ready?: (s: Snapshot) => boolean): Promise<void> => {
      const reader = new CountingReader();
      const setup = build(reader);
      if (ready === undefined) await setup.gatherer.gather();
      else await waitReady(setup, ready, name);
      rows.push({
        name,
        setup,
        reader,
        ms: [],
        pidMs: [],
        devMs: [],
        pidReads: 0,
        devReads: 0,
        reads: 0,
        series: 0,
        accSeries: { container: 0, machine: 0, self: 0 },
        bytes: 0,
        attributions: '',
      });
    };
    process.env.FAKE_NVML_SCENARIO = scenarioFile;
    await addSet('off (no NVML)', (reader) => createGatherer({ ...base, kinds: offKinds }, silentLogger, { reader }));
    // Each accelerator set polls NVML once, at start, while its scenario is the file's: the scenario of the next set is
    // written only once the previous set's poll is in.
    writeScenario(scenarioFile, scenario(sleeperPids));
    await addSet(
      `on: ${PROCESSES} processes outside containers`,
      (reader) => createGatherer({ ...base, kinds: [...DEFAULT_KINDS], accelerator: accOptions(lib, '') }, silentLogger, { reader }),
      (s) => (s.accelerators?.length ?? 0) === GPUS,
    );
    const inContainers = containers.slice(0, PROCESSES);
    if (inContainers.length > 0) {
      const pids = [...inContainers.map((c) => c.pid), ...sleeperPids.slice(inContainers.length)];
      writeScenario(scenarioFile, scenario(pids));
      await addSet(
        `on: ${PROCESSES} processes, ${inContainers.length} in containers`,
        (reader) => createGatherer({ ...base, kinds: [...DEFAULT_KINDS], accelerator: accOptions(lib, '') }, silentLogger, { reader }),
        (s) => (s.accelerators?.length ?? 0) === GPUS && (s.acceleratorStatus?.attributions.process ?? 0) > 0,
      );
      const pods: FakePod[] = inContainers.map((c, k) => ({
        namespace: c.namespace,
        name: c.pod,
        containers: [{ name: c.container, devices: [{ resourceName: 'nvidia.com/gpu', ids: [`${gpuUuid(k % GPUS)}::${Math.floor(k / GPUS)}`] }] }],
      }));
      podResources = await FakePodResources.start(socketPath('accbench'), pods);
      const socket = podResources.path;
      await addSet(
        `on: the same + PodResources for those ${inContainers.length}`,
        (reader) => createGatherer({ ...base, kinds: [...DEFAULT_KINDS], accelerator: accOptions(lib, socket) }, silentLogger, { reader }),
        (s) => (s.accelerators?.length ?? 0) === GPUS && (s.acceleratorStatus?.attributions.pod_resources ?? 0) > 0,
      );
    }
    process.stderr.write(`node: ${cgroups} cgroups, ${containers.length} bench containers; ${passes} passes × ${rows.length} sets\n`);

    // Part 1: interleaved passes, each starting with the next set.
    for (let i = 0; i < passes; i++) {
      for (const r of [...rows.slice(i % rows.length), ...rows.slice(0, i % rows.length)]) {
        r.reader.count = 0;
        r.reader.pidReads = 0;
        r.reader.pidMs = 0;
        r.reader.devReads = 0;
        r.reader.devMs = 0;
        const t0 = performance.now();
        const snap = await r.setup.gatherer.gather();
        const body = assemble([encodeFamilies(renderSnapshot(snap))], 'text');
        r.ms.push(performance.now() - t0);
        r.reads = r.reader.count;
        r.pidReads = r.reader.pidReads;
        r.devReads = r.reader.devReads;
        r.pidMs.push(r.reader.pidMs);
        r.devMs.push(r.reader.devMs);
        const s = seriesOf(body);
        r.series = s.all;
        r.accSeries = { container: s.container, machine: s.machine, self: s.self };
        r.bytes = body.length;
        const a = snap.acceleratorStatus?.attributions;
        r.attributions = a === undefined ? '–' : `${a.pod_resources} / ${a.process} / ${a.devices_list}`;
      }
    }
    closing = true;
    await Promise.all(rows.map((r) => r.setup.close()));
    await podResources?.stop();
    podResources = undefined;

    // Part 2: the NVML poll, in children of its own (the scenario with the processes outside containers).
    writeScenario(scenarioFile, scenario(sleeperPids));
    process.stderr.write(`part 2: ${POLLS} NVML polls\n`);
    const poll = child<PollResult>('poll', { lib, polls: POLLS }, fakeNvmlEnv(scenarioFile));
    const logFile = path.join(dir, 'calls.log');
    const calls = child<CallsResult>('calls', { lib, logFile }, fakeNvmlEnv(scenarioFile, logFile));

    // Part 3: RSS, children interleaved off / on.
    process.stderr.write(`part 3: RSS, ${RSS_ROUNDS} rounds\n`);
    const rss: Record<'off' | 'on', RssResult[]> = { off: [], on: [] };
    for (let round = 0; round < RSS_ROUNDS; round++) {
      for (const which of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        rss[which].push(child<RssResult>('rss', { lib, on: which === 'on' }, fakeNvmlEnv(scenarioFile)));
      }
    }
    const koffiMiB = koffiImportMiB();

    // Report.
    const date = new Date().toISOString().slice(0, 10);
    const base0 = rows[0];
    if (base0 === undefined) throw new Error('no rows');
    const p50 = (r: SetRow): number => median(r.ms);
    const p90 = (r: SetRow): number => percentile(r.ms, 0.9);
    /** Per pass: this set's time / the off set's in the same pass (adjacent in time). */
    const paired = (r: SetRow): number => median(r.ms.map((m, i) => m / (base0.ms[i] ?? NaN)));
    const pollWall = median(poll.wallMs);
    const pollCpu = median(poll.cpuMs);
    const pollCpuMean = poll.cpuMs.reduce((a, b) => a + b, 0) / poll.cpuMs.length;
    const rssMed = (w: 'off' | 'on', k: keyof RssResult): number => median(rss[w].map((x) => x[k]));
    const spread = (w: 'off' | 'on', k: keyof RssResult): string => {
      const xs = rss[w].map((x) => x[k]);
      return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
    };
    const running = containers.length;
    const load = os.loadavg().map((l) => l.toFixed(2));
    const lines = [
      `# The accelerator kind: what it costs (${date})`,
      '',
      `Node: ${os.hostname()}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()}, cgroup ${layout.mode}, ` +
        `${cgroups} cgroups (${running} podvisor-bench containers running${running === 0 ? ': none, so nothing can be attributed to a container and the sets with processes in containers are left out' : ''}); ` +
        `load average (1, 5, 15 min) at the start ${loadStart.join(' ')}, at the end ${load.join(' ')}. Fake NVML (test/support/fake-nvml): ${GPUS} GPUs (H100-shaped, MIG off), ${PROCESSES} processes ` +
        `round robin over them, each with memory and an SM sample every poll. Command: \`node --import=tsx bench/accelerator-cost.ts ${passes}${out === undefined ? '' : ` ${out}`}\`.`,
      '',
      '## 1. A gather with the kind on and off',
      '',
      `In-process gathers (createGatherer as main wires it; gather + render + encode), ${passes} passes per set, interleaved (each pass ` +
        'starting with the next set); runtimes on (Docker and containerd, default sockets), disk walks off (their cost does not depend on the kind). "off" is what a node without NVML runs (the kind dropped); ' +
        `"on" is the same plus the kind, with the NVML sample taken once at start (the poll is part 2) and PodResources polled every 60 s. ` +
        `The ${PROCESSES} processes of "outside containers" are this bench's own \`sleep\` children: attribution reads each one's /proc/<pid>/cgroup ` +
        'and finds no container, then reads devices.list of every runtime container (the cgroup v1 fallback, for containers nothing else ' +
        'placed). "In containers" (only with bench containers up) scripts the processes as the first bench containers\' own (their main ' +
        'pids; sleep children make up the rest); "+ PodResources" adds a fake kubelet PodResources API giving each of those containers ' +
        'its GPU as a time-slicing replica (`<uuid>::<k>`; the first source wins, so those pairs count as pod_resources). The ratios are to ' +
        '"off": of the medians, of the p90s, and the median of per-pass ratios (within a pass the sets\' gathers are adjacent in time, so ' +
        'drift on this shared machine cancels); "attributions" and the reads are per gather and exact.',
      '',
      '| set | files read per gather | of which /proc/<pid>/cgroup (p50 ms reading them) | devices.list (p50 ms) | series | accelerator series (container / machine / podvisor) | body bytes | attributions (pod_resources / process / devices_list) | p50 ms | p90 ms | p50 ratio | p90 ratio | per-pass ratio (median) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${r.reads} (${signed(r.reads - base0.reads)}) | ${r.pidReads} (${fmt(median(r.pidMs), 2)} ms) | ${r.devReads} (${fmt(median(r.devMs), 2)} ms) | ${r.series} (${signed(r.series - base0.series)}) | ${r.accSeries.container} / ${r.accSeries.machine} / ${r.accSeries.self} | ` +
          `${r.bytes} (${signed(r.bytes - base0.bytes)}) | ${r.attributions} | ${fmt(p50(r))} | ${fmt(p90(r))} | ${fmt(p50(r) / p50(base0), 3)}× | ` +
          `${fmt(p90(r) / p90(base0), 3)}× | ${fmt(paired(r), 3)}× |`,
      ),
      '',
      '## 2. One NVML poll (in the background, every --accelerator-interval)',
      '',
      `NvmlSampler.poll() timed directly in a child process (nothing else running in it), ${POLLS} polls after the first; CPU is the process's ` +
        "(user + system, every thread: the libuv pool thread that runs each native call included). Calls counted from the fake's call log " +
        "(FAKE_NVML_LOG) in another child, so the log's file appends are not in the times. The fake answers from memory; a real driver " +
        "call takes longer in wall time, mostly not podvisor's CPU, so the CPU here is podvisor's own overhead per call.",
      '',
      '| | value |',
      '|---|---|',
      `| devices / processes / SM samples in a poll | ${poll.devices} / ${poll.processes} / ${poll.samples} |`,
      `| native NVML calls, first poll (init, identities) | ${calls.first} |`,
      `| native NVML calls per poll after that | ${calls.steady} |`,
      `| first poll: wall / CPU ms | ${fmt(poll.firstMs, 2)} / ${fmt(poll.firstCpuMs, 2)} |`,
      `| poll wall ms: p50 / p90 / max | ${fmt(pollWall, 2)} / ${fmt(percentile(poll.wallMs, 0.9), 2)} / ${fmt(Math.max(...poll.wallMs), 2)} |`,
      `| poll CPU ms: p50 / p90 / mean | ${fmt(pollCpu, 2)} / ${fmt(percentile(poll.cpuMs, 0.9), 2)} / ${fmt(pollCpuMean, 2)} |`,
      `| µs of CPU per native call (p50 / mean) | ${fmt((pollCpu * 1000) / calls.steady, 1)} / ${fmt((pollCpuMean * 1000) / calls.steady, 1)} |`,
      `| background CPU at --accelerator-interval=${INTERVAL_MS / 1000}s (mean), % of one core | ${fmt((pollCpuMean / INTERVAL_MS) * 100, 3)} % |`,
      '',
      `Calls per steady poll by function: ${Object.entries(calls.perFunction)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .map(([fn, n]) => `${fn} ${n}`)
        .join(', ')}.`,
      '',
      '## 3. RSS',
      '',
      `A child process per measure that builds the gatherer (default kinds, without or with the kind: koffi's dlopen of the library, ` +
        `the declarations, the sampler polling every ${INTERVAL_MS / 1000} s) and gathers ${RSS_GATHERS} times (the "on" child first waits ` +
        `for the first poll), then runs two full GCs (--expose-gc) and reads /proc/self/status (VmHWM: the peak before that); ` +
        `${RSS_ROUNDS} children each, interleaved; medians. Both run under tsx (the same loader in both).`,
      '',
      '| median (min–max) | off | on | on − off (medians) |',
      '|---|---|---|---|',
      ...(
        [
          ['VmRSS MiB', 'rssMiB'],
          ['VmHWM MiB', 'hwmMiB'],
          ['V8 heap used MiB', 'heapMiB'],
          ['external (Buffers) MiB', 'externalMiB'],
        ] as const
      ).map(([label, k]) => `| ${label} | ${spread('off', k)} | ${spread('on', k)} | ${fmt(rssMed('on', k) - rssMed('off', k))} |`),
      '',
      `koffi (and the binding) are imported only where the kind is on and NVML was found (src/main.ts and src/gather/setup.ts import them dynamically), so "off" has none of it: \`require('koffi')\` ` +
        `adds ${fmt(koffiMiB)} MiB to a bare node's RSS (median of 5 processes), part of the "on" column's difference.`,
      '',
    ];
    const svgName = out === undefined ? undefined : out.replace(/\.md$/, '') + '.svg';
    if (svgName !== undefined) lines.push(`![accelerator kind cost](${path.basename(svgName)})`, '');
    const md = lines.join('\n');
    process.stdout.write(md + '\n');
    if (out !== undefined && svgName !== undefined) {
      fs.writeFileSync(out, md);
      fs.writeFileSync(
        svgName,
        chart(`The accelerator kind: ${GPUS} GPUs, ${PROCESSES} processes, ${cgroups} cgroups`, [
          {
            title: 'gather + render p50 (bar) and p90 (tick), ms; per-pass ratio to off',
            unit: 'ms',
            bars: rows.map((r) => ({ label: r.name, value: p50(r), tick: p90(r), note: `; ${fmt(paired(r), 3)}×` })),
          },
          {
            title: `one NVML poll, ${calls.steady} calls (p50)`,
            unit: 'ms',
            bars: [
              { label: 'wall', value: pollWall, tick: percentile(poll.wallMs, 0.9) },
              { label: 'CPU', value: pollCpu, tick: percentile(poll.cpuMs, 0.9) },
            ],
          },
          {
            title: 'RSS after gathers (median), MiB',
            unit: 'MiB',
            bars: [
              { label: 'accelerator off', value: rssMed('off', 'rssMiB') },
              { label: 'accelerator on', value: rssMed('on', 'rssMiB') },
            ],
          },
        ]),
      );
    }
  } finally {
    await podResources?.stop();
    if (!closing) await Promise.all(rows.map((r) => r.setup.close().catch(() => undefined)));
    killSleepers();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const childSpec = process.env.BENCH_ACCELERATOR_CHILD;
if (childSpec === undefined) {
  await main();
} else {
  const spec = JSON.parse(childSpec) as { mode: string; lib: string; polls?: number; logFile?: string; on?: boolean };
  const result =
    spec.mode === 'poll'
      ? await childPoll(spec.lib, spec.polls ?? POLLS)
      : spec.mode === 'calls'
        ? await childCalls(spec.lib, spec.logFile ?? '')
        : await childRss(spec.on === true, spec.lib);
  process.stdout.write(JSON.stringify(result) + '\n');
  // The sampler and runtimes are closed; nothing should hold the loop, but an NVML thread must not keep us up either.
  process.exit(0);
}
