/**
 * What each metric kind costs on this node, in-process: for the default set (the kubelet's) and for the default set
 * plus each opt-in kind, one gather's file reads (a counting FileReader: cgroup and /proc files), the series and body
 * bytes it renders, and the median gather + render time over N passes (interleaved, each pass starting with the next
 * set, so drift hits every set alike). The reads and series are exact; the times are this node's, read as ratios.
 * Runtimes on (Docker and containerd, default sockets), disk walks off (their cost does not depend on the kinds).
 *
 *   node --import=tsx bench/kind-costs.ts [passes=15] [out.md]
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadLayout } from '../src/cgroup/layout.js';
import { createGatherer, type GatherSetup } from '../src/gather/setup.js';
import { FileReader } from '../src/host/file-reader.js';
import { silentLogger } from '../src/log.js';
import { DEFAULT_KINDS, METRIC_KINDS, type MetricKind } from '../src/model/kinds.js';
import { assemble, encodeFamilies } from '../src/metrics/exposition.js';
import { renderSnapshot } from '../src/metrics/index.js';
import { parseArgs } from '../src/config.js';

class CountingReader extends FileReader {
  count = 0;
  override read(file: string): string | undefined {
    this.count++;
    return super.read(file);
  }
}

const passes = Number(process.argv[2] ?? 15);
const out = process.argv[3];
const layout = loadLayout('/');
const parsed = parseArgs([], {});
if (parsed.kind !== 'run') throw new Error('unexpected');
const runtimes = parsed.config.runtimes;

const optIn = METRIC_KINDS.filter((k) => !DEFAULT_KINDS.includes(k));
const sets: { name: string; kinds: MetricKind[] }[] = [
  { name: 'default (kubelet)', kinds: [...DEFAULT_KINDS] },
  ...optIn.map((k) => ({ name: `+${k}`, kinds: [...DEFAULT_KINDS, k] })),
  { name: 'every kind', kinds: [...METRIC_KINDS] },
];

interface Row {
  name: string;
  setup: GatherSetup;
  reader: CountingReader;
  reads: number;
  series: number;
  bytes: number;
  ms: number[];
}
const rows: Row[] = [];
for (const s of sets) {
  const reader = new CountingReader();
  const setup = createGatherer({ layout, rootfs: '/', allowPrefixes: [], machineInfoIntervalMs: 1e12, runtimes, kinds: s.kinds }, silentLogger, { reader });
  await setup.gatherer.gather(); // the runtimes' first lists, start times, caches
  rows.push({ name: s.name, setup, reader, reads: 0, series: 0, bytes: 0, ms: [] });
}
for (let i = 0; i < passes; i++) {
  // Each pass starts with another set, so no set is always first (or right after the same one).
  for (const r of [...rows.slice(i % rows.length), ...rows.slice(0, i % rows.length)]) {
    r.reader.count = 0;
    const t0 = performance.now();
    const snap = await r.setup.gatherer.gather();
    const body = assemble([encodeFamilies(renderSnapshot(snap))], 'text');
    r.ms.push(performance.now() - t0);
    r.reads = r.reader.count;
    const text = body.toString('utf8');
    r.series = text.split('\n').filter((l) => l.startsWith('container_')).length;
    r.bytes = body.length;
  }
}
await Promise.all(rows.map((r) => r.setup.close()));

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const base = rows[0];
if (base === undefined) throw new Error('no rows');
const cgroups = (await import('../src/cgroup/discover.js')).listCgroups(layout, []).length;
const lines = [
  `# Metric kinds: what each costs (${new Date().toISOString().slice(0, 10)})`,
  '',
  `Node: ${os.hostname()}, ${os.cpus().length} CPUs, kernel ${os.release()}, ${cgroups} cgroups, cgroup ${layout.mode}. ` +
    `In-process gathers (gather + render + encode), ${passes} passes per set, interleaved (each pass starting with the next set); runtimes on, disk walks off. ` +
    'Command: `node --import=tsx bench/kind-costs.ts ' +
    `${passes}\`.`,
  '',
  '| kinds | files read per gather | container series | body bytes | gather + render p50 | vs default |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.reads} (${r.reads - base.reads >= 0 ? '+' : ''}${r.reads - base.reads}) | ${r.series} (${r.series - base.series >= 0 ? '+' : ''}${r.series - base.series}) | ${r.bytes} | ${median(r.ms).toFixed(1)} ms | ${(median(r.ms) / median(base.ms)).toFixed(2)}× |`,
  ),
  '',
];
const md = lines.join('\n');
process.stdout.write(md + '\n');
if (out !== undefined) fs.writeFileSync(out, md + '\n');
