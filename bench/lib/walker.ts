/**
 * podvisor's disk-usage walker on the bench containers' own writable layers (the Docker upper dirs podvisor walks;
 * containerd's are measured by containerd's Snapshots/Usage, not walked):
 *
 *   throughput  `du -s -B1 -x` vs walk() (dist/disk/walker.js, default options as the scheduler calls it) over the same
 *               dirs, one stream (du over all dirs; walk one dir after the other) and two streams (two du processes on
 *               halves; two walks at a time, as --disk-walk-concurrency=2); warm cache, interleaved runs
 *   latency     sequential /metrics scrapes, whole node: podvisor --no-disk-usage vs --disk-usage-interval=5s
 *               --disk-walk-concurrency=2 (window opened once a first walk finished), as bench/walk-latency-bench.ts
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pool, run } from './exec.js';
import { metric, PODVISOR_MAIN, scrape, startPodvisor, stopExporter } from './exporter.js';
import { cpuTotal, loadavg, machineBusyPct, machineJiffies } from './proc.js';
import type { WalkResult } from '../../src/disk/walker.js';

type WalkFn = (root: string) => Promise<WalkResult>;

async function loadWalk(): Promise<WalkFn> {
  const mod = (await import(pathToFileURL(path.join(path.dirname(PODVISOR_MAIN), 'disk/walker.js')).href)) as typeof import('../../src/disk/walker.js');
  return (root) => mod.walk(root);
}

export interface ThroughputResult {
  dirs: number;
  entries: number;
  duBytes: number;
  walkBytes: number;
  runs: Record<'du1' | 'walk1' | 'du2' | 'walk2', number[]>;
}

/** The upper dirs of the given Docker containers. */
export async function upperDirs(names: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < names.length; i += 100) {
    const { stdout } = await run('docker', ['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', ...names.slice(i, i + 100)], { timeoutMs: 120_000 });
    out.push(...stdout.split('\n').filter((l) => l.startsWith('/')));
  }
  return out;
}

async function du(dirs: readonly string[]): Promise<number> {
  const { stdout } = await run('du', ['-s', '-B1', '-x', ...dirs], { timeoutMs: 1_800_000 });
  return stdout.split('\n').reduce((sum, l) => sum + (Number(l.split('\t')[0]) || 0), 0);
}

export async function throughput(dirs: readonly string[], runs: number, log: (s: string) => void): Promise<ThroughputResult> {
  const walk = await loadWalk();
  const halves = [dirs.filter((_, i) => i % 2 === 0), dirs.filter((_, i) => i % 2 === 1)].filter((h) => h.length > 0);
  const variants = {
    du1: async () => ({ bytes: await du(dirs), entries: NaN }),
    walk1: async () => {
      let bytes = 0;
      let entries = 0;
      for (const d of dirs) {
        const r = await walk(d);
        bytes += r.bytes;
        entries += r.inodes;
      }
      return { bytes, entries };
    },
    du2: async () => ({ bytes: (await Promise.all(halves.map(du))).reduce((a, b) => a + b, 0), entries: NaN }),
    walk2: async () => {
      let bytes = 0;
      let entries = 0;
      await pool(dirs, 2, async (d) => {
        const r = await walk(d);
        bytes += r.bytes;
        entries += r.inodes;
      });
      return { bytes, entries };
    },
  };
  const result: ThroughputResult = { dirs: dirs.length, entries: 0, duBytes: 0, walkBytes: 0, runs: { du1: [], walk1: [], du2: [], walk2: [] } };
  for (const v of Object.values(variants)) await v(); // warm the dentry and inode caches
  for (let r = 0; r < runs; r++) {
    for (const [name, f] of Object.entries(variants) as [keyof typeof variants, () => Promise<{ bytes: number; entries: number }>][]) {
      const t0 = performance.now();
      const x = await f();
      result.runs[name].push(performance.now() - t0);
      if (name === 'du1') result.duBytes = x.bytes;
      if (name === 'walk1') {
        result.walkBytes = x.bytes;
        result.entries = x.entries;
      }
    }
    log(`walker throughput run ${r + 1}/${runs}`);
  }
  return result;
}

export interface LatencyPhase {
  name: string;
  flags: string[];
  ms: number[];
  windowS: number;
  cpuPct: number;
  machineBusyPct: number;
  loadBefore: string;
  loadAfter: string;
  walks?: number;
  walkFiles?: number;
  non200: number;
}

const walksOk = (body: string): number => metric(body, 'podvisor_disk_walks_total{result="ok"}');

async function latencyPhase(name: string, flags: string[], minScrapes: number, minSeconds: number): Promise<LatencyPhase> {
  const e = await startPodvisor(flags);
  try {
    let last = await scrape(e.url);
    last = await scrape(e.url);
    if (!flags.includes('--no-disk-usage')) {
      const gate = performance.now() + 300_000;
      while (walksOk(last.body) < 1) {
        if (performance.now() > gate) throw new Error('latency under walks: no disk walk finished within 300 s');
        await new Promise((r) => setTimeout(r, 500));
        last = await scrape(e.url);
      }
    }
    const before = last.body;
    const loadBefore = loadavg();
    const c0 = cpuTotal(e.pid);
    const j0 = machineJiffies();
    const w0 = performance.now();
    const ms: number[] = [];
    let non200 = 0;
    for (let i = 0; i < minScrapes || performance.now() - w0 < minSeconds * 1000; i++) {
      last = await scrape(e.url);
      ms.push(last.ms);
      if (last.status !== 200) non200++;
    }
    const windowS = (performance.now() - w0) / 1000;
    const phase: LatencyPhase = {
      name,
      flags,
      ms,
      windowS,
      cpuPct: ((cpuTotal(e.pid) - c0) / windowS) * 100,
      machineBusyPct: machineBusyPct(j0, machineJiffies()),
      loadBefore,
      loadAfter: loadavg(),
      non200,
    };
    if (!flags.includes('--no-disk-usage')) {
      phase.walks = walksOk(last.body) - walksOk(before);
      phase.walkFiles = metric(last.body, 'podvisor_disk_walk_files_total') - metric(before, 'podvisor_disk_walk_files_total');
    }
    return phase;
  } finally {
    await stopExporter(e);
  }
}

/** Scrape latency without disk usage, then with walkers busy (interval 5 s, 2 at a time). */
export async function latencyUnderWalks(minScrapes: number, minSeconds: number, log: (s: string) => void): Promise<LatencyPhase[]> {
  log(`scrape latency without disk usage (≥ ${minScrapes} scrapes, ≥ ${minSeconds} s)`);
  const idle = await latencyPhase('no disk usage (--no-disk-usage)', ['--no-disk-usage'], minScrapes, minSeconds);
  log('scrape latency with walkers busy (--disk-usage-interval=5s --disk-walk-concurrency=2)');
  const walks = await latencyPhase(
    'walkers busy (--disk-usage-interval=5s --disk-walk-concurrency=2)',
    ['--disk-usage-interval=5s', '--disk-walk-concurrency=2'],
    minScrapes,
    minSeconds,
  );
  return [idle, walks];
}
