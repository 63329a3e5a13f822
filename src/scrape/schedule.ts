/**
 * Learns when each scraper comes back. Prometheus scrapes a target at a fixed interval and a stable offset (its
 * scrape loop is a ticker), so after two equal gaps the next arrival is predictable to within a few milliseconds of
 * network and event-loop jitter. Pure: times are numbers handed in (performance.now() milliseconds in the service).
 *
 * A scraper is a key (remote address, User-Agent, path, announced timeout): replicas of Prometheus scrape from
 * different addresses, two jobs on one target differ in path or timeout. A prediction that does not come true (the
 * scrape came off schedule, or not at all) is dropped at once and the schedule is learned again from scratch, so a
 * scraper that stops or changes its interval stops causing gathers within one interval.
 */

/** Intervals outside this range are not predicted (too short to gather ahead of; too long to be worth holding). */
export const MIN_INTERVAL_MS = 1000;
export const MAX_INTERVAL_MS = 10 * 60_000;
/** At most this many scrapers are tracked; the one seen longest ago makes room. */
export const MAX_SCRAPERS = 64;

/** How far an arrival may be from its prediction and still count as on schedule. */
export function toleranceMs(intervalMs: number): number {
  return Math.max(100, intervalMs * 0.05);
}

interface Scraper {
  /** Arrival times while learning (the last three at most). */
  arrivals: number[];
  /** Set once two consecutive gaps agree: the interval, and when the next scrape is expected. */
  intervalMs?: number;
  nextMs?: number;
  lastMs: number;
}

export interface Arrival {
  /** The scrape came when predicted. */
  scheduled: boolean;
  /** The previous arrival of this scraper, if any. */
  previousMs?: number;
}

export interface Expected {
  key: string;
  atMs: number;
  intervalMs: number;
}

export class ScheduleLearner {
  readonly #scrapers = new Map<string, Scraper>();
  /** Predictions that did not come true, since start. */
  misses = 0;

  /** A scrape from `key` arrived at `now`. */
  observe(key: string, now: number): Arrival {
    this.expire(now);
    const s = this.#scrapers.get(key);
    if (s === undefined) {
      this.#add(key, { arrivals: [now], lastMs: now });
      return { scheduled: false };
    }
    // Re-inserted so the map stays in order of last arrival (eviction takes the first).
    this.#scrapers.delete(key);
    this.#scrapers.set(key, s);
    const previousMs = s.lastMs;
    s.lastMs = now;
    if (s.intervalMs !== undefined && s.nextMs !== undefined) {
      if (Math.abs(now - s.nextMs) <= toleranceMs(s.intervalMs)) {
        // On schedule: follow the scraper's own clock, so drift does not accumulate.
        s.nextMs = now + s.intervalMs;
        return { scheduled: true, previousMs };
      }
      this.misses++;
      s.arrivals = [now];
      delete s.intervalMs;
      delete s.nextMs;
      return { scheduled: false, previousMs };
    }
    s.arrivals.push(now);
    if (s.arrivals.length > 3) s.arrivals.shift();
    const [a, b, c] = s.arrivals;
    if (a !== undefined && b !== undefined && c !== undefined) {
      const gap1 = b - a;
      const gap2 = c - b;
      if (Math.abs(gap2 - gap1) <= toleranceMs(gap2) && gap2 >= MIN_INTERVAL_MS && gap2 <= MAX_INTERVAL_MS) {
        s.intervalMs = gap2;
        s.nextMs = now + gap2;
      }
    }
    return { scheduled: false, previousMs };
  }

  /** Drops predictions whose time has passed without their scrape, and scrapers silent for long. */
  expire(now: number): void {
    for (const [key, s] of this.#scrapers) {
      if (s.intervalMs !== undefined && s.nextMs !== undefined && now > s.nextMs + toleranceMs(s.intervalMs)) {
        this.misses++;
        s.arrivals = [];
        delete s.intervalMs;
        delete s.nextMs;
      }
      if (now - s.lastMs > MAX_INTERVAL_MS * 2) this.#scrapers.delete(key);
    }
  }

  /** Scrapes expected from now on, soonest first. */
  expected(): Expected[] {
    const out: Expected[] = [];
    for (const [key, s] of this.#scrapers) {
      if (s.intervalMs !== undefined && s.nextMs !== undefined) out.push({ key, atMs: s.nextMs, intervalMs: s.intervalMs });
    }
    return out.sort((x, y) => x.atMs - y.atMs);
  }

  /** How many scrapers are tracked, and how many of them are predicted. */
  counts(): { scrapers: number; predicted: number } {
    let predicted = 0;
    for (const s of this.#scrapers.values()) if (s.nextMs !== undefined) predicted++;
    return { scrapers: this.#scrapers.size, predicted };
  }

  #add(key: string, s: Scraper): void {
    if (this.#scrapers.size >= MAX_SCRAPERS) {
      const oldest = this.#scrapers.keys().next();
      if (oldest.done !== true) this.#scrapers.delete(oldest.value);
    }
    this.#scrapers.set(key, s);
  }
}
