/**
 * Gather ahead of the scrape (`--gather-ahead`, on by default). The ScheduleLearner says when each known scraper is
 * expected next; a timer starts one gather `lead` milliseconds before the soonest expected scrape, where `lead` is
 * how long recent gathers took plus a margin, so the result is complete just before the scrape arrives and that
 * scrape answers at once from data a fraction of a second old. Every scrape expected before the gather can complete
 * shares it. A gather is started only for a predicted scrape, and a prediction that fails is dropped (the learner
 * relearns from scratch), so gathers never outnumber scrapes by more than the predictions that failed.
 */
import { ScheduleLearner, toleranceMs, type Arrival } from './schedule.js';

/** Time and timers, injected so tests drive them. Milliseconds on one monotonic clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface AheadHooks {
  clock: Clock;
  /** The gather in flight, if any. */
  inFlight(): Promise<unknown> | undefined;
  /** Start a gather for the expected scrapes of `scrapers` (keys). */
  gather(scrapers: readonly string[]): void;
}

/** Gathers whose duration sets the lead: the slowest of the last few, so a slow one is not followed by a late one. */
const DURATIONS_KEPT = 5;
/** Lead before any gather was timed. */
const DEFAULT_LEAD_MS = 1000;

export class GatherAhead {
  readonly #hooks: AheadHooks;
  readonly #learner = new ScheduleLearner();
  /** key → the expected scrape time a gather was already started for. */
  readonly #covered = new Map<string, number>();
  readonly #durations: number[] = [];
  #timer: unknown;
  #waiting = false;
  #closed = false;
  /** Gathers started ahead of a scrape, since start. */
  started = 0;

  constructor(hooks: AheadHooks) {
    this.#hooks = hooks;
  }

  /** A scrape from `key` arrived now. */
  observe(key: string): Arrival {
    const arrival = this.#learner.observe(key, this.#hooks.clock.now());
    this.#covered.delete(key);
    this.#arm();
    return arrival;
  }

  /** A gather (of any origin) took `ms`. */
  timed(ms: number): void {
    this.#durations.push(ms);
    if (this.#durations.length > DURATIONS_KEPT) this.#durations.shift();
  }

  /** How long before an expected scrape its gather starts. */
  leadMs(): number {
    if (this.#durations.length === 0) return DEFAULT_LEAD_MS;
    return Math.max(...this.#durations) * 1.2 + 20;
  }

  /** The oldest result a predicted scrape is answered from without a new gather. */
  maxAheadAgeMs(intervalMs: number): number {
    return this.leadMs() + toleranceMs(intervalMs) + 250;
  }

  /** The interval of `key`'s schedule, when it is predicted. */
  intervalOf(key: string): number | undefined {
    return this.#learner.expected().find((e) => e.key === key)?.intervalMs;
  }

  get misses(): number {
    return this.#learner.misses;
  }

  counts(): { scrapers: number; predicted: number } {
    return this.#learner.counts();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#hooks.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sets the timer for the soonest expected scrape no gather was started for yet. */
  #arm(): void {
    const { clock } = this.#hooks;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#waiting) return;
    const now = clock.now();
    this.#learner.expire(now);
    const next = this.#learner.expected().find((e) => this.#covered.get(e.key) !== e.atMs);
    if (next === undefined) return;
    this.#timer = clock.setTimeout(() => this.#fire(), Math.max(0, next.atMs - this.leadMs() - now));
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const running = this.#hooks.inFlight();
    if (running !== undefined) {
      // Another gather is running: decide again when it ends (starting one now would only queue behind it).
      this.#waiting = true;
      const again = (): void => {
        this.#waiting = false;
        this.#fire();
      };
      running.then(again, again);
      return;
    }
    const now = this.#hooks.clock.now();
    this.#learner.expire(now);
    const lead = this.leadMs();
    // Every scrape expected before this gather is done shares it.
    const due = this.#learner.expected().filter((e) => this.#covered.get(e.key) !== e.atMs && e.atMs - now <= lead + toleranceMs(e.intervalMs));
    if (due.length > 0) {
      for (const e of due) this.#covered.set(e.key, e.atMs);
      this.started++;
      this.#hooks.gather(due.map((e) => e.key));
    }
    this.#arm();
  }
}
