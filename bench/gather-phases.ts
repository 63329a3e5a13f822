/**
 * Where a gather's time goes, in-process on this node, against the native C reader's floor
 * (bench/native-reader.sh reads the same per-cgroup v1 files without parsing).
 *
 *   node --import=tsx bench/gather-phases.ts [passes=20]
 */
import { Gatherer } from '../src/gather/gatherer.js';
import { loadLayout } from '../src/cgroup/layout.js';
import { renderSnapshot } from '../src/metrics/index.js';
import { listCgroups } from '../src/cgroup/discover.js';
import { readCgroupStats } from '../src/cgroup/read.js';
import { probeBlkioGroups } from '../src/cgroup/v1.js';
import { encodeFamilies } from '../src/metrics/exposition.js';
import { FileReader } from '../src/host/file-reader.js';
import { silentLogger } from '../src/log.js';
import { ThreadReadAhead } from '../src/gather/read-ahead.js';

const passes = Number(process.argv[2] ?? 20);
const layout = loadLayout('/');
const g = new Gatherer(layout, {
  rootfs: '/',
  allowPrefixes: [],
  machineInfoIntervalMs: 1e12,
  log: silentLogger,
  ...(process.env.SLICE ? { sliceMs: Number(process.env.SLICE) } : {}),
  ...(process.env.THREADS === '2'
    ? { readAhead: new ThreadReadAhead({ workerUrl: new URL('../test/support/ts-read-ahead-worker.mjs', import.meta.url) }) }
    : {}),
});
await g.gather();
const reader = new FileReader();
const ctx = { layout, read: (f: string) => reader.read(f), onError() {}, readMeminfo: () => undefined };
const blkioGroups = probeBlkioGroups(ctx);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const rows: Record<string, number[]> = { walk: [], 'cgroup files (read + parse)': [], 'whole gather': [], 'render + encode': [] };
let cgroups = 0;
for (let i = 0; i < passes; i++) {
  const t0 = performance.now();
  const paths = listCgroups(layout, []);
  const t1 = performance.now();
  for (const p of paths) readCgroupStats(blkioGroups === undefined ? ctx : { ...ctx, blkioGroups }, p);
  const t2 = performance.now();
  const snap = await g.gather();
  const t3 = performance.now();
  encodeFamilies(renderSnapshot(snap));
  const t4 = performance.now();
  rows['walk']?.push(t1 - t0);
  rows['cgroup files (read + parse)']?.push(t2 - t1);
  rows['whole gather']?.push(t3 - t2);
  rows['render + encode']?.push(t4 - t3);
  cgroups = paths.length;
}
console.log(`| phase (${cgroups} cgroups, median of ${passes}) | ms |`);
console.log('|---|---|');
for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${median(v).toFixed(1)} |`);
