/**
 * podvisor's side of the anchor measurement: the same node state as bench/cadvisor-baseline.sh (N Kubernetes-shaped
 * containers from bench/containers.sh), the same measures, plus /healthz latency while gathers run, with the gather
 * on a worker thread and in-process.
 *
 *   npm run build && node --import=tsx bench/podvisor-bench.ts [out.md]
 *
 * Prints a markdown report (and writes it to out.md when given). Scrapes as bench/lib/exporter.ts makes them
 * (keep-alive, gzip, timed to the last byte); the fuller harness is bench/run.ts (`npm run bench`).
 */
import fs from 'node:fs';
import os from 'node:os';
import { metric, PODVISOR_MAIN, scrape as timedScrape, startPodvisor, stopExporter, type Exporter } from './lib/exporter.js';
import { runCleanup } from './lib/cleanup.js';
import { cpuTimes, hwmMiB, rssMiB } from './lib/proc.js';
import { summarize } from './lib/stats.js';

const MAIN = PODVISOR_MAIN;

/** utime + stime of the whole process (all threads), in seconds. */
const cpuSeconds = (pid: number): number => cpuTimes(pid).self;

function stats(xs: number[]): { min: number; median: number; p99: number; max: number } {
  const s = summarize(xs);
  return { min: s.min, median: s.median, p99: s.p99, max: s.max };
}

const f1 = (n: number) => n.toFixed(1);

async function start(args: string[]): Promise<{ proc: Exporter['proc']; url: string; exporter: Exporter }> {
  const exporter = await startPodvisor(args, { readyTimeoutMs: 30_000 });
  return { proc: exporter.proc, url: exporter.url, exporter };
}

async function scrape(url: string): Promise<{ ms: number; bytes: number; body: string }> {
  const s = await timedScrape(url);
  const body = s.body;
  return { ms: s.ms, bytes: Buffer.byteLength(body), body };
}

async function main(): Promise<void> {
  if (!fs.existsSync(MAIN)) throw new Error('run `npm run build` first');
  const out: string[] = [];
  const say = (s = '') => out.push(s);
  const load0 = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

  // ---- the anchor measures, default flags (gather on a worker thread)
  const { exporter, url } = await start([]);
  const pid = exporter.pid;
  await scrape(url);
  await scrape(url);
  const rssBefore = rssMiB(pid);
  const seq: { ms: number; bytes: number }[] = [];
  let last = '';
  const cpu0 = cpuSeconds(pid);
  for (let i = 0; i < 20; i++) {
    const s = await scrape(url);
    seq.push(s);
    last = s.body;
  }
  const cpuPerScrape = ((cpuSeconds(pid) - cpu0) / 20) * 1000;
  const rssAfterSeq = rssMiB(pid);
  const lines = last.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const containerSeries = lines.filter((l) => l.startsWith('container_')).length;
  const families = last.split('\n').filter((l) => l.startsWith('# TYPE')).length;
  const cgroups = metric(last, 'podvisor_cgroups');
  const gatherSum = metric(last, 'podvisor_gather_duration_seconds_sum');
  const gatherCount = metric(last, 'podvisor_gather_duration_seconds_count');

  const idle0 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, 30_000));
  const idlePct = ((cpuSeconds(pid) - idle0) / 30) * 100;
  const rssIdle = rssMiB(pid);

  // Peak RSS of one scrape, for the "within 15% of a single scrape" check.
  let peakSingle = rssMiB(pid);
  const sampler1 = setInterval(() => (peakSingle = Math.max(peakSingle, rssMiB(pid))), 20);
  await scrape(url);
  clearInterval(sampler1);

  const before = await scrape(url);
  const gathers0 = metric(before.body, 'podvisor_gathers_total{result="success"}');
  let peakConc = rssMiB(pid);
  const sampler = setInterval(() => (peakConc = Math.max(peakConc, rssMiB(pid))), 20);
  const c0 = performance.now();
  const cpuC0 = cpuSeconds(pid);
  const conc = await Promise.all(Array.from({ length: 20 }, () => scrape(url)));
  const concWall = performance.now() - c0;
  const concCpu = cpuSeconds(pid) - cpuC0;
  clearInterval(sampler);
  const after = await scrape(url);
  // `after` itself started one more gather, and `before` is already counted in gathers0.
  const concGathers = metric(after.body, 'podvisor_gathers_total{result="success"}') - gathers0 - 1;
  const hwm = hwmMiB(pid);
  await stopExporter(exporter);

  // ---- /healthz while gathers run back to back: worker thread vs in-process
  const health: Record<string, ReturnType<typeof stats>> = {};
  for (const mode of ['--gather-in-worker', '--no-gather-in-worker']) {
    const p = await start([mode]);
    let stop = false;
    const loop = (async () => {
      while (!stop) await scrape(p.url);
    })();
    const lat: number[] = [];
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const t0 = performance.now();
      await fetch(`${p.url}/healthz`).then((r) => r.text());
      lat.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await loop;
    health[mode] = stats(lat);
    await stopExporter(p.exporter);
  }

  const s = stats(seq.map((x) => x.ms));
  const c = stats(conc.map((x) => x.ms));
  say(`# podvisor, ${cgroups} cgroups (${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${os.release()})`);
  say();
  say(`Measured ${new Date().toISOString()} by \`node --import=tsx bench/podvisor-bench.ts\`, default flags (gather on a worker thread).`);
  say(
    `Load average before / after: ${load0} / ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}.`,
  );
  say();
  say('| measure | value |');
  say('|---|---|');
  say(`| /metrics latency, 20 sequential scrapes, min / median / max | ${f1(s.min)} / ${f1(s.median)} / ${f1(s.max)} ms |`);
  say(`| gather duration, mean of ${gatherCount} (podvisor_gather_duration_seconds) | ${f1((gatherSum / gatherCount) * 1000)} ms |`);
  say(`| body size | ${seq[0]?.bytes ?? 0} bytes (${f1((seq[0]?.bytes ?? 0) / 2 ** 20)} MiB) |`);
  say(`| series / \`container_*\` series / families | ${lines.length} / ${containerSeries} / ${families} |`);
  say(`| CPU per sequential scrape | ${f1(cpuPerScrape)} ms |`);
  say(`| CPU over 30 s idle (no scrapes) | ${f1(idlePct)}% of one core |`);
  say(`| RSS before scrapes / after sequential / after idle | ${f1(rssBefore)} / ${f1(rssAfterSeq)} / ${f1(rssIdle)} MiB |`);
  say(`| peak RSS during one scrape | ${f1(peakSingle)} MiB |`);
  say(`| 20 concurrent scrapes: each, min / median / max | ${f1(c.min)} / ${f1(c.median)} / ${f1(c.max)} ms |`);
  say(`| 20 concurrent scrapes: batch wall time / CPU | ${f1(concWall)} ms / ${f1(concCpu * 1000)} ms |`);
  say(`| 20 concurrent scrapes: gathers run | ${concGathers} |`);
  say(`| 20 concurrent scrapes: peak RSS / VmHWM | ${f1(peakConc)} / ${f1(hwm)} MiB (${f1((peakConc / peakSingle - 1) * 100)}% over one scrape's peak) |`);
  for (const [mode, h] of Object.entries(health)) {
    say(
      `| /healthz every 10 ms for 10 s while scrapes run back to back (${mode}): min / median / p99 / max | ${f1(h.min)} / ${f1(h.median)} / ${f1(h.p99)} / ${f1(h.max)} ms |`,
    );
  }
  say();
  say(`Sequential latencies (ms): ${seq.map((x) => f1(x.ms)).join(', ')}`);
  say();
  say(
    `Concurrent latencies (ms, sorted): ${conc
      .map((x) => x.ms)
      .sort((a, b) => a - b)
      .map(f1)
      .join(', ')}`,
  );
  const report = out.join('\n') + '\n';
  process.stdout.write(report);
  const file = process.argv[2];
  if (file !== undefined) fs.writeFileSync(file, report);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`podvisor-bench: ${err instanceof Error ? err.message : String(err)}\n`);
  await runCleanup(() => undefined); // stops the exporters still running
  process.exit(1);
});
