/**
 * A/B of two podvisor builds on the same node: CPU time and latency per sequential scrape, the builds interleaved
 * (ABAB...) so the node's drift hits both alike. Each build is a checkout with `dist/` built and its node_modules
 * installed; each round starts it fresh with default flags, waits until it is ready and its runtimes have had time
 * to register, makes 5 warm-up scrapes, then 30 measured ones (keep-alive, gzip), waits 15 s and reads its RSS at
 * rest (VmRSS), and stops it.
 *
 *   node --import=tsx bench/ab-builds.ts <checkout A> <checkout B> [rounds, default 4] [settle seconds, default 8]
 *
 * The settle time runs from readiness; a build that turns ready sooner (before its runtimes registered, say) has less
 * of its first disk-usage pass behind it when the measured scrapes start: give it 25 s to compare such builds.
 *
 * Used to tell a change's cost from machine drift between two `npm run bench` runs days apart.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { median } from './lib/stats.js';

const [a, b, roundsArg, settleArg] = process.argv.slice(2);
if (a === undefined || b === undefined) {
  process.stderr.write('usage: node --import=tsx bench/ab-builds.ts <checkout A> <checkout B> [rounds]\n');
  process.exit(2);
}
const builds: Record<'A' | 'B', string> = { A: path.resolve(a), B: path.resolve(b) };
const ROUNDS = Number(roundsArg ?? 4);
const SETTLE_MS = Number(settleArg ?? 8) * 1000;
const SCRAPES = 30;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process, in ms (USER_HZ is 100). */
function cpuMs(pid: number): number {
  const fields = (fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function scrape(url: string): Promise<number> {
  const t = performance.now();
  const r = await fetch(`${url}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`${url}/metrics answered ${r.status}`);
  return performance.now() - t;
}

/** VmRSS of a process, in MiB. */
function rssMiB(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024;
}

const REST_MS = 15_000;

const results: Record<'A' | 'B', { cpu: number[]; p50: number[]; rss: number[] }> = { A: { cpu: [], p50: [], rss: [] }, B: { cpu: [], p50: [], rss: [] } };
for (let round = 0; round < ROUNDS; round++) {
  for (const name of round % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
    const port = 19100 + round * 2 + (name === 'A' ? 0 : 1);
    const url = `http://127.0.0.1:${port}`;
    const p = spawn(process.execPath, ['dist/main.js', `--listen-address=127.0.0.1:${port}`, '--log-level=error'], {
      cwd: builds[name],
      env: { ...process.env, MALLOC_ARENA_MAX: '2' },
      stdio: 'ignore',
    });
    const pid = p.pid;
    if (pid === undefined) throw new Error(`${builds[name]}: could not start dist/main.js`);
    try {
      let ready = false;
      for (let i = 0; i < 300 && !ready; i++) {
        ready = await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!ready) await sleep(100);
      }
      if (!ready) throw new Error(`${builds[name]}: not ready after 30 s`);
      await sleep(SETTLE_MS); // runtime registration and the first disk-usage pass
      for (let i = 0; i < 5; i++) await scrape(url);
      const cpu0 = cpuMs(pid);
      const latencies: number[] = [];
      for (let i = 0; i < SCRAPES; i++) latencies.push(await scrape(url));
      const cpu = (cpuMs(pid) - cpu0) / SCRAPES;
      results[name].cpu.push(cpu);
      results[name].p50.push(median(latencies));
      await sleep(REST_MS);
      const rss = rssMiB(pid);
      results[name].rss.push(rss);
      const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
      process.stdout.write(
        `round ${round + 1} ${name}: CPU per scrape ${cpu.toFixed(0)} ms, p50 ${median(latencies).toFixed(0)} ms, RSS at rest ${rss.toFixed(1)} MiB, load ${load}\n`,
      );
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }
}
for (const name of ['A', 'B'] as const) {
  process.stdout.write(
    `${name} ${builds[name]}: median CPU per scrape ${median(results[name].cpu).toFixed(0)} ms, median p50 ${median(results[name].p50).toFixed(0)} ms, median RSS at rest ${median(results[name].rss).toFixed(1)} MiB\n`,
  );
}
