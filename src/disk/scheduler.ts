/**
 * One disk-usage scheduler for the whole node.
 *
 * cAdvisor runs one goroutine per container (`lib/container/common/fsHandler.go` `trackUsage`): a walk every
 * minute, the period doubled after each error up to `maxBackoffFactor` = 20×, reset by a success, and (since
 * v0.33.0) no timeout at all, with a global pool of 20 walks. Here one loop and one timer serve every key:
 *
 * - at most `concurrency` measurements run at once (`--disk-walk-concurrency`, default 2);
 * - a key is measured again `intervalMs` after its last measurement finished (`--disk-usage-interval`, default
 *   1 min), ±10% jitter so keys synced together drift apart;
 * - a measurement gets `deadlineMs` (default 2 × interval, as cAdvisor ≤ v0.32 killed `du`/`find` after 2 min):
 *   then its signal is aborted, its slot is freed at once even if the promise ignores the signal, the key counts
 *   a timeout, and a late result is discarded;
 * - a timeout or an error makes the key wait interval × 2^n (n = consecutive failures), at most
 *   `maxBackoffFactor` × interval, then the jitter; a success resets n;
 * - keys never attempted go first; then due keys, the longest overdue first;
 * - re-measurements share a time budget (`--disk-walk-cpu-percent`, default 0.5% of one core): a token bucket
 *   refilled at that rate (at most `budgetBurstMs` banked) is charged each measurement's duration, and no
 *   re-measurement starts while it is in debt. A first measurement is never held back (absent until then). On a
 *   node with 1M files in writable layers the budget, not the interval, sets the pace: a walk at du's speed costs
 *   ~2 s per 500k files, which every minute would be 3% of a core.
 *
 * Nothing runs on a scrape: `sync` and `get` are synchronous and only touch the records; the measurements start
 * from the timer (or when a slot frees), never from the caller's stack. One record is kept per live key and
 * nothing for departed ones.
 *
 * The measure owns the I/O (a walk of dirs, a containerd `Snapshots/Usage` call); this file knows nothing of
 * files or runtimes. `concurrency` bounds the measurements the scheduler waits on: a `Measure` that ignores its
 * signal keeps working after its deadline or its key's removal, so every `Measure` should honour the signal.
 */
import { ConfigError } from '../errors.js';

export interface Usage {
  bytes: number;
  inodes: number;
}

/** One measurement of one key; must stop (reject) soon after `signal` aborts. `files` is for self-metrics only. */
export type Measure = (signal: AbortSignal) => Promise<Usage & { files?: number }>;

export type MeasureResult = 'ok' | 'timeout' | 'error';

export interface MeasureReport {
  key: string;
  result: MeasureResult;
  durationMs: number;
  files?: number;
  /** The rejection of an 'error' result, for a debug log. */
  error?: unknown;
}

/** The one timer the scheduler uses; injectable so tests can drive a fake clock. Handles are unref()'d. */
export interface TimerApi {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const DEFAULT_DISK_CONCURRENCY = 2;
export const DEFAULT_DISK_INTERVAL_MS = 60_000;
/** cAdvisor fsHandler.go `maxBackoffFactor`. */
export const DEFAULT_MAX_BACKOFF_FACTOR = 20;
/** ±10% of each wait. */
export const JITTER = 0.1;
/** Re-measurements may use this share of one core on average. */
export const DEFAULT_DISK_CPU_BUDGET = 0.005;
/** Time budget banked at most, in ms. */
export const DEFAULT_BUDGET_BURST_MS = 5_000;

export interface SchedulerOptions {
  /** Never more measurements at once than this. Default 2. */
  concurrency?: number;
  /** Per-key refresh period, jittered ±10%. Default 60 000 ms. */
  intervalMs?: number;
  /** Per-measurement deadline: abort and count a timeout. Default 2 × intervalMs. */
  deadlineMs?: number;
  /** Cap of the backoff, in intervals. Default 20. */
  maxBackoffFactor?: number;
  /** Share of one core re-measurements may take on average (0 < budget ≤ 1). Default 0.005. */
  cpuBudget?: number;
  /** Budget banked at most, in ms. Default 5000. */
  budgetBurstMs?: number;
  /** Monotonic milliseconds. Default `performance.now`. */
  now?: () => number;
  /** Uniform in [0, 1). Default `Math.random`. */
  random?: () => number;
  timers?: TimerApi;
  /** Called once per finished, timed-out or failed measurement (not for aborts by `sync` or `close`). */
  onResult?: (r: MeasureReport) => void;
}

interface Run {
  ctrl: AbortController;
  startedAt: number;
  deadlineAt: number;
  settled: Promise<void>;
}

/** The one record per live key. */
interface Entry {
  key: string;
  measure: Measure;
  /** The last complete result. */
  last: Usage | undefined;
  /** When the key may be measured next (meaningless while `run` is set). */
  dueAt: number;
  attempted: boolean;
  /** Consecutive timeouts and errors. */
  failures: number;
  run: Run | undefined;
}

const realTimers: TimerApi = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

function positive(name: string, value: number, integer: boolean): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return value;
}

function isUsage(v: unknown): v is Usage & { files?: number } {
  if (typeof v !== 'object' || v === null) return false;
  const { bytes, inodes } = v as Record<string, unknown>;
  return typeof bytes === 'number' && Number.isFinite(bytes) && bytes >= 0 && typeof inodes === 'number' && Number.isFinite(inodes) && inodes >= 0;
}

/** The wait after a measurement with `failures` consecutive failures: interval × min(2^n, cap) × (1 ± jitter). */
export function nextWaitMs(intervalMs: number, failures: number, maxBackoffFactor: number, random: number): number {
  const factor = Math.min(2 ** failures, maxBackoffFactor);
  return intervalMs * factor * (1 + JITTER * (2 * random - 1));
}

export class DiskScheduler {
  readonly #concurrency: number;
  readonly #intervalMs: number;
  readonly #deadlineMs: number;
  readonly #maxBackoffFactor: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #timers: TimerApi;
  readonly #onResult: ((r: MeasureReport) => void) | undefined;
  readonly #budget: number;
  readonly #burstMs: number;
  /** Budget left, in ms of measurement time (negative: in debt), as of `#tokensAt`. */
  #tokens: number;
  #tokensAt: number;

  readonly #entries = new Map<string, Entry>();
  #active = 0;
  #started = false;
  #closed = false;
  #timer: unknown;
  #timerAt: number | undefined;

  constructor(opts: SchedulerOptions = {}) {
    this.#concurrency = positive('disk walk concurrency', opts.concurrency ?? DEFAULT_DISK_CONCURRENCY, true);
    this.#intervalMs = positive('disk usage interval', opts.intervalMs ?? DEFAULT_DISK_INTERVAL_MS, false);
    this.#deadlineMs = positive('disk usage deadline', opts.deadlineMs ?? 2 * this.#intervalMs, false);
    this.#maxBackoffFactor = positive('disk usage max backoff factor', opts.maxBackoffFactor ?? DEFAULT_MAX_BACKOFF_FACTOR, false);
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
    this.#timers = opts.timers ?? realTimers;
    this.#onResult = opts.onResult;
    const budget = opts.cpuBudget ?? DEFAULT_DISK_CPU_BUDGET;
    if (!(budget > 0 && budget <= 1)) throw new ConfigError(`disk walk CPU budget must be more than 0% and at most 100% of a core, got ${budget * 100}%`);
    this.#budget = budget;
    this.#burstMs = positive('disk walk budget burst', opts.budgetBurstMs ?? DEFAULT_BUDGET_BURST_MS, false);
    this.#tokens = this.#burstMs;
    this.#tokensAt = this.#now();
  }

  /** Budget left now (refilled since the last look), in ms. */
  #refill(now: number): number {
    this.#tokens = Math.min(this.#burstMs, this.#tokens + (now - this.#tokensAt) * this.#budget);
    this.#tokensAt = now;
    return this.#tokens;
  }

  /** When a re-measurement may start: now if the budget is not in debt, else when it is repaid. */
  #budgetAt(now: number): number {
    const t = this.#refill(now);
    return t >= 0 ? now : now + -t / this.#budget;
  }

  /**
   * Declare the keys that exist now. New keys are due at once; a known key takes the new `measure` for its next
   * measurement; keys missing from `keys` are dropped: their measurement is aborted and their result forgotten.
   */
  sync(keys: ReadonlyMap<string, Measure>): void {
    for (const [key, e] of this.#entries) {
      if (!keys.has(key)) this.#drop(e);
    }
    const now = this.#now();
    for (const [key, measure] of keys) {
      const e = this.#entries.get(key);
      if (e !== undefined) e.measure = measure;
      else this.#entries.set(key, { key, measure, last: undefined, dueAt: now, attempted: false, failures: 0, run: undefined });
    }
    this.#arm(now);
  }

  /** The last complete result, or undefined before the first one (absent, not 0). */
  get(key: string): Usage | undefined {
    return this.#entries.get(key)?.last;
  }

  /** Keys due and waiting for a slot. */
  queueLength(): number {
    const now = this.#now();
    let n = 0;
    for (const e of this.#entries.values()) if (e.run === undefined && e.dueAt <= now) n++;
    return n;
  }

  inFlight(): number {
    return this.#active;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#arm(this.#now());
  }

  /** Stop the loop, abort every measurement and wait for each to settle (or to reach its deadline). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    const waits: Promise<void>[] = [];
    for (const e of this.#entries.values()) {
      const run = e.run;
      if (run === undefined) continue;
      this.#release(e);
      run.ctrl.abort(new DOMException('disk scheduler closed', 'AbortError'));
      const left = Math.max(0, run.deadlineAt - this.#now());
      let handle: unknown;
      const deadline = new Promise<void>((resolve) => {
        handle = this.#timers.set(resolve, left);
      });
      waits.push(Promise.race([run.settled, deadline]).then(() => this.#timers.clear(handle)));
    }
    await Promise.all(waits);
  }

  /** The loop: expire deadlines, fill free slots, arm the timer for the next event. */
  #pump(): void {
    if (!this.#started || this.#closed) return;
    const now = this.#now();
    for (const e of this.#entries.values()) {
      if (e.run !== undefined && e.run.deadlineAt <= now) this.#expire(e, e.run, now);
    }
    while (this.#active < this.#concurrency) {
      const next = this.#pick(now);
      if (next === undefined) break;
      this.#launch(next, now);
    }
    this.#arm(now);
  }

  /** Never-attempted keys first, then the longest overdue (re-measurements only while the budget allows). */
  #pick(now: number): Entry | undefined {
    const budgetOk = this.#budgetAt(now) <= now;
    let best: Entry | undefined;
    for (const e of this.#entries.values()) {
      if (e.run !== undefined || e.dueAt > now || (e.attempted && !budgetOk)) continue;
      if (best === undefined) best = e;
      else if (e.attempted !== best.attempted) best = e.attempted ? best : e;
      else if (e.dueAt < best.dueAt) best = e;
    }
    return best;
  }

  #launch(e: Entry, now: number): void {
    const ctrl = new AbortController();
    let promise: Promise<Usage & { files?: number }>;
    try {
      promise = e.measure(ctrl.signal);
    } catch (err) {
      promise = Promise.reject(err);
    }
    const run: Run = { ctrl, startedAt: now, deadlineAt: now + this.#deadlineMs, settled: Promise.resolve() };
    run.settled = promise.then(
      (value) => this.#finish(e, run, value, undefined),
      (err: unknown) => this.#finish(e, run, undefined, err),
    );
    e.run = run;
    e.attempted = true;
    this.#active++;
  }

  #finish(e: Entry, run: Run, value: unknown, err: unknown): void {
    // A late result: the run timed out, its key was dropped, or the scheduler closed.
    if (e.run !== run) return;
    const now = this.#now();
    this.#release(e);
    const durationMs = now - run.startedAt;
    this.#refill(now);
    this.#tokens -= durationMs;
    if (isUsage(value)) {
      e.last = { bytes: value.bytes, inodes: value.inodes };
      e.failures = 0;
      this.#schedule(e, now);
      this.#report({ key: e.key, result: 'ok', durationMs, ...(value.files === undefined ? {} : { files: value.files }) });
    } else {
      e.failures++;
      this.#schedule(e, now);
      const error = err ?? new TypeError(`disk usage measure returned no usage: ${String(value)}`);
      this.#report({ key: e.key, result: 'error', durationMs, error });
    }
    this.#pump();
  }

  #expire(e: Entry, run: Run, now: number): void {
    this.#release(e);
    this.#refill(now);
    this.#tokens -= now - run.startedAt;
    run.ctrl.abort(new DOMException(`disk usage of ${e.key} took longer than ${this.#deadlineMs} ms`, 'TimeoutError'));
    e.failures++;
    this.#schedule(e, now);
    this.#report({ key: e.key, result: 'timeout', durationMs: now - run.startedAt });
  }

  #drop(e: Entry): void {
    const run = e.run;
    this.#entries.delete(e.key);
    if (run === undefined) return;
    this.#release(e);
    run.ctrl.abort(new DOMException(`${e.key} is gone`, 'AbortError'));
  }

  #release(e: Entry): void {
    e.run = undefined;
    this.#active--;
  }

  #schedule(e: Entry, now: number): void {
    e.dueAt = now + nextWaitMs(this.#intervalMs, e.failures, this.#maxBackoffFactor, this.#random());
  }

  #report(r: MeasureReport): void {
    if (this.#onResult === undefined) return;
    try {
      this.#onResult(r);
    } catch {
      // A self-metrics callback must not stop the loop.
    }
  }

  /** Keep exactly one timer, set for the next deadline or (with a free slot) the next due key. */
  #arm(now: number): void {
    if (!this.#started || this.#closed) return;
    let at = Infinity;
    const free = this.#active < this.#concurrency;
    const budgetAt = free ? this.#budgetAt(now) : now;
    for (const e of this.#entries.values()) {
      if (e.run !== undefined) at = Math.min(at, e.run.deadlineAt);
      else if (free) at = Math.min(at, e.attempted ? Math.max(e.dueAt, budgetAt) : e.dueAt);
    }
    if (at === this.#timerAt) return;
    this.#clearTimer();
    if (at === Infinity) return;
    this.#timerAt = at;
    this.#timer = this.#timers.set(
      () => {
        this.#timer = undefined;
        this.#timerAt = undefined;
        this.#pump();
      },
      Math.max(0, at - now),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }
}
