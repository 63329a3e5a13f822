/**
 * The benchmark harness (issue 6): `npm run bench -- --containers 50,200,500 --cadvisor <path>`.
 *
 * For each container count N (ascending; containers are added, never recreated): the scenario (lib/scenario.ts,
 * lib/files.ts), then `--rounds` rounds of podvisor and cAdvisor, interleaved ABBA, each exporter started fresh for its
 * round (lib/measure.ts), and the native reader after each pair (lib/native.ts); at 200 containers (or the largest N)
 * the disk walker (lib/walker.ts); at the largest N, the Prometheus-like scrapers (lib/prom.ts: podvisor with and without
 * gather-ahead, and cAdvisor). Then a markdown report (lib/report.ts) and SVG charts (lib/chart.ts) in --out, and the
 * raw data as JSON in bench/.work/runs/. Containers are removed at the end, on failure and on Ctrl-C, unless
 * --keep. bench/README.md describes every measure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HELP, parse, UsageError, type Args } from './lib/args.js';
import { renderChart, renderPromChart } from './lib/chart.js';
import { installSignalHandlers, interrupted, onCleanup, runCleanup } from './lib/cleanup.js';
import { errorMessage } from './lib/exec.js';
import { REPO, startCadvisor, startPodvisor, type ExporterKind } from './lib/exporter.js';
import { machine, nodeState, versions } from './lib/machine.js';
import { measureRound, type RoundConfig } from './lib/measure.js';
import { runNativeReader } from './lib/native.js';
import { preflight, takeLock } from './lib/preflight.js';
import { loadavg } from './lib/proc.js';
import { knowsGatherAhead, PROM_ACCEPT, PROM_LABELS, PROM_USER_AGENT, promRun, promScrapers, type PromData, type PromExporter } from './lib/prom.js';
import { renderReport } from './lib/report.js';
import { promTargets, summarizeN, summarizeProm, targets, walkerTargets, type NData, type RunData } from './lib/results.js';
import { checkLeftovers, containersFor, down, ensure } from './lib/scenario.js';
import { latencyUnderWalks, throughput, upperDirs } from './lib/walker.js';

const log = (s: string): void => {
  process.stderr.write(`bench: ${s}\n`);
};

const RUNS_DIR = path.join(REPO, 'bench/.work/runs');
const INTERVAL_S = 15;
const CONCURRENCY = 20;
const WARMUPS = 2;

/** A rough duration, to say up front (measured on the 2-core VM; cAdvisor's scrapes are the slow part). */
function estimateMinutes(a: Args): number {
  const maxN = Math.max(...a.containers);
  let s = maxN * 0.4 + (maxN * a.filesPerContainer) / 15_000; // start + fill
  for (const n of a.containers) {
    const round = 25 + n * 0.05 + a.idleSeconds + a.runs * n * 0.002 + 2 * n * 0.01;
    s += a.rounds * (round + (a.cadvisor === undefined ? 0 : round + a.runs * n * 0.0005 + n * 0.06) + a.runs * n * 0.0006);
  }
  if (!a.skipWalker) s += 90 + ((Math.min(maxN, 200) / 2) * a.filesPerContainer * 16) / 500_000;
  // Per exporter: start, named and first disk pass (~25 s + N × 0.05 s; cAdvisor's fs pass more), warm-up, window, stop.
  if (!a.skipProm) s += (a.cadvisor === undefined ? 2 : 3) * (30 + maxN * 0.05 + a.promWarmupSeconds + a.promSeconds);
  return s / 60;
}

function outputBase(dir: string, date: string, counts: number[]): string {
  const base = path.join(dir, `${date}-${counts.join('-')}`);
  if (!fs.existsSync(`${base}.md`)) return base;
  for (let i = 2; ; i++) if (!fs.existsSync(`${base}-${i}.md`)) return `${base}-${i}`;
}

function writeOutputs(data: RunData, outDir: string): { md: string; charts: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const base = outputBase(outDir, data.startedAt.slice(0, 10), data.options.containers);
  const svg = `${base}.svg`;
  fs.writeFileSync(svg, renderChart(data));
  const promChart = renderPromChart(data);
  const promSvg = promChart === undefined ? undefined : `${base}-prom.svg`;
  if (promSvg !== undefined && promChart !== undefined) fs.writeFileSync(promSvg, promChart);
  fs.writeFileSync(`${base}.md`, renderReport(data, path.basename(svg), promSvg === undefined ? undefined : path.basename(promSvg)));
  return { md: `${base}.md`, charts: [svg, ...(promSvg === undefined ? [] : [promSvg])].map((f) => path.relative(process.cwd(), f)).join(' and ') };
}

function saveJson(data: RunData): string {
  fs.mkdirSync(RUNS_DIR, { recursive: true });
  const file = path.join(RUNS_DIR, `${data.startedAt.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(data, null, 1));
  return file;
}

async function bench(a: Args): Promise<void> {
  installSignalHandlers(log);
  const pre = await preflight(a);
  onCleanup('release the lock', takeLock());
  const kinds: ExporterKind[] = a.cadvisor === undefined ? ['podvisor'] : ['podvisor', 'cadvisor'];
  const data: RunData = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    options: {
      containers: a.containers,
      filesPerContainer: a.filesPerContainer,
      ...(a.cadvisor === undefined ? {} : { cadvisor: path.relative(REPO, a.cadvisor) }),
      runs: a.runs,
      rounds: a.rounds,
      idleSeconds: a.idleSeconds,
      intervalSeconds: INTERVAL_S,
      concurrency: CONCURRENCY,
      warmups: WARMUPS,
      keep: a.keep,
      skipWalker: a.skipWalker,
      skipProm: a.skipProm,
      promWarmupSeconds: a.promWarmupSeconds,
      promSeconds: a.promSeconds,
      command: `npm run bench -- ${process.argv
        .slice(2)
        .map((x) => (x.startsWith(REPO) ? path.relative(REPO, x) : x))
        .join(' ')}`.trim(),
    },
    machine: machine(),
    versions: await versions(a.cadvisor, pre.cc),
    loadStart: loadavg(),
    loadEnd: '',
    perN: [],
    notes: [],
  };
  const leftovers = await checkLeftovers(a.filesPerContainer);
  if (leftovers > 0) log(`${leftovers} bench container(s) left by an earlier --keep run: reused (or removed when beyond the first N)`);
  // Registered after the lock, so it runs before the lock is released.
  onCleanup('remove the bench containers', async () => {
    if (a.keep) log('--keep: the bench containers stay (bench/containers.sh down removes them)');
    else await down(log);
  });
  log(
    `containers ${a.containers.join(', ')}, ${a.filesPerContainer} files each, ${a.rounds} round(s) of ${kinds.join(' + ')}; about ${Math.ceil(estimateMinutes(a))} min`,
  );
  const walkerN = a.containers.includes(200) ? 200 : Math.max(...a.containers);
  const maxN = Math.max(...a.containers);
  const cadvisorLog = path.join(REPO, 'bench/.work/bench-cadvisor.log');

  for (const n of a.containers) {
    const setup = await ensure(n, a.filesPerContainer, log);
    const nodeBefore = await nodeState();
    const all = containersFor(n);
    const cfg = (round: number): RoundConfig => ({
      n,
      round,
      runs: a.runs,
      warmups: WARMUPS,
      idleSeconds: a.idleSeconds,
      intervalSeconds: INTERVAL_S,
      concurrency: CONCURRENCY,
      names: new Set(all.map((c) => c.name)),
      dockerNames: new Set(all.filter((c) => c.runtime === 'docker').map((c) => c.name)),
      readyTimeoutS: 120 + n,
      log,
    });
    const nd: NData = { n, setup, nodeBefore, nodeAfter: nodeBefore, rounds: [], floor: [] };
    data.perN.push(nd);
    for (let r = 0; r < a.rounds; r++) {
      const order = r % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        const start = kind === 'podvisor' ? () => startPodvisor([]) : () => startCadvisor(a.cadvisor ?? '', cadvisorLog, { readyTimeoutMs: 120_000 });
        const result = await measureRound(kind, start, cfg(r));
        nd.rounds.push(result);
        if (!result.hwmReset) data.notes.push(`N=${n} round ${r + 1} ${kind}: VmHWM could not be reset (/proc/<pid>/clear_refs); peaks are 20 ms RSS samples`);
        if (result.diskSettleS === undefined)
          data.notes.push(`N=${n} round ${r + 1} ${kind}: the first disk-usage pass was not seen complete within 300 s; measured anyway`);
        if (result.non200 > 0) data.notes.push(`N=${n} round ${r + 1} ${kind}: ${result.non200} scrape(s) answered other than 200`);
      }
      const floor = await runNativeReader(a.runs);
      nd.floor.push(floor);
      log(
        `N=${n} round ${r + 1} native floor: median ${[...floor.ms].sort((x, y) => x - y)[Math.floor(floor.ms.length / 2)]?.toFixed(1)} ms (${floor.cgroups} cgroups, ${floor.filesRead} files)`,
      );
      saveJson(data);
    }
    nd.nodeAfter = await nodeState();
    if (!a.skipWalker && n === walkerN) {
      const dirs = await upperDirs(all.filter((c) => c.runtime === 'docker').map((c) => c.name));
      log(`disk walker: ${dirs.length} upper dirs, walk() vs du`);
      const tp = await throughput(dirs, 3, log);
      const latency = await latencyUnderWalks(100, 30, log);
      data.walker = { n, throughput: tp, latency };
      saveJson(data);
    }
    if (!a.skipProm && n === maxN) {
      const aheadFlag = await knowsGatherAhead();
      if (!aheadFlag) data.notes.push('Prometheus-like scrapers: this podvisor has no --gather-ahead flag; both podvisor runs used its default flags');
      const prom: PromData = {
        n,
        warmupS: a.promWarmupSeconds,
        measuredS: a.promSeconds,
        scrapers: promScrapers(),
        accept: PROM_ACCEPT,
        userAgent: PROM_USER_AGENT,
        aheadFlag,
        runs: [],
      };
      data.prom = prom;
      const exporters: PromExporter[] = a.cadvisor === undefined ? ['ahead', 'today'] : ['ahead', 'today', 'cadvisor'];
      log(
        `Prometheus-like scrapers (${prom.scrapers.map((x) => `${x.intervalS} s`).join(', ')}): ${exporters.map((e) => PROM_LABELS[e]).join(', ')}; ${prom.warmupS} s warm-up + ${prom.measuredS} s each`,
      );
      for (const exporter of exporters) {
        const flags = exporter === 'today' && aheadFlag ? ['--gather-ahead=false'] : [];
        const start = exporter === 'cadvisor' ? () => startCadvisor(a.cadvisor ?? '', cadvisorLog, { readyTimeoutMs: 120_000 }) : () => startPodvisor(flags);
        const { names, dockerNames, readyTimeoutS } = cfg(0);
        const r = await promRun(exporter, flags, start, {
          n,
          names,
          dockerNames,
          readyTimeoutS,
          log,
          warmupS: prom.warmupS,
          measuredS: prom.measuredS,
          scrapers: prom.scrapers,
        });
        prom.runs.push(r);
        const bad = r.scrapes.filter((x) => x.measured && x.status !== '200').length;
        if (bad > 0) data.notes.push(`Prometheus-like scrapers, ${PROM_LABELS[exporter]}: ${bad} measured scrape(s) answered other than 200 (or not at all)`);
        if (r.counters === undefined && exporter !== 'cadvisor')
          data.notes.push(
            `Prometheus-like scrapers, ${PROM_LABELS[exporter]}: no podvisor body before the measured window (warm-up too short?): gathers and scrapes n/a`,
          );
        saveJson(data);
      }
    }
  }
  data.finishedAt = new Date().toISOString();
  data.loadEnd = loadavg();
  const json = saveJson(data);
  const { md, charts } = writeOutputs(data, a.out);
  await runCleanup(log);
  for (const s of data.perN.map(summarizeN)) {
    for (const t of targets(s)) log(`N=${s.n} ${t.verdict.padEnd(4)} ${t.what}: ${t.measured}`);
  }
  if (data.walker !== undefined) for (const t of walkerTargets(data.walker)) log(`N=${data.walker.n} ${t.verdict.padEnd(4)} ${t.what}: ${t.measured}`);
  const prom = summarizeProm(data);
  if (data.prom !== undefined && prom !== undefined)
    for (const t of promTargets(data.prom, prom)) log(`N=${prom.n} ${t.verdict.padEnd(4)} ${t.what}: ${t.measured}`);
  log(`report ${path.relative(process.cwd(), md)}, chart ${charts}, data ${path.relative(process.cwd(), json)}`);
}

async function main(): Promise<void> {
  let a: Args;
  try {
    a = parse(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (a.help) {
    process.stdout.write(HELP);
    return;
  }
  if (a.fromJson !== undefined) {
    const data = JSON.parse(fs.readFileSync(a.fromJson, 'utf8')) as RunData;
    const { md, charts } = writeOutputs(data, a.out);
    log(`report ${path.relative(process.cwd(), md)}, chart ${charts}`);
    return;
  }
  await bench(a);
}

main().catch(async (err: unknown) => {
  if (!interrupted()) process.stderr.write(`bench: FAILED: ${errorMessage(err).split('\n')[0] ?? ''}\n`);
  await runCleanup(log);
  process.exit(1);
});
