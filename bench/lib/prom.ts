/**
 * The "Prometheus-like scrapers" scenario (issue 12, part 3: gather ahead of the scrape). Per exporter (podvisor with
 * gather-ahead, podvisor with --gather-ahead=false, cAdvisor when given), started fresh and stopped at the end:
 *
 *   1. start; wait until /metrics names every bench container and the first disk-usage pass is done (lib/measure.ts)
 *   2. three scrapers behaving like Prometheus 2.53.0 scrape loops start together: fixed intervals (5, 15, 30 s), each
 *      with a stable offset in its interval (its first scrape comes `offset` after the start, then one per interval,
 *      as a Go ticker), each on its own keep-alive agent (one socket) bound to its own loopback source address, with
 *      Prometheus' request headers and its scrape timeout (min(interval, 10 s)) as the deadline of the whole request
 *   3. a warm-up window (the exporter learns the schedules), then the measured window: every scrape sent in it counts;
 *      the exporter's CPU (utime + stime, and reaped children's) from the window's start to its end, RSS at its end,
 *      podvisor's counters (gathers, scrapes, served-age histogram) between the last body before the window and the
 *      last body of the window
 *
 * Latency is request sent → last byte of the body received; the body is then gunzipped whole (off the clock, as
 * Prometheus decompresses while parsing; here only to check it and count its bytes). The served age is podvisor's
 * `X-Podvisor-Result-Age` header (absent: n/a).
 */
import http from 'node:http';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import { run, sleep } from './exec.js';
import { metric, PODVISOR_MAIN, scrape, stopExporter, type Exporter, type ExporterKind, type Scrape } from './exporter.js';
import { untilSteady, type RoundConfig } from './measure.js';
import { cpuTimes, loadavg, machineBusyPct, machineJiffies, rssMiB, type CpuTimes } from './proc.js';

const gunzip = promisify(gunzipCb);

/** What the scenario runs against: podvisor with gather-ahead (its default), podvisor without ("today"), cAdvisor. */
export type PromExporter = 'ahead' | 'today' | 'cadvisor';

export const PROM_LABELS: Record<PromExporter, string> = {
  ahead: 'podvisor, gather ahead',
  today: 'podvisor, --gather-ahead=false',
  cadvisor: 'cAdvisor 0.38.7',
};

export interface ScraperSpec {
  name: string;
  intervalS: number;
  /** scrape_timeout: min(interval, 10 s), sent as X-Prometheus-Scrape-Timeout-Seconds and enforced on the request */
  timeoutS: number;
  /** the first scrape comes this long after the scrapers start; then one every interval */
  offsetS: number;
  /** loopback source address (several Prometheus replicas scrape from different addresses) */
  localAddress: string;
}

/**
 * Stable offsets: a fixed-seed generator (mulberry32), so every exporter and every run sees the same arrival
 * pattern, as one Prometheus keeps one offset per target (a hash of the target and the server).
 */
function offsets(count: number, seed = 0x9e3779b9): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

export function promScrapers(): ScraperSpec[] {
  const r = offsets(3);
  return [5, 15, 30].map((intervalS, i) => ({
    name: `every ${intervalS} s`,
    intervalS,
    timeoutS: Math.min(intervalS, 10),
    offsetS: Math.round((r[i] ?? 0) * intervalS * 1000) / 1000,
    localAddress: `127.0.0.${i + 2}`,
  }));
}

/**
 * The headers of Prometheus 2.53.0's scrape request (scrape/scrape.go): Accept from the default scrape_protocols
 * (OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText0.0.4) weighted by acceptHeader(), gzip, its User-Agent,
 * and the timeout formatted as strconv.FormatFloat(seconds, 'f', -1, 64).
 */
export const PROM_ACCEPT =
  'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';
export const PROM_USER_AGENT = 'Prometheus/2.53.0';

function promHeaders(s: ScraperSpec): Record<string, string> {
  return {
    accept: PROM_ACCEPT,
    'accept-encoding': 'gzip',
    'user-agent': PROM_USER_AGENT,
    'x-prometheus-scrape-timeout-seconds': String(s.timeoutS),
  };
}

/** One scrape of one scraper. Times in ms from the scrapers' start. */
export interface PromScrape {
  scraper: string;
  /** when it was due, and how late it went out (timer and event-loop delay) */
  dueMs: number;
  lateMs: number;
  /** sent → body fully read; NaN when it failed */
  ms: number;
  doneMs: number;
  /** the HTTP status, or `timeout` (no complete answer within the scrape timeout) or `error` */
  status: string;
  /** X-Podvisor-Result-Age, seconds; absent when the exporter did not send it */
  ageS?: number;
  wireBytes: number;
  /** gunzipped */
  bytes: number;
  contentType: string;
  /** sent inside the measured window */
  measured: boolean;
}

/** podvisor's counters, as carried by one body. */
export interface PodvisorCounters {
  /** podvisor_gathers_total, every result */
  gathers: number;
  /** podvisor_scrapes_total (NaN: no such metric in this build) */
  scrapes: number;
  ageSum: number;
  ageCount: number;
  /** podvisor_scrape_result_age_seconds_bucket{le="1"} (NaN: no such bucket) */
  ageLe1: number;
  gatherSum: number;
  gatherCount: number;
}

export interface PromRun {
  exporter: PromExporter;
  flags: string[];
  path: string;
  startedAt: string;
  readyS: number;
  diskSettleS?: number;
  warmupS: number;
  /** the measured window as it ran, s */
  windowS: number;
  scrapes: PromScrape[];
  /** utime + stime (self) and reaped children's, over the measured window, s */
  cpu: CpuTimes;
  rssMiB: number;
  machineBusyPct: number;
  /** podvisor: counters in the last body before the window and the window's last body; ownScrapes: answers we got between the two */
  counters?: { before: PodvisorCounters; after: PodvisorCounters; ownScrapes: number };
  loadBefore: string;
  loadAfter: string;
}

export interface PromData {
  n: number;
  warmupS: number;
  measuredS: number;
  scrapers: ScraperSpec[];
  accept: string;
  userAgent: string;
  /** this podvisor build knows --gather-ahead (else both podvisor runs ran its default) */
  aheadFlag: boolean;
  runs: PromRun[];
}

/** Sum of every sample of `name` (any labels) in an exposition; NaN when there is none. */
export function sumSamples(body: string, name: string): number {
  let sum = NaN;
  for (let at = body.indexOf(name); at >= 0; at = body.indexOf(name, at + name.length)) {
    if (at > 0 && body[at - 1] !== '\n') continue;
    const next = body[at + name.length];
    if (next !== ' ' && next !== '{') continue;
    const end = body.indexOf('\n', at);
    const line = body.slice(at, end < 0 ? undefined : end);
    const close = next === '{' ? line.lastIndexOf('}') : name.length;
    const v = Number(
      line
        .slice(close + 1)
        .trim()
        .split(' ')[0],
    );
    if (Number.isFinite(v)) sum = (Number.isNaN(sum) ? 0 : sum) + v;
  }
  return sum;
}

/** The `le` bucket of a histogram whose bound is 1 (`le="1"` or OpenMetrics' `le="1.0"`); NaN when there is none. */
function bucketLe1(body: string, name: string): number {
  const re = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)`, 'gm');
  for (let m = re.exec(body); m !== null; m = re.exec(body)) if (Number(m[1]) === 1) return Number(m[2]);
  return NaN;
}

export function podvisorCounters(body: string): PodvisorCounters {
  const age = 'podvisor_scrape_result_age_seconds';
  return {
    gathers: sumSamples(body, 'podvisor_gathers_total'),
    scrapes: sumSamples(body, 'podvisor_scrapes_total'),
    ageSum: metric(body, `${age}_sum`),
    ageCount: metric(body, `${age}_count`),
    ageLe1: bucketLe1(body, age),
    gatherSum: metric(body, 'podvisor_gather_duration_seconds_sum'),
    gatherCount: metric(body, 'podvisor_gather_duration_seconds_count'),
  };
}

/** True when this podvisor's --help lists --gather-ahead. */
export async function knowsGatherAhead(main = PODVISOR_MAIN): Promise<boolean> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, '--help'], { timeoutMs: 30_000 });
    return /--gather-ahead\b/.test(stdout + stderr);
  } catch {
    return false;
  }
}

interface Answer {
  status: string;
  ms: number;
  raw: Buffer;
  gzip: boolean;
  ageS?: number;
  contentType: string;
}

/** One request as Prometheus makes it: the whole of it (connect, headers, body) under the scrape timeout. */
function promGet(url: string, agent: http.Agent, s: ScraperSpec): Promise<Answer> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const finish = (a: Answer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const failed = (status: string): void => finish({ status, ms: NaN, raw: Buffer.alloc(0), gzip: false, contentType: '' });
    const req = http.get(url, { agent, localAddress: s.localAddress, headers: promHeaders(s) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const age = res.headers['x-podvisor-result-age'];
        const ageS = typeof age === 'string' && age.trim() !== '' ? Number(age) : NaN;
        finish({
          status: String(res.statusCode ?? 0),
          ms,
          raw: Buffer.concat(chunks),
          gzip: res.headers['content-encoding'] === 'gzip',
          ...(Number.isFinite(ageS) ? { ageS } : {}),
          contentType: res.headers['content-type'] ?? '',
        });
      });
      res.on('error', () => failed('error'));
      res.on('close', () => {
        if (!res.complete) failed('error');
      });
    });
    const timer = setTimeout(() => {
      failed('timeout');
      req.destroy();
    }, s.timeoutS * 1000);
    req.on('error', () => failed('error'));
  });
}

interface Body {
  doneMs: number;
  text: string;
}

interface Window {
  t0: number;
  /** measured window: [startMs, endMs) from t0 */
  startMs: number;
  endMs: number;
}

/** One scraper's loop until the window's end: a Go ticker (a tick missed while a scrape ran fires at once, once). */
async function scraperLoop(url: string, s: ScraperSpec, w: Window, out: PromScrape[], onBody: (b: Body, measured: boolean) => void): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: s.localAddress });
  const due = (k: number): number => (s.offsetS + k * s.intervalS) * 1000;
  try {
    for (let k = 0; due(k) < w.endMs;) {
      const wait = w.t0 + due(k) - performance.now();
      if (wait > 0) await sleep(wait);
      const sentMs = performance.now() - w.t0;
      const a = await promGet(url, agent, s);
      const doneMs = performance.now() - w.t0;
      const measured = due(k) >= w.startMs;
      let bytes = 0;
      if (a.status === '200') {
        try {
          const body = a.gzip ? await gunzip(a.raw) : a.raw;
          bytes = body.length;
          onBody({ doneMs, text: body.toString('utf8') }, measured);
        } catch {
          a.status = 'error';
        }
      }
      out.push({
        scraper: s.name,
        dueMs: due(k),
        lateMs: sentMs - due(k),
        ms: a.ms,
        doneMs,
        status: a.status,
        ...(a.ageS === undefined ? {} : { ageS: a.ageS }),
        wireBytes: a.raw.length,
        bytes,
        contentType: a.contentType,
        measured,
      });
      const now = performance.now() - w.t0;
      k++;
      // Ticks that passed while this scrape ran: the first fires at once (the ticker's one buffered tick), the rest are dropped.
      if (due(k) < now) while (due(k + 1) < now) k++;
    }
  } finally {
    agent.destroy();
  }
}

export interface PromConfig extends Pick<RoundConfig, 'n' | 'names' | 'dockerNames' | 'readyTimeoutS' | 'log'> {
  warmupS: number;
  measuredS: number;
  scrapers: ScraperSpec[];
}

/** Starts the exporter with `start`, runs the scrapers on it, stops it (also on failure). */
export async function promRun(exporter: PromExporter, flags: string[], start: () => Promise<Exporter>, cfg: PromConfig): Promise<PromRun> {
  const kind: ExporterKind = exporter === 'cadvisor' ? 'cadvisor' : 'podvisor';
  const say = (s: string): void => cfg.log(`N=${cfg.n} Prometheus-like scrapers, ${PROM_LABELS[exporter]}: ${s}`);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const e = await start();
  try {
    const get = (): Promise<Scrape> => scrape(e.url, { timeoutMs: 300_000 });
    const steady = await untilSteady(kind, get, cfg, t0, say);
    const path = kind === 'podvisor' ? '/metrics/cadvisor' : '/metrics';
    say(`${cfg.scrapers.length} scrapers on ${path}: ${cfg.warmupS} s warm-up, then ${cfg.measuredS} s measured`);
    const w: Window = { t0: performance.now(), startMs: cfg.warmupS * 1000, endMs: (cfg.warmupS + cfg.measuredS) * 1000 };
    const scrapes: PromScrape[] = [];
    let latest: Body | undefined;
    let before: Body | undefined;
    let lastMeasured: Body | undefined;
    const onBody = (b: Body, measured: boolean): void => {
      if (kind !== 'podvisor') return;
      if (latest === undefined || b.doneMs > latest.doneMs) latest = b;
      if (measured && (lastMeasured === undefined || b.doneMs > lastMeasured.doneMs)) lastMeasured = b;
    };
    let cpu0: CpuTimes | undefined;
    let cpu1: CpuTimes | undefined;
    let j0: [number, number] = [0, 0];
    let j1: [number, number] = [0, 0];
    let rss = NaN;
    let windowS = NaN;
    const marks = (async () => {
      await sleep(w.t0 + w.startMs - performance.now());
      const m0 = performance.now();
      cpu0 = cpuTimes(e.pid);
      j0 = machineJiffies();
      before = latest;
      await sleep(w.t0 + w.endMs - performance.now());
      cpu1 = cpuTimes(e.pid);
      j1 = machineJiffies();
      rss = rssMiB(e.pid);
      windowS = (performance.now() - m0) / 1000;
    })();
    await Promise.all([...cfg.scrapers.map((s) => scraperLoop(`${e.url}${path}`, s, w, scrapes, onBody)), marks]);
    if (cpu0 === undefined || cpu1 === undefined) throw new Error('the measured window did not run');
    scrapes.sort((a, b) => a.dueMs - b.dueMs);
    const result: PromRun = {
      exporter,
      flags,
      path,
      startedAt,
      readyS: steady.readyS,
      ...(steady.diskSettleS === undefined ? {} : { diskSettleS: steady.diskSettleS }),
      warmupS: cfg.warmupS,
      windowS,
      scrapes,
      cpu: { self: cpu1.self - cpu0.self, children: cpu1.children - cpu0.children },
      rssMiB: rss,
      machineBusyPct: machineBusyPct(j0, j1),
      loadBefore,
      loadAfter: loadavg(),
    };
    const b0 = before;
    const b1 = lastMeasured;
    if (b0 !== undefined && b1 !== undefined) {
      const ownScrapes = scrapes.filter((s) => s.status !== 'timeout' && s.status !== 'error' && s.doneMs > b0.doneMs && s.doneMs <= b1.doneMs).length;
      result.counters = { before: podvisorCounters(b0.text), after: podvisorCounters(b1.text), ownScrapes };
    }
    const m = scrapes.filter((s) => s.measured);
    const ok = m.filter((s) => s.status === '200').map((s) => s.ms);
    ok.sort((a, b) => a - b);
    say(
      `${m.length} scrapes measured (${ok.length} answered 200), p50 ${ok[Math.floor(ok.length / 2)]?.toFixed(1) ?? '–'} ms; CPU ${(result.cpu.self + result.cpu.children).toFixed(2)} s in ${windowS.toFixed(0)} s; RSS ${rss.toFixed(1)} MiB`,
    );
    return result;
  } catch (err) {
    const exited = e.proc.exitCode !== null || e.proc.signalCode !== null;
    throw new Error(
      `N=${cfg.n} Prometheus-like scrapers, ${PROM_LABELS[exporter]}: ${err instanceof Error ? err.message : String(err)}${exited ? ` (${kind} exited: ${e.tail()})` : ''}`,
      { cause: err },
    );
  } finally {
    await stopExporter(e);
  }
}
