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
}
