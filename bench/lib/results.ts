/**
 * The data of one benchmark run (saved as JSON, so a report can be re-rendered with --from-json), its aggregation per
 * container count and exporter, the ratios and the targets of issue 6.
 */
import type { Args } from './args.js';
import type { Machine, NodeState, Versions } from './machine.js';
import type { RoundResult } from './measure.js';
import type { NativeResult } from './native.js';
import type { SetupStats } from './scenario.js';
import { median, ratio, summarize, type Summary } from './stats.js';
import type { LatencyPhase, ThroughputResult } from './walker.js';

/** The command line's measuring flags, plus what the run fixed. */
export interface RunOptions extends Pick<Args, 'containers' | 'filesPerContainer' | 'cadvisor' | 'runs' | 'rounds' | 'idleSeconds' | 'keep' | 'skipWalker'> {
  intervalSeconds: number;
  concurrency: number;
  warmups: number;
  command: string;
}

export interface NData {
  n: number;
  setup: SetupStats;
  nodeBefore: NodeState;
  nodeAfter: NodeState;
  rounds: RoundResult[];
  floor: NativeResult[];
}

export interface RunData {
  startedAt: string;
  finishedAt: string;
  options: RunOptions;
  machine: Machine;
  versions: Versions;
  loadStart: string;
  loadEnd: string;
  perN: NData[];
  walker?: { n: number; throughput: ThroughputResult; latency: LatencyPhase[] };
  notes: string[];
}

/** Per container count and exporter: every measure over the rounds. */
export interface ExporterSummary {
  rounds: number;
  /** sequential scrapes, all rounds pooled, ms */
  scrape: Summary;
  /** podvisor's gather duration per scrape, ms */
  gather: Summary;
  /** slowest of each concurrent batch, ms */
  concSlowest: Summary;
  /** every concurrent scrape, ms */
  concAll: Summary;
  singleHwm: Summary;
  concHwm: Summary;
  /** per round: concurrent VmHWM / single-scrape VmHWM */
  hwmRatio: Summary;
  /** per 15 s interval, pooled over rounds: CPU % of one core between scrapes / in total */
  idleBetween: Summary;
  idleTotal: Summary;
  /** per round, the whole window */
  idleBetweenWindow: Summary;
  idleTotalWindow: Summary;
  restRss: Summary;
  cpuPerScrape: Summary;
  bytes: Summary;
  wireBytes: Summary;
  series: Summary;
  containerSeries: Summary;
  families: Summary;
  readyS: Summary;
  childrenCpuS: Summary;
}

export function summarizeRounds(rounds: readonly RoundResult[]): ExporterSummary {
  const all = <T>(f: (r: RoundResult) => T[]): T[] => rounds.flatMap(f);
  const each = (f: (r: RoundResult) => number): Summary => summarize(rounds.map(f));
  return {
    rounds: rounds.length,
    scrape: summarize(all((r) => r.seqMs)),
    gather: summarize(all((r) => r.gatherMs)),
    concSlowest: each((r) => Math.max(...r.conc.ms)),
    concAll: summarize(all((r) => r.conc.ms)),
    singleHwm: each((r) => r.singleHwmMiB),
    concHwm: each((r) => r.conc.hwmMiB),
    hwmRatio: each((r) => r.conc.hwmMiB / r.singleHwmMiB),
    idleBetween: summarize(all((r) => r.idle.intervals.map((i) => i.betweenPct))),
    idleTotal: summarize(all((r) => r.idle.intervals.map((i) => i.totalPct))),
    idleBetweenWindow: each((r) => r.idle.betweenPct),
    idleTotalWindow: each((r) => r.idle.totalPct),
    restRss: each((r) => r.restRssMiB),
    cpuPerScrape: each((r) => r.cpuPerScrapeMs),
    bytes: each((r) => r.exposition.bytes),
    wireBytes: each((r) => r.wireBytes),
    series: each((r) => r.exposition.series),
    containerSeries: each((r) => r.exposition.containerSeries),
    families: each((r) => r.exposition.families),
    readyS: each((r) => r.readyS),
    childrenCpuS: each((r) => r.idle.childrenCpuS),
  };
}

export interface NSummary {
  n: number;
  podvisor: ExporterSummary;
  cadvisor?: ExporterSummary;
  /** native reader, ms per pass, all rounds pooled */
  floor: Summary;
}

export function summarizeN(d: NData): NSummary {
  const pv = d.rounds.filter((r) => r.kind === 'podvisor');
  const cad = d.rounds.filter((r) => r.kind === 'cadvisor');
  const s: NSummary = { n: d.n, podvisor: summarizeRounds(pv), floor: summarize(d.floor.flatMap((f) => f.ms)) };
  if (cad.length > 0) s.cadvisor = summarizeRounds(cad);
  return s;
}

export type Verdict = 'PASS' | 'MISS' | 'n/a';

export interface Target {
  what: string;
  /** how the value is computed */
  measured: string;
  value: number;
  limit: string;
  verdict: Verdict;
}

const verdict = (ok: boolean, value: number): Verdict => (Number.isFinite(value) ? (ok ? 'PASS' : 'MISS') : 'n/a');
const x2 = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');

/** Issue 6's targets for one container count, judged on medians (the rounds' spread is in the tables). */
export function targets(s: NSummary): Target[] {
  const pv = s.podvisor;
  const cad = s.cadvisor;
  const t: Target[] = [];
  const add = (what: string, measured: string, value: number, limit: string, ok: (v: number) => boolean): void => {
    t.push({ what, measured, value, limit, verdict: verdict(ok(value), value) });
  };
  const vsCad = ratio(pv.scrape.median, cad?.scrape.median);
  add("scrape p50 ≤ 1/3 of cAdvisor's", `${fmtMs(pv.scrape.median)} vs ${fmtMs(cad?.scrape.median)}: ${x2(vsCad)}`, vsCad, '≤ 0.33×', (v) => v <= 1 / 3);
  const vsFloor = ratio(pv.scrape.median, s.floor.median);
  add('scrape p50 ≤ 2× the native floor', `${fmtMs(pv.scrape.median)} vs ${fmtMs(s.floor.median)}: ${x2(vsFloor)}`, vsFloor, '≤ 2×', (v) => v <= 2);
  const slow = ratio(pv.concSlowest.median, pv.scrape.median);
  add(
    '20 concurrent scrapes: slowest ≤ 2× our single-scrape p50',
    `slowest ${fmtMs(pv.concSlowest.median)} (median of rounds; worst ${fmtMs(pv.concSlowest.max)}) vs ${fmtMs(pv.scrape.median)}: ${x2(slow)}`,
    slow,
    '≤ 2×',
    (v) => v <= 2,
  );
  add(
    "20 concurrent scrapes: peak RSS within 15% of a single scrape's",
    `VmHWM ${fmtMiB(pv.concHwm.median)} vs ${fmtMiB(pv.singleHwm.median)} (per round, median; worst ${x2(pv.hwmRatio.max)}): ${x2(pv.hwmRatio.median)}`,
    pv.hwmRatio.median,
    '≤ 1.15×',
    (v) => v <= 1.15,
  );
  const idle = ratio(pv.idleBetween.median, cad?.idleBetween.median);
  add(
    "idle CPU ≤ 1/10 of cAdvisor's",
    `between scrapes at a 15 s interval: ${fmtPct(pv.idleBetween.median)} vs ${fmtPct(cad?.idleBetween.median)} of a core: ${x2(idle)}`,
    idle,
    '≤ 0.10×',
    (v) => v <= 0.1,
  );
  const rss = ratio(pv.restRss.median, cad?.restRss.median);
  add("RSS at rest below cAdvisor's", `${fmtMiB(pv.restRss.median)} vs ${fmtMiB(cad?.restRss.median)}: ${x2(rss)}`, rss, '< 1×', (v) => v < 1);
  return t;
}

/** Earlier issues' targets for the walker, measured in the same run. */
export function walkerTargets(w: NonNullable<RunData['walker']>): Target[] {
  const t: Target[] = [];
  const speed2 = ratio(median(w.throughput.runs.du2), median(w.throughput.runs.walk2));
  t.push({
    what: "disk walker ≥ 0.8× du's speed (two streams each)",
    measured: `${fmtMs(median(w.throughput.runs.walk2))} vs ${fmtMs(median(w.throughput.runs.du2))} for ${w.throughput.entries.toLocaleString('en')} entries: ${x2(speed2)}`,
    value: speed2,
    limit: '≥ 0.8×',
    verdict: verdict(speed2 >= 0.8, speed2),
  });
  const [idle, walks] = w.latency;
  if (idle !== undefined && walks !== undefined) {
    const p99 = ratio(summarize(walks.ms).p99, summarize(idle.ms).p99);
    t.push({
      what: 'scrape p99 with walkers busy ≤ 1.5× without',
      measured: `${fmtMs(summarize(walks.ms).p99)} vs ${fmtMs(summarize(idle.ms).p99)}: ${x2(p99)}`,
      value: p99,
      limit: '≤ 1.5×',
      verdict: verdict(p99 <= 1.5, p99),
    });
  }
  return t;
}

export function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}

export function fmtMiB(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(1)} MiB`;
}

export function fmtPct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(2)}%`;
}
