/** Content negotiation for /metrics: pure functions over request headers. */
import type { ExpositionFormat } from '../metrics/exposition.js';

interface MediaRange {
  type: string;
  q: number;
}

function parseAccept(header: string): MediaRange[] {
  return header
    .split(',')
    .map((part) => {
      const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      let q = 1;
      for (const p of params) {
        const m = /^q=([0-9.]+)$/.exec(p);
        if (m !== null) q = Number(m[1]);
      }
      return { type, q: Number.isFinite(q) ? q : 0 };
    })
    .filter((r) => r.type !== '');
}

/**
 * OpenMetrics when the client prefers it (Prometheus does: it offers it at the highest q); otherwise Prometheus text
 * 0.0.4, which is also the answer to no Accept header (kubelet-style clients) and to anything we don't speak.
 */
export function chooseFormat(accept: string | undefined): ExpositionFormat {
  if (accept === undefined || accept.trim() === '') return 'text';
  let om = 0;
  let text = 0;
  for (const r of parseAccept(accept)) {
    if (r.type === 'application/openmetrics-text') om = Math.max(om, r.q);
    else if (r.type === 'text/plain' || r.type === 'text/*' || r.type === '*/*') text = Math.max(text, r.q);
  }
  return om > 0 && om > text ? 'openmetrics' : 'text';
}

export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  for (const r of parseAccept(acceptEncoding)) if ((r.type === 'gzip' || r.type === '*') && r.q > 0) return true;
  return false;
}

/**
 * How long this scrape may take, in ms: the scraper's `X-Prometheus-Scrape-Timeout-Seconds` minus our offset
 * (never less than half the timeout), else the default. Returns the budget and a phrase for error bodies.
 */
export function scrapeBudget(header: string | undefined, defaultMs: number, offsetMs: number): { ms: number; text: string } {
  const seconds = header === undefined ? NaN : Number(header);
  if (!Number.isFinite(seconds) || seconds <= 0) return { ms: defaultMs, text: `${defaultMs / 1000}s, the default scrape timeout` };
  const timeoutMs = seconds * 1000;
  const ms = Math.max(timeoutMs - offsetMs, timeoutMs / 2);
  return { ms, text: `${ms / 1000}s of X-Prometheus-Scrape-Timeout-Seconds=${header}` };
}

/**
 * Who is scraping, for learning its schedule: replicas of Prometheus scrape from different addresses; two jobs on one
 * target differ in path or announced timeout. The query string is part of the path (a different request).
 */
export function scraperKey(remoteAddress: string, userAgent: string | undefined, url: string, timeoutHeader: string | undefined): string {
  return `${remoteAddress}|${userAgent ?? ''}|${url}|${timeoutHeader ?? ''}`;
}
