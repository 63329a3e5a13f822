/**
 * The data of one benchmark run (saved as JSON, so a report can be re-rendered with --from-json), its aggregation per
 * container count and exporter, the ratios and the targets of issue 6.
 */
import type { Args } from './args.js';
import type { Machine, NodeState, Versions } from './machine.js';
import type { RoundResult } from './measure.js';
import type { NativeResult } from './native.js';
import { PROM_LABELS, type PodvisorCounters, type PromData, type PromExporter, type PromRun, type PromScrape } from './prom.js';
import type { SetupStats } from './scenario.js';
import { median, ratio, summarize, type Summary } from './stats.js';
import type { LatencyPhase, ThroughputResult } from './walker.js';

/** The command line's measuring flags, plus what the run fixed. */
export interface RunOptions extends Pick<Args, 'containers' | 'filesPerContainer' | 'cadvisor' | 'runs' | 'rounds' | 'idleSeconds' | 'keep' | 'skipWalker'> {
  /** absent in runs saved before the Prometheus-like scrapers scenario */
  skipProm?: boolean;
  promWarmupSeconds?: number;
  promSeconds?: number;
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
  /** the Prometheus-like scrapers scenario, at the largest N */
  prom?: PromData;
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

/** One scraper's (or all scrapers') scrapes sent in the measured window. */
export interface ScrapeGroup {
  scrapes: number;
  /** HTTP status (or timeout, error) → count */
  status: Record<string, number>;
  /** answered 200: sent → body read, ms */
  latency: Summary;
  /** X-Podvisor-Result-Age of the 200s, s (n = 0: no header) */
  age: Summary;
  /** how late the requests went out (timers), ms */
  lateMaxMs: number;
}

function group(scrapes: readonly PromScrape[]): ScrapeGroup {
  const status: Record<string, number> = {};
  for (const s of scrapes) status[s.status] = (status[s.status] ?? 0) + 1;
  const ok = scrapes.filter((s) => s.status === '200');
  return {
    scrapes: scrapes.length,
    status,
    latency: summarize(ok.map((s) => s.ms)),
    age: summarize(ok.flatMap((s) => (s.ageS === undefined ? [] : [s.ageS]))),
    lateMaxMs: scrapes.length === 0 ? NaN : Math.max(...scrapes.map((s) => s.lateMs)),
  };
}

const delta = (c: { before: PodvisorCounters; after: PodvisorCounters }, k: keyof PodvisorCounters): number => c.after[k] - c.before[k];

export interface PromRunSummary {
  exporter: PromExporter;
  label: string;
  all: ScrapeGroup;
  /** per scraper, in the order of data.scrapers */
  perScraper: { name: string; g: ScrapeGroup }[];
  /** exporter CPU (own + reaped children) per 5 s of the measured window, s, and as % of a core */
  cpuPer5s: number;
  cpuPct: number;
  rssMiB: number;
  /** podvisor: Δ podvisor_gathers_total over the window's scrapes (NaN for cAdvisor, or without a body before the window) */
  gathers: number;
  /** scrapes answered over the same span: Δ podvisor_scrapes_total when podvisor has it, else the answers we counted */
  scrapes: number;
  scrapesFrom: 'podvisor_scrapes_total' | 'own count' | 'n/a';
  /** podvisor_scrape_result_age_seconds over the same span: mean, share ≤ 1 s (NaN when absent) */
  histAgeMean: number;
  histAgeLe1: number;
  /** Δ podvisor_gather_duration_seconds: mean gather, ms */
  gatherMeanMs: number;
  contentTypes: string[];
}

export function summarizePromRun(d: PromData, r: PromRun): PromRunSummary {
  const m = r.scrapes.filter((s) => s.measured);
  const perWindow = r.windowS / 5;
  const cpu = r.cpu.self + r.cpu.children;
  const c = r.counters;
  let scrapes = NaN;
  let scrapesFrom: PromRunSummary['scrapesFrom'] = 'n/a';
  if (c !== undefined) {
    const own = delta(c, 'scrapes');
    [scrapes, scrapesFrom] = Number.isFinite(own) ? [own, 'podvisor_scrapes_total'] : [c.ownScrapes, 'own count'];
  } else if (r.exporter === 'cadvisor') {
    [scrapes, scrapesFrom] = [m.filter((s) => s.status !== 'timeout' && s.status !== 'error').length, 'own count'];
  }
  return {
    exporter: r.exporter,
    label: PROM_LABELS[r.exporter],
    all: group(m),
    perScraper: d.scrapers.map((s) => ({ name: s.name, g: group(m.filter((x) => x.scraper === s.name)) })),
    cpuPer5s: cpu / perWindow,
    cpuPct: (cpu / r.windowS) * 100,
    rssMiB: r.rssMiB,
    gathers: c === undefined ? NaN : delta(c, 'gathers'),
    scrapes,
    scrapesFrom,
    histAgeMean: c === undefined ? NaN : ratio(delta(c, 'ageSum'), delta(c, 'ageCount')),
    histAgeLe1: c === undefined ? NaN : ratio(delta(c, 'ageLe1'), delta(c, 'ageCount')),
    gatherMeanMs: c === undefined ? NaN : ratio(delta(c, 'gatherSum'), delta(c, 'gatherCount')) * 1000,
    contentTypes: [...new Set(m.map((s) => s.contentType).filter((t) => t !== ''))],
  };
}

export interface PromSummary {
  n: number;
  runs: PromRunSummary[];
  /** the native floor at the same N, ms per pass, all rounds pooled */
  floor: Summary;
}

export function summarizeProm(data: RunData): PromSummary | undefined {
  const d = data.prom;
  if (d === undefined) return undefined;
  const nd = data.perN.find((x) => x.n === d.n);
  return { n: d.n, runs: d.runs.map((r) => summarizePromRun(d, r)), floor: summarize(nd?.floor.flatMap((f) => f.ms) ?? []) };
}

/** Issue 12's targets for gathering ahead of the scrape, under the Prometheus-like scrapers. */
export function promTargets(d: PromData, s: PromSummary): Target[] {
  const by = (e: PromExporter): PromRunSummary | undefined => s.runs.find((r) => r.exporter === e);
  const ahead = by('ahead');
  const today = by('today');
  const cad = by('cadvisor');
  const t: Target[] = [];
  // Without --gather-ahead in this build, "ahead" ran podvisor's default: nothing here judges gathering ahead.
  const add = (what: string, measured: string, value: number, limit: string, ok: (v: number) => boolean): void => {
    t.push({
      what,
      measured: d.aheadFlag ? measured : `${measured} (this podvisor has no --gather-ahead: not judged)`,
      value,
      limit,
      verdict: d.aheadFlag ? verdict(ok(value), value) : 'n/a',
    });
  };
  const p50 = ahead?.all.latency.median;
  const vsCad = ratio(p50, cad?.all.latency.median);
  add(
    "scrape p50 with gather-ahead ≤ 0.1× cAdvisor's under the same scrapers",
    `${fmtMs(p50)} vs ${fmtMs(cad?.all.latency.median)}: ${x2(vsCad)}`,
    vsCad,
    '≤ 0.10×',
    (v) => v <= 0.1,
  );
  const vsFloor = ratio(p50, s.floor.median);
  add(
    "scrape p50 with gather-ahead ≤ 0.25× the native floor's single pass p50",
    `${fmtMs(p50)} vs ${fmtMs(s.floor.median)}: ${x2(vsFloor)}`,
    vsFloor,
    '≤ 0.25×',
    (v) => v <= 0.25,
  );
  const age = ahead?.all.age;
  const ageP99 = age === undefined || age.n === 0 ? NaN : age.p99;
  add(
    'served age p99 ≤ 1 s (gather ahead; X-Podvisor-Result-Age)',
    age === undefined || age.n === 0
      ? 'no X-Podvisor-Result-Age header'
      : `p99 ${fmtS(age.p99)} (p50 ${fmtS(age.median)}, max ${fmtS(age.max)}, ${age.n} scrapes)`,
    ageP99,
    '≤ 1 s',
    (v) => v <= 1,
  );
  const cpu = ratio(ahead?.cpuPer5s, today?.cpuPer5s);
  add(
    'CPU per 5 s interval with gather-ahead no higher than without (+10%)',
    `${fmtCpu(ahead?.cpuPer5s)} vs ${fmtCpu(today?.cpuPer5s)} per 5 s: ${x2(cpu)}`,
    cpu,
    '≤ 1.10×',
    (v) => v <= 1.1,
  );
  const g = ratio(ahead?.gathers, ahead?.scrapes);
  add(
    'gathers ≤ scrapes (gather ahead, over the measured window)',
    ahead === undefined || !Number.isFinite(ahead.gathers)
      ? 'no podvisor_gathers_total delta'
      : `${ahead.gathers} gathers for ${ahead.scrapes} scrapes (${ahead.scrapesFrom}): ${x2(g)}`,
    g,
    '≤ 1×',
    (v) => v <= 1,
  );
  return t;
}

export function fmtS(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (v < 0.1) return `${(v * 1000).toFixed(1)} ms`;
  return v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`;
}

/** CPU seconds as ms of CPU. */
export function fmtCpu(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : `${(v * 1000).toFixed(0)} ms`;
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
