/** The markdown report of a run: targets first, then machine and scenario, per-N tables, ratios, walker, raw rounds. */
import {
  fmtCpu,
  fmtMiB,
  fmtMs,
  fmtPct,
  fmtS,
  promTargets,
  summarizeN,
  summarizeProm,
  targets,
  walkerTargets,
  type ExporterSummary,
  type NSummary,
  type PromSummary,
  type RunData,
  type ScrapeGroup,
  type Target,
} from './results.js';
import { PROM_LABELS, type PromData } from './prom.js';
import { median, ratio, summarize, type Summary } from './stats.js';

const TARGET_N = 200;

const dash = '–';
const num = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : dash);
/** "min / median / p95 / max" */
const four = (s: Summary | undefined, digits = 1, unit = ''): string =>
  s === undefined || s.n === 0 ? dash : `${num(s.min, digits)} / **${num(s.median, digits)}** / ${num(s.p95, digits)} / ${num(s.max, digits)}${unit}`;
const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : dash);
const kib = (b: number): string => (Number.isFinite(b) ? `${(b / 1024).toFixed(0)} KiB` : dash);

function targetRows(ts: Target[]): string[] {
  return ['| target | measured | limit | result |', '|---|---|---|---|', ...ts.map((t) => `| ${t.what} | ${t.measured} | ${t.limit} | **${t.verdict}** |`)];
}

function perExporterRows(pv: ExporterSummary, cad: ExporterSummary | undefined, floor: Summary): string[] {
  const row = (what: string, f: (s: ExporterSummary) => string, floorCell = dash): string =>
    `| ${what} | ${f(pv)} | ${cad === undefined ? 'not measured' : f(cad)} | ${floorCell} |`;
  return [
    '| measure (min / **median** / p95 / max) | podvisor | cAdvisor 0.38.7 | native floor |',
    '|---|---|---|---|',
    row('/metrics latency, sequential, ms', (s) => four(s.scrape), four(floor, 1)),
    row(
      'gather duration, ms (podvisor_gather_duration_seconds; floor: one pass)',
      (s) => (s === cad ? 'n/a (no separate gather)' : four(s.gather)),
      four(floor, 1),
    ),
    row('20 concurrent scrapes: slowest of the batch, ms (per round)', (s) => four(s.concSlowest, 0)),
    row('20 concurrent scrapes: every response, ms', (s) => four(s.concAll, 0)),
    row('peak RSS of a single scrape (VmHWM), MiB (per round)', (s) => four(s.singleHwm)),
    row('peak RSS under 20 concurrent scrapes (VmHWM), MiB (per round)', (s) => four(s.concHwm)),
    row('concurrent peak / single-scrape peak (per round)', (s) => four(s.hwmRatio, 2)),
    row('idle CPU between scrapes, % of a core (per 15 s interval)', (s) => four(s.idleBetween, 2)),
    row('CPU in total at a 15 s scrape interval, % of a core (per interval)', (s) => four(s.idleTotal, 2)),
    row('RSS at rest (VmRSS after the idle window), MiB (per round)', (s) => four(s.restRss)),
    row('CPU per sequential scrape, ms (per round)', (s) => four(s.cpuPerScrape, 0)),
    row('exposition, KiB (uncompressed)', (s) =>
      four(
        summarizeMap(s.bytes, (v) => v / 1024),
        0,
      ),
    ),
    row('exposition on the wire (gzip), KiB', (s) =>
      four(
        summarizeMap(s.wireBytes, (v) => v / 1024),
        0,
      ),
    ),
    row(
      'series (sample lines) / `container_*` / families, median',
      (s) => `${num(s.series.median, 0)} / ${num(s.containerSeries.median, 0)} / ${num(s.families.median, 0)}`,
    ),
    row('start → every bench container named, s (per round)', (s) => four(s.readyS)),
    row("children's CPU (du, find) in the idle window, s (per round)", (s) => four(s.childrenCpuS, 2)),
  ];
}

/** A Summary with every statistic mapped (for unit changes). */
function summarizeMap(s: Summary, f: (v: number) => number): Summary {
  return { n: s.n, min: f(s.min), median: f(s.median), p95: f(s.p95), p99: f(s.p99), max: f(s.max) };
}

function ratioRows(s: NSummary): string[] {
  const pv = s.podvisor;
  const cad = s.cadvisor;
  const r = (what: string, a: number, b: number | undefined): string => `| ${what} | ${x(ratio(a, b))} |`;
  return [
    '| ratio (medians) | value |',
    '|---|---|',
    r('podvisor scrape / native floor', pv.scrape.median, s.floor.median),
    r('podvisor gather / native floor', pv.gather.median, s.floor.median),
    r('podvisor / cAdvisor: scrape latency', pv.scrape.median, cad?.scrape.median),
    r('podvisor / cAdvisor: slowest of 20 concurrent', pv.concSlowest.median, cad?.concSlowest.median),
    r('podvisor / cAdvisor: peak RSS under 20 concurrent', pv.concHwm.median, cad?.concHwm.median),
    r('podvisor / cAdvisor: idle CPU between scrapes', pv.idleBetween.median, cad?.idleBetween.median),
    r('podvisor / cAdvisor: CPU in total at a 15 s interval', pv.idleTotal.median, cad?.idleTotal.median),
    r('podvisor / cAdvisor: RSS at rest', pv.restRss.median, cad?.restRss.median),
    r('podvisor / cAdvisor: CPU per scrape', pv.cpuPerScrape.median, cad?.cpuPerScrape.median),
    r('podvisor / cAdvisor: exposition bytes', pv.bytes.median, cad?.bytes.median),
    r('podvisor / cAdvisor: series', pv.series.median, cad?.series.median),
  ];
}

const statusCell = (g: ScrapeGroup): string =>
  Object.entries(g.status)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ') || dash;
/** "p50 / p99 / max" */
const three = (s: Summary, f: (v: number) => string): string => (s.n === 0 ? 'n/a' : `**${f(s.median)}** / ${f(s.p99)} / ${f(s.max)}`);
const ageCell = (g: ScrapeGroup): string => (g.age.n === 0 ? 'n/a (no header)' : three(g.age, fmtS));

/** The Prometheus-like scrapers section (lib/prom.ts). */
function promSection(d: PromData, s: PromSummary, svgName: string | undefined): string[] {
  const out: string[] = [];
  const firstRun = d.runs[0];
  out.push(
    `## Prometheus-like scrapers (${d.n} containers)`,
    '',
    `Three scrapers behaving like Prometheus 2.53.0 scrape loops, on one exporter at a time (started fresh, every bench container named and the first disk-usage pass done before the scrapers start): each scrapes at a fixed interval with a stable offset, on its own keep-alive connection from its own loopback address, with Prometheus' headers (\`Accept: ${d.accept}\`, \`Accept-Encoding: gzip\`, \`User-Agent: ${d.userAgent}\`, \`X-Prometheus-Scrape-Timeout-Seconds\`) and the scrape timeout as the deadline of the whole request. ${d.warmupS} s of warm-up (the exporter learns the schedules), then ${d.measuredS} s measured: the scrapes sent in that window. Latency is request sent → body fully read (the body is gunzipped afterwards); served age is podvisor's \`X-Podvisor-Result-Age\` header (now − the start of the gather that produced the result); CPU is the exporter's utime + stime (and reaped children's) over the window. podvisor is scraped on ${firstRun?.path ?? '/metrics/cadvisor'} (the ServiceMonitor's path), cAdvisor on /metrics.`,
    '',
    '| scraper | interval | timeout (header) | offset in its interval | source address |',
    '|---|---|---|---|---|',
    ...d.scrapers.map((x) => `| ${x.name} | ${x.intervalS} s | ${x.timeoutS} s | ${x.offsetS.toFixed(3)} s | ${x.localAddress} |`),
    '',
  );
  if (!d.aheadFlag)
    out.push(
      'This podvisor build has no `--gather-ahead` flag: both podvisor rows ran with its default flags (no gathering ahead), and the targets are not judged.',
      '',
    );
  out.push(
    '| exporter | scrapes | status | latency p50 / p99 / max | served age p50 / p99 / max | CPU per 5 s (% of a core) | RSS at the end | gathers / scrapes | mean gather | answered as |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of s.runs) {
    const gs = Number.isFinite(r.gathers) ? `${r.gathers} / ${r.scrapes} (${r.scrapesFrom})` : `n/a / ${num(r.scrapes, 0)}`;
    out.push(
      `| ${r.label} | ${r.all.scrapes} | ${statusCell(r.all)} | ${three(r.all.latency, fmtMs)} | ${ageCell(r.all)} | ${fmtCpu(r.cpuPer5s)} (${fmtPct(r.cpuPct)}) | ${fmtMiB(r.rssMiB)} | ${gs} | ${fmtMs(r.gatherMeanMs)} | ${r.contentTypes.map((t) => `\`${t}\``).join(', ') || dash} |`,
    );
  }
  out.push(
    '',
    'Per scraper:',
    '',
    '| exporter | scraper | scrapes | status | latency p50 / p99 / max | served age p50 / p99 / max | latest send |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of s.runs)
    for (const p of r.perScraper)
      out.push(
        `| ${r.label} | ${p.name} | ${p.g.scrapes} | ${statusCell(p.g)} | ${three(p.g.latency, fmtMs)} | ${ageCell(p.g)} | ${fmtMs(p.g.lateMaxMs)} late |`,
      );
  out.push('');
  const hist = s.runs.filter((r) => Number.isFinite(r.histAgeMean));
  if (hist.length > 0)
    out.push(
      `podvisor's own \`podvisor_scrape_result_age_seconds\` over the window: ${hist.map((r) => `${r.label}: mean ${fmtS(r.histAgeMean)}${Number.isFinite(r.histAgeLe1) ? `, ${(r.histAgeLe1 * 100).toFixed(0)}% ≤ 1 s` : ''}`).join('; ')}.`,
      '',
    );
  out.push(
    `Native floor at ${s.n} containers (same run): one pass p50 ${fmtMs(s.floor.median)}. Load average before → after: ${d.runs.map((r) => `${r.exporter} ${r.loadBefore} → ${r.loadAfter}`).join('; ')}; machine busy over the window: ${d.runs.map((r) => `${r.exporter} ${fmtPct(r.machineBusyPct)}`).join(', ')}.`,
    '',
  );
  if (svgName !== undefined) out.push(`![scrape p50 latency per exporter under the Prometheus-like scrapers](${svgName})`, '');
  out.push('<details><summary>every scrape of the measured window (ms, served age in brackets)</summary>', '');
  for (const r of d.runs)
    for (const x of d.scrapers) {
      const list = r.scrapes
        .filter((y) => y.measured && y.scraper === x.name)
        .map((y) => (y.status === '200' ? `${y.ms.toFixed(1)}${y.ageS === undefined ? '' : ` (${fmtS(y.ageS)})`}` : y.status));
      out.push(`- ${PROM_LABELS[r.exporter]}, ${x.name}: ${list.join(', ')}`);
    }
  out.push('', '</details>', '');
  return out;
}

export function renderReport(data: RunData, svgName: string, promSvgName?: string): string {
  const out: string[] = [];
  const say = (...lines: string[]): void => {
    out.push(...lines);
  };
  const o = data.options;
  const summaries = data.perN.map(summarizeN);
  const counts = o.containers.join(', ');
  const minutes = (Date.parse(data.finishedAt) - Date.parse(data.startedAt)) / 60_000;

  say(`# podvisor benchmark: ${counts} containers${o.cadvisor === undefined ? '' : ', against cAdvisor'}`, '');
  say(
    `Run ${data.startedAt.replace('T', ' ').slice(0, 16)} UTC, ${Number.isFinite(minutes) ? `${minutes.toFixed(0)} min` : 'incomplete (re-rendered from the data saved so far)'}, by \`${o.command}\` (bench/README.md says what each measure means).`,
    `Each container count: ${o.rounds} round(s) per exporter, interleaved${o.cadvisor === undefined ? '' : ' ABBA (podvisor, cAdvisor, then cAdvisor, podvisor, ...)'}, each on a freshly started exporter; ${o.runs} sequential scrapes per round; the idle window ${o.idleSeconds} s with a scrape every ${o.intervalSeconds} s; ${o.concurrency} concurrent scrapes; the native reader ${o.runs} passes after each round pair.`,
    'Scrapes are made as Prometheus makes them (keep-alive, `Accept-Encoding: gzip`, text format 0.0.4); latency is request sent → last byte received. Absolute times drift on this shared 2-core machine: read the ratios.',
    '',
  );

  // ---- targets
  const judged = summaries.find((s) => s.n === TARGET_N);
  say(`## Targets${judged === undefined ? '' : ` at ${TARGET_N} containers`}`, '');
  say('Judged on medians over the rounds (the spread is in the results tables); each row says how its value is computed.', '');
  if (judged === undefined) say(`${TARGET_N} containers were not measured in this run; the targets below are shown for every count measured.`, '');
  for (const s of judged === undefined ? summaries : [judged]) {
    if (judged === undefined) say(`### ${s.n} containers`, '');
    say(...targetRows(targets(s)), '');
  }
  if (data.walker !== undefined)
    say(`Disk walker (earlier issues' targets, at ${data.walker.n} containers, same run):`, '', ...targetRows(walkerTargets(data.walker)), '');
  const prom = summarizeProm(data);
  if (data.prom !== undefined && prom !== undefined)
    say(
      `Gathering ahead of the scrape (issue 12, Prometheus-like scrapers at ${prom.n} containers, same run):`,
      '',
      ...targetRows(promTargets(data.prom, prom)),
      '',
    );
  if (summaries.length > 1) {
    say('The same targets at every container count (medians):', '');
    const ts = summaries.map((s) => ({ n: s.n, t: targets(s) }));
    const head = ts[0]?.t ?? [];
    say(`| target | ${ts.map((t) => `N=${t.n}`).join(' | ')} |`, `|---|${ts.map(() => '---').join('|')}|`);
    head.forEach((t, i) => say(`| ${t.what} | ${ts.map((y) => `${x(y.t[i]?.value ?? NaN)} ${y.t[i]?.verdict ?? ''}`).join(' | ')} |`));
    say('');
  }
  say(`![scrape p50 latency and RSS at rest against container count](${svgName})`, '');

  // ---- machine, versions
  const m = data.machine;
  const v = data.versions;
  say('## Machine and versions', '', '| | |', '|---|---|');
  say(
    `| CPUs | ${m.nproc} × ${m.cpuModel} |`,
    `| memory | ${m.memoryMiB} MiB |`,
    `| kernel / OS | ${m.kernel} / ${m.os} |`,
    `| cgroups | ${m.cgroups} |`,
    `| load average (1/5/15 min) | ${data.loadStart} at the start, ${data.loadEnd} at the end |`,
    `| podvisor | ${v.podvisor}, Node ${m.node}, default flags |`,
    `| cAdvisor | ${v.cadvisor === undefined ? 'not measured (no --cadvisor)' : `${v.cadvisor}, \`-logtostderr -docker_only=false\`, default housekeeping`} |`,
    `| Docker / containerd | ${v.docker} / ${v.containerd} |`,
    `| native floor | bench/native-reader.c, ${v.cc}, \`-O2\` |`,
    `| du | ${v.du} |`,
    '',
  );

  // ---- scenario
  say('## Scenario', '');
  say(
    `Kubernetes-shaped containers (\`podvisor-test:1\`, \`sleep 86400\`, kubelet labels), split between Docker (\`--cgroup-parent /kubepods/burstable/pod<uid>\`) and containerd (\`ctr -n k8s.io run --cgroup /kubepods/besteffort/pod<uid>/<id>\`); ${o.filesPerContainer.toLocaleString('en')} files written into each writable layer from inside the container (every 10th 20 bytes, the rest empty, ≤ 1,000 per directory). Other people's containers share the node: they are counted below.`,
    '',
    "| N | Docker + containerd | files in writable layers | started (s) | files written (s) | cgroups (cpu hierarchy) | podvisor's cgroups | others' containers (Docker / containerd) before → after |",
    '|---|---|---|---|---|---|---|---|',
  );
  for (const d of data.perN) {
    const pvCgroups = median(d.rounds.filter((r) => r.kind === 'podvisor').map((r) => r.cgroups ?? NaN));
    say(
      `| ${d.n} | ${d.setup.docker} + ${d.setup.containerd} | ${(d.n * o.filesPerContainer).toLocaleString('en')} | ${d.setup.startS.toFixed(1)} (${d.setup.started} new) | ${d.setup.fillS.toFixed(1)} (${d.setup.filesWritten.toLocaleString('en')} new) | ${d.nodeBefore.cgroupDirs} | ${num(pvCgroups, 0)} | ${d.nodeBefore.otherDocker} / ${d.nodeBefore.otherContainerd} → ${d.nodeAfter.otherDocker} / ${d.nodeAfter.otherContainerd} |`,
    );
  }
  say('');

  // ---- results per N
  say('## Results', '');
  for (const s of summaries) {
    say(`### ${s.n} containers`, '', ...perExporterRows(s.podvisor, s.cadvisor, s.floor), '', ...ratioRows(s), '');
  }

  // ---- walker
  if (data.walker !== undefined) {
    const w = data.walker;
    const t = w.throughput;
    say(`## Disk walker (${w.n} containers)`, '');
    say(
      `Throughput on the ${t.dirs} bench Docker containers' upper dirs (${t.entries.toLocaleString('en')} entries, \`du\` ${t.duBytes.toLocaleString('en')} bytes, walk() ${t.walkBytes.toLocaleString('en')} bytes), warm cache, ${t.runs.du1.length} runs each, interleaved:`,
      '',
      '| tool | min / **median** / p95 / max, ms | entries/s (median) | speed vs du (median) |',
      '|---|---|---|---|',
    );
    const row = (name: string, ms: number[], duMs: number[]): string => {
      const s = summarize(ms);
      return `| ${name} | ${four(s, 0)} | ${Math.round(t.entries / (s.median / 1000)).toLocaleString('en')} | ${x(ratio(median(duMs), s.median))} |`;
    };
    say(
      row('`du -s -B1 -x` over all dirs (one process)', t.runs.du1, t.runs.du1),
      row('walk() one dir after the other', t.runs.walk1, t.runs.du1),
      row('two `du` processes, half the dirs each', t.runs.du2, t.runs.du2),
      row('walk() two at a time (--disk-walk-concurrency=2)', t.runs.walk2, t.runs.du2),
      '',
    );
    say('Scrape latency, whole node, sequential scrapes (≥ 100 scrapes and ≥ 30 s each; the walk window opens once a first walk finished):', '');
    say(
      '| podvisor | scrapes | p50 | p99 | max | podvisor CPU | machine busy | walks / files in the window | load before → after |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const p of w.latency) {
      const s = summarize(p.ms);
      say(
        `| ${p.name} | ${p.ms.length} in ${p.windowS.toFixed(0)} s | ${fmtMs(s.median)} | ${fmtMs(s.p99)} | ${fmtMs(s.max)} | ${fmtPct(p.cpuPct)} of a core | ${fmtPct(p.machineBusyPct)} | ${p.walks === undefined ? dash : `${p.walks} / ${(p.walkFiles ?? 0).toLocaleString('en')}`} | ${p.loadBefore} → ${p.loadAfter} |`,
      );
    }
    say('');
  }

  // ---- Prometheus-like scrapers
  if (data.prom !== undefined && prom !== undefined) say(...promSection(data.prom, prom, promSvgName));

  // ---- notes
  if (data.notes.length > 0) say('## Notes', '', ...data.notes.map((n) => `- ${n}`), '');

  // ---- raw
  say('## Raw numbers per round', '');
  for (const d of data.perN) {
    say(`### ${d.n} containers`, '');
    say(
      '| round | exporter | named after (s) | disk pass (s) | seq p50 | gather p50 | CPU/scrape | single-scrape VmHWM | idle between / total | disk walks (files) in window | dockerd+containerd | RSS at rest | 20 concurrent: slowest | VmHWM (sampled) | gathers | body / wire | non-200 | load before → after |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const r of d.rounds) {
      say(
        `| ${r.round + 1} | ${r.kind} | ${r.readyS.toFixed(1)} | ${r.diskSettleS === undefined ? 'not seen' : r.diskSettleS.toFixed(1)} | ${fmtMs(median(r.seqMs))} | ${r.gatherMs.length === 0 ? dash : fmtMs(median(r.gatherMs))} | ${r.cpuPerScrapeMs.toFixed(0)} ms | ${fmtMiB(r.singleHwmMiB)} | ${fmtPct(r.idle.betweenPct)} / ${fmtPct(r.idle.totalPct)} | ${r.idle.walks === undefined ? dash : `${r.idle.walks} (${(r.idle.walkFiles ?? 0).toLocaleString('en')})`} | ${fmtPct(r.idle.daemonsPct)} | ${fmtMiB(r.restRssMiB)} | ${fmtMs(Math.max(...r.conc.ms))} | ${fmtMiB(r.conc.hwmMiB)} (${fmtMiB(r.conc.sampledPeakMiB)}) | ${r.conc.gathers ?? dash} | ${kib(r.exposition.bytes)} / ${kib(r.wireBytes)} | ${r.non200} | ${r.loadBefore} → ${r.loadAfter} |`,
      );
    }
    say(
      '',
      '| round | native floor: passes | min / **median** / p95 / max, ms | cgroups | files read / missing | fd dirs / readlinks |',
      '|---|---|---|---|---|---|',
    );
    d.floor.forEach((f, i) =>
      say(`| ${i + 1} | ${f.ms.length} | ${four(summarize(f.ms), 1)} | ${f.cgroups} | ${f.filesRead} / ${f.filesMissing} | ${f.fdDirs} / ${f.readlinks} |`),
    );
    say('', '<details><summary>every latency (ms, in order)</summary>', '');
    for (const r of d.rounds) {
      say(`- round ${r.round + 1} ${r.kind}, sequential: ${r.seqMs.map((v) => v.toFixed(1)).join(', ')}`);
      if (r.gatherMs.length > 0) say(`- round ${r.round + 1} ${r.kind}, gather: ${r.gatherMs.map((v) => v.toFixed(1)).join(', ')}`);
      say(`- round ${r.round + 1} ${r.kind}, concurrent (in order of the requests): ${r.conc.ms.map((v) => v.toFixed(0)).join(', ')}`);
      say(
        `- round ${r.round + 1} ${r.kind}, idle intervals between / total %: ${r.idle.intervals.map((i) => `${i.betweenPct.toFixed(2)}/${i.totalPct.toFixed(2)}`).join(', ')}`,
      );
    }
    d.floor.forEach((f, i) => say(`- native floor after round ${i + 1}: ${f.ms.map((v) => v.toFixed(1)).join(', ')}`));
    say('', '</details>', '');
  }
  return out.join('\n');
}
