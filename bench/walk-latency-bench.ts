/**
 * /metrics latency while the disk-usage walkers chew through 1M files, vs idle.
 *
 *   npm run build && node --import=tsx bench/walk-latency-bench.ts [out.md]
 *
 * Load, made the way podvisor meets it: two containers `podvisor-walkbench-{0,1}` (`podvisor-test:1`, `sleep 3600`)
 * whose overlay upper dirs (`docker inspect -f '{{.GraphDriver.Data.UpperDir}}'`) get ~500,000 entries each, a
 * copy (`cp -a`) of half of `bench/.work/tree-1m` (d0000-d0499, d0500-d0999) into `<upper>/data`. (Hard links,
 * `cp -al`, would be faster but fail with EXDEV where /var/lib/docker is a separate mount, as on the bench box.)
 *
 * Phases, each a fresh podvisor with `--raw-cgroup-prefix-allowlist=/docker` (only these containers' cgroups):
 *   1. idle:   `--no-disk-usage`; 2 warm-up scrapes, then 100 sequential scrapes.
 *   2. walks:  `--disk-usage-interval=5s --disk-walk-concurrency=2`; 1 scrape (which hands the containers to the
 *              scheduler, so walks start), then 100 sequential scrapes. A key is re-walked 5 s (±10%) after its
 *              last walk finished, so the walkers need not be busy all of the window: the report gives their busy
 *              fraction from podvisor_disk_walk_duration_seconds_sum. (A much shorter interval is no way out: the
 *              per-walk deadline is 2 × interval.)
 * Per phase: p50/p99/max latency, podvisor CPU, whole-machine CPU busy % (/proc/stat), load average, and for the
 * walk phases Δpodvisor_disk_walks_total, Δpodvisor_disk_walk_files_total and files/s over the window.
 *
 * PODVISOR_MAIN overrides the entry point (default dist/main.js), e.g. a copy of dist/ taken at build time so a
 * concurrent rebuild cannot change what is measured. The containers (and with them their upper dirs) are removed
 * and podvisor stopped on exit, also on failure or Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { metric, PODVISOR_MAIN as MAIN, REPO, scrape, startPodvisor, stopExporter, type Exporter } from './lib/exporter.js';
import { cpuTimes, machineJiffies } from './lib/proc.js';
import { percentile as pct } from './lib/stats.js';

const TREE = path.join(REPO, 'bench/.work/tree-1m');
const IMAGE = 'podvisor-test:1';
const NAMES = ['podvisor-walkbench-0', 'podvisor-walkbench-1'];
const SCRAPES = 100;

const procs = new Set<Exporter>();

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function cleanup(): void {
  for (const e of procs) if (e.proc.exitCode === null) e.proc.kill('SIGKILL');
  procs.clear();
  try {
    execFileSync('docker', ['rm', '-f', ...NAMES], { stdio: 'ignore' });
  } catch {
    // some were never created
  }
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

/** utime + stime of the whole process (all threads), in seconds. */
const cpuSeconds = (pid: number): number => cpuTimes(pid).self;

const f1 = (n: number) => n.toFixed(1);
const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function start(args: string[]): Promise<Exporter> {
  const e = await startPodvisor(args, { main: MAIN, readyTimeoutMs: 30_000 });
  procs.add(e);
  return e;
}

async function stop(e: Exporter): Promise<void> {
  await stopExporter(e);
  procs.delete(e);
}

interface Disk {
  ok: number;
  timeout: number;
  error: number;
  files: number;
  durSum: number;
  durCount: number;
}

function disk(body: string): Disk {
  return {
    ok: metric(body, 'podvisor_disk_walks_total{result="ok"}'),
    timeout: metric(body, 'podvisor_disk_walks_total{result="timeout"}'),
    error: metric(body, 'podvisor_disk_walks_total{result="error"}'),
    files: metric(body, 'podvisor_disk_walk_files_total'),
    durSum: metric(body, 'podvisor_disk_walk_duration_seconds_sum'),
    durCount: metric(body, 'podvisor_disk_walk_duration_seconds_count'),
  };
}

interface Phase {
  name: string;
  flags: string[];
  lat: number[];
  statuses: number[];
  windowS: number;
  cpuS: number;
  machineBusyPct: number;
  loadBefore: string;
  loadAfter: string;
  d0?: Disk;
  d1?: Disk;
  fsUsage: string[];
}

const WINDOW_S = 30;

async function phase(name: string, flags: string[], warmups: number): Promise<Phase> {
  const e = await start(['--raw-cgroup-prefix-allowlist=/docker', ...flags]);
  const { url, pid } = e;
  try {
    for (let i = 0; i < warmups; i++) await scrape(url);
    if (!flags.includes('--no-disk-usage')) {
      // Open the window only once walks are known to run: the first one has finished.
      const gate = performance.now() + 300_000;
      while (metric((await scrape(url)).body, 'podvisor_disk_walks_total{result="ok"}') < 1) {
        if (performance.now() > gate) throw new Error('no disk walk finished within 300 s');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const before = await scrape(url);
    const loadBefore = loadavg();
    const [b0, t0] = machineJiffies();
    const c0 = cpuSeconds(pid);
    const w0 = performance.now();
    const lat: number[] = [];
    const statuses: number[] = [];
    let last = before.body;
    // At least SCRAPES scrapes and at least WINDOW_S seconds, so several walks (5 s interval) overlap the window.
    for (let i = 0; i < SCRAPES || performance.now() - w0 < WINDOW_S * 1000; i++) {
      const s = await scrape(url);
      lat.push(s.ms);
      statuses.push(s.status);
      last = s.body;
    }
    const windowS = (performance.now() - w0) / 1000;
    const cpuS = cpuSeconds(pid) - c0;
    const [b1, t1] = machineJiffies();
    const fsUsage = last.split('\n').filter((l) => l.startsWith('container_fs_usage_bytes{') && l.includes('walkbench'));
    return {
      name,
      flags,
      lat,
      statuses,
      windowS,
      cpuS,
      machineBusyPct: ((b1 - b0) / (t1 - t0)) * 100,
      loadBefore,
      loadAfter: loadavg(),
      ...(flags.includes('--no-disk-usage') ? {} : { d0: disk(before.body), d1: disk(last) }),
      fsUsage,
    };
  } finally {
    await stop(e);
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} missing: run \`npm run build\` first`);
  if (!fs.existsSync(path.join(TREE, 'd0999'))) throw new Error(`${TREE} missing (bench/walker-bench.ts creates it)`);
  const out: string[] = [];
  const say = (s = '') => out.push(s);
  const loadStart = loadavg();

  // ---- the load: two containers, ~500k entries in each upper dir
  cleanup();
  const dirs = fs
    .readdirSync(TREE)
    .filter((d) => /^d\d{4}$/.test(d))
    .sort();
  const halves = [dirs.slice(0, dirs.length / 2), dirs.slice(dirs.length / 2)];
  const uppers: string[] = [];
  const fillMs: number[] = [];
  for (const [i, name] of NAMES.entries()) {
    docker('run', '-d', '--name', name, IMAGE, 'sleep', '3600');
    const upper = docker('inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name);
    if (!upper.startsWith('/')) throw new Error(`${name}: no upper dir (${upper})`);
    const data = path.join(upper, 'data');
    fs.mkdirSync(data);
    const t0 = performance.now();
    // Real copies: /var/lib/docker is its own mount here, so hard links (cp -al) fail with EXDEV.
    execFileSync('cp', ['-a', ...(halves[i] ?? []).map((d) => path.join(TREE, d)), data + '/'], { stdio: ['ignore', 'ignore', 'pipe'] });
    fillMs.push(performance.now() - t0);
    uppers.push(upper);
  }
  const entries = uppers.map((u) => Number(execFileSync('sh', ['-c', `find '${u}' -xdev | wc -l`], { encoding: 'utf8' }).trim()));
  process.stderr.write(`upper dirs filled: ${entries.join(', ')} entries\n`);

  // ---- the measurements
  const idle = await phase('idle (--no-disk-usage)', ['--no-disk-usage'], 2);
  const walks = await phase('walks (--disk-usage-interval=5s --disk-walk-concurrency=2)', ['--disk-usage-interval=5s', '--disk-walk-concurrency=2'], 0);
  cleanup();

  // ---- the report
  const idleP99 = pct(idle.lat, 0.99);
  say(
    `# /metrics latency under disk walks (${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()}, Node ${process.versions.node})`,
  );
  say();
  say(`Measured ${new Date().toISOString()} by \`node --import=tsx bench/walk-latency-bench.ts\`.`);
  say(
    `Load: 2 containers \`${NAMES.join('`, `')}\` (\`${IMAGE}\`, \`sleep 3600\`), upper dirs filled with a copy (\`cp -a\`) of half of \`bench/.work/tree-1m\` each: ${entries.join(' + ')} entries (\`find -xdev | wc -l\`), ${fillMs.map((x) => f1(x / 1000)).join(' s, ')} s to fill.`,
  );
  say(
    `podvisor: \`${path.relative(REPO, MAIN)}\`, \`--raw-cgroup-prefix-allowlist=/docker\` plus the phase's flags; gather on the worker thread (default). Sequential scrapes (keep-alive, gzip, timed to the last byte: bench/lib/exporter.ts) for at least ${SCRAPES} scrapes and ${WINDOW_S} s per phase; the walk phase opens its window only after a first walk finished; p99 is nearest-rank.`,
  );
  say(`Load average at start: ${loadStart}.`);
  say();
  say('| phase | p50 | p99 | max | p99 / idle p99 | non-200 | window | podvisor CPU | machine CPU busy | load avg before → after |');
  say('|---|---|---|---|---|---|---|---|---|---|');
  for (const p of [idle, walks]) {
    const bad = p.statuses.filter((s) => s !== 200).length;
    say(
      `| ${p.name} | ${f1(pct(p.lat, 0.5))} ms | ${f1(pct(p.lat, 0.99))} ms | ${f1(Math.max(...p.lat))} ms | ${(pct(p.lat, 0.99) / idleP99).toFixed(2)}× | ${bad} | ${f1(p.windowS)} s | ${f1((p.cpuS / p.windowS) * 100)}% of a core | ${f1(p.machineBusyPct)}% of ${os.cpus().length} CPUs | ${p.loadBefore} → ${p.loadAfter} |`,
    );
  }
  say();
  say('Walks during each window (Δ between the scrape just before the window and its last scrape; walks are counted when they finish):');
  say();
  say(
    '| phase | walks ok / timeout / error | files walked | files/s over the window | walk time finished in window (sum) | mean walk | walkers busy (≈ sum / (2 × window)) |',
  );
  say('|---|---|---|---|---|---|---|');
  for (const p of [walks]) {
    if (p.d0 === undefined || p.d1 === undefined) continue;
    const d = (k: keyof Disk) => (p.d1?.[k] ?? NaN) - (p.d0?.[k] ?? NaN);
    say(
      `| ${p.name} | ${d('ok')} / ${d('timeout')} / ${d('error')} | ${d('files')} | ${Math.round(d('files') / p.windowS)} | ${f1(d('durSum'))} s | ${d('durCount') > 0 ? f1((d('durSum') / d('durCount')) * 1000) + ' ms' : '-'} | ${f1((d('durSum') / (2 * p.windowS)) * 100)}% |`,
    );
  }
  say();
  for (const p of [walks])
    say(
      `container_fs_usage_bytes at the end of "${p.name}": ${p.fsUsage.length === 0 ? '(none)' : p.fsUsage.map((l) => '`' + l.replace(/\{.*name="([^"]*)".*\}/, '{name="$1",…}') + '`').join(', ')}`,
    );
  say();
  for (const p of [idle, walks]) {
    say(`Latencies, ${p.name} (ms, in order): ${p.lat.map(f1).join(', ')}`);
    say();
  }
  const report = out.join('\n') + '\n';
  process.stdout.write(report);
  const file = process.argv[2];
  if (file !== undefined) fs.writeFileSync(file, report);
}

main().catch((err: unknown) => {
  process.stderr.write(`walk-latency-bench: ${err instanceof Error ? err.message : String(err)}\n`);
  cleanup();
  process.exit(1);
});
