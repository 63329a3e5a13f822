/**
 * One measured round of one exporter on the current node state. The exporter is started fresh and stopped at the
 * end, so the other exporter never runs during this round (and its idle window). In order:
 *
 *   1. start; wait until /metrics names every bench container (N distinct `name` labels, as cadvisor-baseline.sh)
 *   2. wait for the first disk-usage pass (podvisor: walk queue empty and ≥ N measurements done; cAdvisor: a non-zero
 *      container_fs_usage_bytes on every bench Docker container), so later phases see the steady state
 *   3. warm-up scrapes, then `runs` sequential scrapes: latency, podvisor's gather duration (Δ of
 *      podvisor_gather_duration_seconds_sum, which each body carries for its own gather), CPU per scrape
 *   4. the idle window: a scrape every 15 s for `idleSeconds`; CPU (own + reaped children) over the whole window
 *      ("total at a 15 s interval") and outside the scrapes ("between scrapes"), per interval; RSS at rest at its end
 *   5. from rest, one scrape after a VmHWM reset: the single scrape's peak RSS; 2 s later
 *   6. `concurrency` concurrent scrapes after a VmHWM reset: each latency, the slowest, peak RSS (VmHWM; an RSS
 *      sampler every 20 ms as a cross-check), gathers run (podvisor)
 */
import { containerNames, exposition, metric, scrape, stopExporter, type Exporter, type ExporterKind, type Exposition, type Scrape } from './exporter.js';
import { sleep } from './exec.js';
import { cpuOf, cpuTimes, cpuTotal, hwmMiB, loadavg, machineBusyPct, machineJiffies, pidsByComm, resetHwm, rssMiB, RssSampler } from './proc.js';

export interface RoundConfig {
  n: number;
  round: number;
  runs: number;
  warmups: number;
  idleSeconds: number;
  intervalSeconds: number;
  concurrency: number;
  /** the `name` label of every bench container */
  names: ReadonlySet<string>;
  /** the bench Docker containers' names (cAdvisor measures disk usage for those only) */
  dockerNames: ReadonlySet<string>;
  readyTimeoutS: number;
  log: (s: string) => void;
}

export interface IdleInterval {
  /** CPU % of one core from this scrape's start to the next one's (or the window's end) */
  totalPct: number;
  /** CPU % of one core from this scrape's end to the next one's start */
  betweenPct: number;
}

export interface RoundResult {
  kind: ExporterKind;
  n: number;
  round: number;
  startedAt: string;
  /** spawn → every bench container named in /metrics */
  readyS: number;
  /** named → first disk-usage pass seen complete (undefined: not seen within the time limit) */
  diskSettleS: number | undefined;
  cgroups: number | undefined;
  seqMs: number[];
  /** podvisor only */
  gatherMs: number[];
  cpuPerScrapeMs: number;
  seqMachineBusyPct: number;
  exposition: Exposition;
  wireBytes: number;
  singleMs: number;
  singleHwmMiB: number;
  /** VmHWM reset worked (else the peaks are 20 ms RSS samples) */
  hwmReset: boolean;
  idle: {
    windowS: number;
    scrapes: number;
    totalPct: number;
    betweenPct: number;
    intervals: IdleInterval[];
    /** CPU of reaped children (du, find) over the window, seconds */
    childrenCpuS: number;
    /** dockerd + containerd CPU over the window, % of one core (context: runtime calls cost there) */
    daemonsPct: number;
    machineBusyPct: number;
    /** podvisor: disk walks finished and files walked, between the window's first and last scrape */
    walks?: number;
    walkFiles?: number;
  };
  restRssMiB: number;
  conc: {
    ms: number[];
    wallMs: number;
    hwmMiB: number;
    sampledPeakMiB: number;
    cpuS: number;
    machineBusyPct: number;
    /** podvisor: gathers run for the batch */
    gathers?: number;
  };
  non200: number;
  loadBefore: string;
  loadAfter: string;
}

const FS_USAGE = /^container_fs_usage_bytes\{[^\n]*?[{,]name="([^"]+)"[^\n]*\} (\S+)/gm;

function fsUsageByName(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (let m = FS_USAGE.exec(body); m !== null; m = FS_USAGE.exec(body)) out.set(m[1] ?? '', Math.max(out.get(m[1] ?? '') ?? 0, Number(m[2])));
  return out;
}

const diskWalks = (body: string): number =>
  metric(body, 'podvisor_disk_walks_total{result="ok"}') +
  metric(body, 'podvisor_disk_walks_total{result="timeout"}') +
  metric(body, 'podvisor_disk_walks_total{result="error"}');

export interface Steady {
  /** spawn → every bench container named in /metrics */
  readyS: number;
  /** named → first disk-usage pass seen complete (undefined: not seen within 300 s) */
  diskSettleS: number | undefined;
  /** the last scrape made while waiting */
  last: Scrape;
}

/**
 * Steps 1 and 2 of a round, also used by the scenario of lib/prom.ts: scrapes with `get` every second until /metrics
 * names every bench container (fails after `readyTimeoutS` from `t0`, the spawn), then until the first disk-usage pass
 * is seen complete (300 s at most, then goes on).
 */
export async function untilSteady(
  kind: ExporterKind,
  get: () => Promise<Scrape>,
  cfg: Pick<RoundConfig, 'n' | 'names' | 'dockerNames' | 'readyTimeoutS'>,
  t0: number,
  say: (s: string) => void,
): Promise<Steady> {
  // 1. every bench container named
  let last: Scrape;
  const readyDeadline = t0 + cfg.readyTimeoutS * 1000;
  for (;;) {
    last = await get();
    const names = containerNames(last.body);
    const missing = [...cfg.names].filter((n) => !names.has(n)).length;
    if (missing === 0) break;
    if (performance.now() > readyDeadline)
      throw new Error(`${kind}: ${missing} of ${cfg.names.size} bench containers still unnamed in /metrics after ${cfg.readyTimeoutS} s`);
    await sleep(1000);
  }
  const readyS = (performance.now() - t0) / 1000;

  // 2. the first disk-usage pass
  const d0 = performance.now();
  let diskSettleS: number | undefined;
  for (;;) {
    const body = last.body;
    let done: boolean;
    if (kind === 'podvisor') done = metric(body, 'podvisor_disk_walk_queue_length') === 0 && diskWalks(body) >= cfg.n;
    else {
      const usage = fsUsageByName(body);
      done = [...cfg.dockerNames].every((n) => (usage.get(n) ?? 0) > 0);
    }
    if (done) {
      diskSettleS = (performance.now() - d0) / 1000;
      break;
    }
    if (performance.now() - d0 > 300_000) {
      say('first disk-usage pass not seen complete within 300 s; measuring anyway');
      break;
    }
    await sleep(1000);
    last = await get();
  }
  say(`named after ${readyS.toFixed(1)} s, disk pass ${diskSettleS === undefined ? 'not seen' : `${diskSettleS.toFixed(1)} s later`}`);

  return { readyS, diskSettleS, last };
}

/** Starts the exporter with `start`, measures one round, stops it (also on failure). */
export async function measureRound(kind: ExporterKind, start: () => Promise<Exporter>, cfg: RoundConfig): Promise<RoundResult> {
  const say = (s: string): void => cfg.log(`N=${cfg.n} round ${cfg.round + 1} ${kind}: ${s}`);
  const loadBefore = loadavg();
  const t0 = performance.now();
  const e = await start();
  try {
    return await measure(e, kind, cfg, say, t0, loadBefore);
  } catch (err) {
    const exited = e.proc.exitCode !== null || e.proc.signalCode !== null;
    throw new Error(
      `N=${cfg.n} round ${cfg.round + 1} ${kind}: ${err instanceof Error ? err.message : String(err)}${exited ? ` (${kind} exited: ${e.tail()})` : ''}`,
      { cause: err },
    );
  } finally {
    await stopExporter(e);
  }
}

async function measure(e: Exporter, kind: ExporterKind, cfg: RoundConfig, say: (s: string) => void, t0: number, loadBefore: string): Promise<RoundResult> {
  const pid = e.pid;
  let non200 = 0;
  const get = async (timeoutMs = 300_000): Promise<Scrape> => {
    const s = await scrape(e.url, { timeoutMs });
    if (s.status !== 200) non200++;
    return s;
  };

  // 1–2. every bench container named, the first disk-usage pass done
  const steady = await untilSteady(kind, get, cfg, t0, say);
  const { readyS, diskSettleS } = steady;
  let last = steady.last;

  // 3. warm-up, sequential scrapes
  for (let i = 0; i < cfg.warmups; i++) last = await get();
  let prevSum = metric(last.body, 'podvisor_gather_duration_seconds_sum');
  let prevCount = metric(last.body, 'podvisor_gather_duration_seconds_count');
  const seqMs: number[] = [];
  const gatherMs: number[] = [];
  const c0 = cpuTotal(pid);
  const j0 = machineJiffies();
  for (let i = 0; i < cfg.runs; i++) {
    last = await get();
    seqMs.push(last.ms);
    if (kind === 'podvisor') {
      const sum = metric(last.body, 'podvisor_gather_duration_seconds_sum');
      const count = metric(last.body, 'podvisor_gather_duration_seconds_count');
      if (count - prevCount === 1) gatherMs.push((sum - prevSum) * 1000);
      prevSum = sum;
      prevCount = count;
    }
  }
  const cpuPerScrapeMs = ((cpuTotal(pid) - c0) / cfg.runs) * 1000;
  const seqMachineBusyPct = machineBusyPct(j0, machineJiffies());
  const expo = exposition(last.body);
  const wireBytes = last.wireBytes;
  const cgroups = kind === 'podvisor' ? metric(last.body, 'podvisor_cgroups') : undefined;
  say(`${cfg.runs} sequential scrapes, median ${[...seqMs].sort((a, b) => a - b)[Math.floor(seqMs.length / 2)]?.toFixed(0)} ms`);

  // 4. the idle window: a scrape every intervalSeconds
  say(`idle window: ${cfg.idleSeconds} s, a scrape every ${cfg.intervalSeconds} s`);
  const daemons = [...pidsByComm('dockerd'), ...pidsByComm('containerd')];
  const w0 = performance.now();
  const wEnd = w0 + cfg.idleSeconds * 1000;
  const wc0 = cpuTimes(pid);
  const dc0 = cpuOf(daemons);
  const wj0 = machineJiffies();
  const marks: { tb: number; cb: number; ta: number; ca: number }[] = [];
  let firstIdle: Scrape | undefined;
  for (let k = 0; ; k++) {
    const at = w0 + k * cfg.intervalSeconds * 1000;
    if (at >= wEnd) break;
    await sleep(Math.max(0, at - performance.now()));
    const tb = performance.now();
    const cb = cpuTotal(pid);
    last = await get();
    marks.push({ tb, cb, ta: performance.now(), ca: cpuTotal(pid) });
    firstIdle ??= last;
  }
  await sleep(Math.max(0, wEnd - performance.now()));
  const tEnd = performance.now();
  const cEnd = cpuTotal(pid);
  const wc1 = cpuTimes(pid);
  const restRssMiB = rssMiB(pid);
  const intervals: IdleInterval[] = marks.map((m, i) => {
    const next = marks[i + 1];
    const [tn, cn] = next === undefined ? [tEnd, cEnd] : [next.tb, next.cb];
    return { totalPct: ((cn - m.cb) / ((tn - m.tb) / 1000)) * 100, betweenPct: ((cn - m.ca) / ((tn - m.ta) / 1000)) * 100 };
  });
  let gapCpu = 0;
  let gapS = 0;
  marks.forEach((m, i) => {
    const next = marks[i + 1];
    gapCpu += (next === undefined ? cEnd : next.cb) - m.ca;
    gapS += ((next === undefined ? tEnd : next.tb) - m.ta) / 1000;
  });
  const windowS = (tEnd - w0) / 1000;
  const idle: RoundResult['idle'] = {
    windowS,
    scrapes: marks.length,
    totalPct: ((wc1.self + wc1.children - wc0.self - wc0.children) / windowS) * 100,
    betweenPct: (gapCpu / gapS) * 100,
    intervals,
    childrenCpuS: wc1.children - wc0.children,
    daemonsPct: ((cpuOf(daemons) - dc0) / windowS) * 100,
    machineBusyPct: machineBusyPct(wj0, machineJiffies()),
  };
  if (kind === 'podvisor' && firstIdle !== undefined) {
    idle.walks = diskWalks(last.body) - diskWalks(firstIdle.body);
    idle.walkFiles = metric(last.body, 'podvisor_disk_walk_files_total') - metric(firstIdle.body, 'podvisor_disk_walk_files_total');
  }
  say(`idle: ${idle.betweenPct.toFixed(2)}% between scrapes, ${idle.totalPct.toFixed(2)}% in total; RSS at rest ${restRssMiB.toFixed(1)} MiB`);

  // 5. one scrape's peak RSS, from rest
  const hwmReset = resetHwm(pid);
  let sampler = new RssSampler(pid);
  const single = await get();
  const singleSampled = sampler.stop();
  const singleHwmMiB = hwmReset ? hwmMiB(pid) : singleSampled;
  await sleep(2000);

  // 6. concurrent scrapes, from the same state
  const gathersBefore = metric(single.body, 'podvisor_gathers_total{result="success"}');
  resetHwm(pid);
  sampler = new RssSampler(pid);
  const cc0 = cpuTotal(pid);
  const cj0 = machineJiffies();
  const b0 = performance.now();
  const batch = await Promise.all(Array.from({ length: cfg.concurrency }, () => get()));
  const wallMs = performance.now() - b0;
  const concCpuS = cpuTotal(pid) - cc0;
  const concBusy = machineBusyPct(cj0, machineJiffies());
  const sampledPeakMiB = sampler.stop();
  const concHwm = hwmReset ? hwmMiB(pid) : sampledPeakMiB;
  const conc: RoundResult['conc'] = { ms: batch.map((s) => s.ms), wallMs, hwmMiB: concHwm, sampledPeakMiB, cpuS: concCpuS, machineBusyPct: concBusy };
  if (kind === 'podvisor') conc.gathers = Math.max(...batch.map((s) => metric(s.body, 'podvisor_gathers_total{result="success"}'))) - gathersBefore;
  say(
    `${cfg.concurrency} concurrent: slowest ${Math.max(...conc.ms).toFixed(0)} ms, peak RSS ${concHwm.toFixed(1)} MiB (single scrape ${singleHwmMiB.toFixed(1)} MiB)`,
  );

  return {
    kind,
    n: cfg.n,
    round: cfg.round,
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    readyS,
    diskSettleS,
    cgroups,
    seqMs,
    gatherMs,
    cpuPerScrapeMs,
    seqMachineBusyPct,
    exposition: expo,
    wireBytes,
    singleMs: single.ms,
    singleHwmMiB,
    hwmReset,
    idle,
    restRssMiB,
    conc,
    non200,
    loadBefore,
    loadAfter: loadavg(),
  };
}
