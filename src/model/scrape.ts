import type { Histogram } from './histogram.js';

/** What the scrape service counts since start, for its self-metrics. */
export interface ScrapeStats {
  gathers: { success: number; error: number };
  /** Seconds each gather took (discovery, reads and rendering). */
  gatherDuration: Histogram;
  /** Scrapes served from a gather another scrape started. */
  coalesced: number;
  /** Scrapes answered 503 because no gather finished before their deadline. */
  deadlineExceeded: number;
  /** Cgroups reported by the last successful gather; absent before the first. */
  cgroups?: number;
}
