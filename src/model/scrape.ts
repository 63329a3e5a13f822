import type { Histogram } from './histogram.js';

/** How a scrape was answered: see podvisor_scrapes_total. */
export type ScrapeOutcome = 'fresh' | 'ahead' | 'stale' | 'deadline_exceeded' | 'error';
export const SCRAPE_OUTCOMES: readonly ScrapeOutcome[] = ['fresh', 'ahead', 'stale', 'deadline_exceeded', 'error'];

/** What the scrape service counts since start, for its self-metrics. */
export interface ScrapeStats {
  gathers: { success: number; error: number };
  /** Seconds each gather took (discovery, reads and rendering). */
  gatherDuration: Histogram;
  /** Scrapes served from a gather another scrape started. */
  coalesced: number;
  /** Scrapes answered 503 because no gather finished before their deadline and no result was young enough. */
  deadlineExceeded: number;
  /** Scrapes by how they were answered. */
  scrapes: Record<ScrapeOutcome, number>;
  /** Seconds from the start of the gather a scrape was answered from to the answer. */
  resultAge: Histogram;
  /** Gathers started ahead of a predicted scrape. */
  gathersAhead: number;
  /** Predicted scrapes that did not come when expected (the schedule is then learned again). */
  aheadMisses: number;
  /** Scrapers tracked, and how many of them have a predicted schedule; absent with --gather-ahead=false. */
  schedules?: { scrapers: number; predicted: number };
  /** Cgroups reported by the last successful gather; absent before the first. */
  cgroups?: number;
  /** The HTTP layer's TLS and authentication counts; absent when neither is on. */
  security?: SecurityStats;
}

/** How the HTTP layer answered a request that needed credentials: see podvisor_http_auth_requests_total. */
export type AuthOutcome = 'allowed' | 'unauthenticated' | 'forbidden' | 'rate_limited';
export const AUTH_OUTCOMES: readonly AuthOutcome[] = ['allowed', 'unauthenticated', 'forbidden', 'rate_limited'];

/** Reviews sent to the API server (cache misses only), by review and answer. */
export type ReviewKind = 'tokenreview' | 'subjectaccessreview';
export type ReviewResult = 'authenticated' | 'unauthenticated' | 'allowed' | 'denied' | 'error';

/** What the HTTP layer counts for its self-metrics when TLS or authentication is on. */
export interface SecurityStats {
  requests: Record<AuthOutcome, number>;
  reviews: Record<ReviewKind, Partial<Record<ReviewResult, number>>>;
  /** Reloads of the web config and the files it names, by result. */
  reloads: { success: number; failure: number };
  /** TLS connections closed before a request: failed handshakes, refused client certificates. */
  tlsRejected: { handshake: number; client_certificate: number };
  /** Unix seconds: the serving certificate's notAfter; absent without TLS. */
  certificateNotAfter?: number;
}

export function newSecurityStats(): SecurityStats {
  return {
    requests: { allowed: 0, unauthenticated: 0, forbidden: 0, rate_limited: 0 },
    reviews: { tokenreview: {}, subjectaccessreview: {} },
    reloads: { success: 0, failure: 0 },
    tlsRejected: { handshake: 0, client_certificate: 0 },
  };
}
