/**
 * The run's chart as hand-written SVG (no chart library): two panels against container count, scrape latency (p50,
 * whiskers min–p95; podvisor, cAdvisor and the native floor) and RSS at rest (median, whiskers min–max; podvisor and
 * cAdvisor). The Prometheus-like scrapers scenario (one container count, a few exporters) gets its own small bar
 * chart: scrape p50 per exporter, a tick at p99, the native floor's pass p50 as a dashed line.
 */
import { summarizeN, summarizeProm, type RunData } from './results.js';
import type { Summary } from './stats.js';

interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: { n: number; s: Summary; lo: number; hi: number }[];
}

const W = 1000;
const H = 460;
const LEFT = 70;
const GAP = 100;
const PANEL_W = 400;
const PANEL_H = 300;
const TOP = 70;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round step (1, 2, 2.5 or 5 × 10^k) giving about `count` ticks up to `max`. */
function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

const fmtTick = (v: number): string => (Math.abs(v) >= 1000 ? `${v / 1000}k` : Number.isInteger(v) ? String(v) : v.toFixed(1));

function panel(x0: number, title: string, yLabel: string, series: Series[], counts: number[]): string {
  const out: string[] = [];
  // The scale follows the medians: a whisker reaching past twice the largest median (one noisy sample on a shared
  // machine) is cut at the top and labelled with its value.
  const medians = series.flatMap((s) => s.points.map((p) => p.s.median)).filter(Number.isFinite);
  const cap = Math.max(...medians, 1) * 2;
  const values = [...medians, ...series.flatMap((s) => s.points.map((p) => Math.min(p.hi, cap)))].filter(Number.isFinite);
  const yStep = niceStep(Math.max(...values, 1) * 1.1);
  const yMax = Math.ceil((Math.max(...values, 1) * 1.1) / yStep) * yStep;
  const xMax = Math.max(...counts, 1) * 1.08;
  const xStep = niceStep(xMax, 5);
  const px = (n: number): number => x0 + (n / xMax) * PANEL_W;
  const py = (v: number): number => TOP + PANEL_H - (v / yMax) * PANEL_H;

  out.push(`<text x="${x0 + PANEL_W / 2}" y="${TOP - 14}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x0 - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmtTick(v)}</text>`);
  }
  const xTicks = new Set<number>(counts);
  for (let v = 0; v <= xMax; v += xStep) if (![...xTicks].some((c) => Math.abs(px(c) - px(v)) < 28)) xTicks.add(v);
  for (const v of [...xTicks].sort((a, b) => a - b)) {
    out.push(`<line x1="${px(v).toFixed(1)}" x2="${px(v).toFixed(1)}" y1="${TOP + PANEL_H}" y2="${TOP + PANEL_H + 4}" stroke="#333"/>`);
    out.push(
      `<text x="${px(v).toFixed(1)}" y="${TOP + PANEL_H + 17}" text-anchor="middle" font-size="11"${counts.includes(v) ? ' font-weight="bold"' : ''}>${v}</text>`,
    );
  }
  out.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${TOP + PANEL_H}" y2="${TOP + PANEL_H}" stroke="#333"/>`);
  out.push(`<line x1="${x0}" x2="${x0}" y1="${TOP}" y2="${TOP + PANEL_H}" stroke="#333"/>`);
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${TOP + PANEL_H + 36}" text-anchor="middle" font-size="12">containers</text>`);
  out.push(`<text transform="translate(${x0 - 44} ${TOP + PANEL_H / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);

  series.forEach((s, si) => {
    const pts = s.points.filter((p) => Number.isFinite(p.s.median)).sort((a, b) => a.n - b.n);
    if (pts.length === 0) return;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    // Series side by side at the same count, 6 px apart, so their whiskers do not hide each other.
    const sx = (n: number): number => px(n) + (si - (series.length - 1) / 2) * 6;
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map((p) => `${sx(p.n).toFixed(1)},${py(p.s.median).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of pts) {
      const cx = sx(p.n).toFixed(1);
      if (Number.isFinite(p.lo) && Number.isFinite(p.hi)) {
        const cut = p.hi > yMax;
        const hi = Math.min(p.hi, yMax);
        out.push(`<line x1="${cx}" x2="${cx}" y1="${py(p.lo).toFixed(1)}" y2="${py(hi).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`);
        out.push(
          `<line x1="${(sx(p.n) - 4).toFixed(1)}" x2="${(sx(p.n) + 4).toFixed(1)}" y1="${py(p.lo).toFixed(1)}" y2="${py(p.lo).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
        if (cut) {
          out.push(
            `<path d="M${(sx(p.n) - 4).toFixed(1)},${(py(hi) + 6).toFixed(1)} L${cx},${py(hi).toFixed(1)} L${(sx(p.n) + 4).toFixed(1)},${(py(hi) + 6).toFixed(1)}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`,
          );
          out.push(
            `<text x="${(sx(p.n) - 6).toFixed(1)}" y="${(py(hi) + 10 + si * 11).toFixed(1)}" text-anchor="end" font-size="9" fill="${s.color}">↑${p.hi.toFixed(0)}</text>`,
          );
        } else {
          out.push(
            `<line x1="${(sx(p.n) - 4).toFixed(1)}" x2="${(sx(p.n) + 4).toFixed(1)}" y1="${py(hi).toFixed(1)}" y2="${py(hi).toFixed(1)}" stroke="${s.color}" stroke-width="1.5"/>`,
          );
        }
      }
      out.push(
        `<circle cx="${cx}" cy="${py(p.s.median).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}, ${p.n} containers: median ${p.s.median.toFixed(1)}, min ${p.s.min.toFixed(1)}, p95 ${p.s.p95.toFixed(1)}, max ${p.s.max.toFixed(1)}`)}</title></circle>`,
      );
      // podvisor and the floor label below their point, cAdvisor above: they rarely collide then.
      const dy = si === 1 ? -7 : 14;
      out.push(
        `<text x="${(sx(p.n) + 7).toFixed(1)}" y="${(py(p.s.median) + dy).toFixed(1)}" font-size="10" fill="${s.color}">${p.s.median >= 100 ? p.s.median.toFixed(0) : p.s.median.toFixed(1)}</text>`,
      );
    }
  });
  return out.join('\n');
}

export function renderChart(data: RunData): string {
  const sums = data.perN.map(summarizeN);
  const counts = sums.map((s) => s.n);
  const lat: Series[] = [
    { name: 'podvisor', color: '#1f6fb4', points: sums.map((s) => ({ n: s.n, s: s.podvisor.scrape, lo: s.podvisor.scrape.min, hi: s.podvisor.scrape.p95 })) },
    {
      name: 'cAdvisor 0.38.7',
      color: '#e0761a',
      points: sums.flatMap((s) => (s.cadvisor === undefined ? [] : [{ n: s.n, s: s.cadvisor.scrape, lo: s.cadvisor.scrape.min, hi: s.cadvisor.scrape.p95 }])),
    },
    { name: 'native floor (one pass)', color: '#6b6b6b', dashed: true, points: sums.map((s) => ({ n: s.n, s: s.floor, lo: s.floor.min, hi: s.floor.p95 })) },
  ];
  const rss: Series[] = [
    {
      name: 'podvisor',
      color: '#1f6fb4',
      points: sums.map((s) => ({ n: s.n, s: s.podvisor.restRss, lo: s.podvisor.restRss.min, hi: s.podvisor.restRss.max })),
    },
    {
      name: 'cAdvisor 0.38.7',
      color: '#e0761a',
      points: sums.flatMap((s) =>
        s.cadvisor === undefined ? [] : [{ n: s.n, s: s.cadvisor.restRss, lo: s.cadvisor.restRss.min, hi: s.cadvisor.restRss.max }],
      ),
    },
  ];
  const legend = lat
    .filter((s) => s.points.length > 0)
    .map((s, i) => {
      const lx = LEFT + i * 220;
      const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
      return `<line x1="${lx}" x2="${lx + 28}" y1="${H - 22}" y2="${H - 22}" stroke="${s.color}" stroke-width="2"${dash}/><circle cx="${lx + 14}" cy="${H - 22}" r="3.5" fill="${s.color}"/><text x="${lx + 36}" y="${H - 18}" font-size="12">${esc(s.name)}</text>`;
    })
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(`podvisor vs cAdvisor, ${data.startedAt.slice(0, 10)} (${data.machine.nproc} CPUs, ${data.options.filesPerContainer} files per container)`)}</text>`,
    panel(LEFT, '/metrics latency, sequential: p50 (whiskers min–p95)', 'ms', lat, counts),
    panel(LEFT + PANEL_W + GAP, 'RSS at rest: median (whiskers min–max of rounds)', 'MiB', rss, counts),
    legend,
    '</svg>',
    '',
  ].join('\n');
}

const PROM_COLORS: Record<string, string> = { ahead: '#1f6fb4', today: '#7fa9d6', cadvisor: '#e0761a' };

/** The Prometheus-like scrapers' bar chart, or undefined when the run has no such scenario. */
export function renderPromChart(data: RunData): string | undefined {
  const s = summarizeProm(data);
  if (s === undefined || s.runs.length === 0) return undefined;
  const w = 720;
  const left = 230;
  const barW = w - left - 90;
  const rowH = 34;
  const top = 56;
  const h = top + s.runs.length * rowH + 50;
  const values = [...s.runs.flatMap((r) => [r.all.latency.median, Math.min(r.all.latency.p99, r.all.latency.median * 3)]), s.floor.median].filter(
    Number.isFinite,
  );
  const step = niceStep(Math.max(...values, 1) * 1.05);
  const xMax = Math.ceil((Math.max(...values, 1) * 1.05) / step) * step;
  const px = (v: number): number => left + (Math.min(v, xMax) / xMax) * barW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(`Prometheus-like scrapers (5, 15, 30 s), ${s.n} containers: scrape p50 (tick: p99)`)}</text>`,
  ];
  for (let v = 0; v <= xMax + 1e-9; v += step) {
    out.push(`<line x1="${px(v).toFixed(1)}" x2="${px(v).toFixed(1)}" y1="${top - 6}" y2="${top + s.runs.length * rowH}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${px(v).toFixed(1)}" y="${top + s.runs.length * rowH + 16}" text-anchor="middle" font-size="11">${fmtTick(v)}</text>`);
  }
  out.push(`<text x="${left + barW / 2}" y="${top + s.runs.length * rowH + 34}" text-anchor="middle">ms</text>`);
  s.runs.forEach((r, i) => {
    const y = top + i * rowH;
    const color = PROM_COLORS[r.exporter] ?? '#6b6b6b';
    const p50 = r.all.latency.median;
    out.push(`<text x="${left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    if (!Number.isFinite(p50)) {
      out.push(`<text x="${left + 4}" y="${y + rowH / 2 + 4}" fill="#999">no answer</text>`);
      return;
    }
    out.push(
      `<rect x="${left}" y="${y + 6}" width="${Math.max(1, px(p50) - left).toFixed(1)}" height="${rowH - 12}" fill="${color}"><title>${esc(`${r.label}: p50 ${p50.toFixed(1)} ms, p99 ${r.all.latency.p99.toFixed(1)} ms, max ${r.all.latency.max.toFixed(1)} ms, ${r.all.latency.n} scrapes`)}</title></rect>`,
    );
    const p99 = r.all.latency.p99;
    if (Number.isFinite(p99))
      out.push(
        `<line x1="${px(p99).toFixed(1)}" x2="${px(p99).toFixed(1)}" y1="${y + 4}" y2="${y + rowH - 4}" stroke="${color}" stroke-width="2"/>`,
        `<line x1="${px(p50).toFixed(1)}" x2="${px(p99).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="${color}" stroke-width="1"/>`,
      );
    const labelX = Math.max(px(p50), Number.isFinite(p99) ? px(p99) : 0) + 6;
    out.push(
      `<text x="${labelX.toFixed(1)}" y="${y + rowH / 2 + 4}" font-size="11">${p50 >= 100 ? p50.toFixed(0) : p50.toFixed(1)} ms${p99 > xMax ? ` (p99 ${p99.toFixed(0)})` : ''}</text>`,
    );
  });
  if (Number.isFinite(s.floor.median)) {
    const fx = px(s.floor.median).toFixed(1);
    out.push(`<line x1="${fx}" x2="${fx}" y1="${top - 10}" y2="${top + s.runs.length * rowH}" stroke="#6b6b6b" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    out.push(
      `<text x="${fx}" y="${top - 14}" text-anchor="middle" font-size="11" fill="#6b6b6b">native floor, one pass: ${s.floor.median.toFixed(1)} ms</text>`,
    );
  }
  out.push('</svg>', '');
  return out.join('\n');
}
