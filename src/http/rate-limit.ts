/**
 * exporter-toolkit's `rate_limit` (web config keys `interval` and `burst`): one global token bucket for the whole
 * server, checked before authentication, a request that finds it empty answered 429. Like the
 * `golang.org/x/time/rate` limiter exporter-toolkit builds (`rate.NewLimiter(rate.Every(interval), burst)`), the
 * bucket starts full, refills continuously at one token per `intervalMs` up to `burst`, and:
 * - `intervalMs: 0` disables it (every `take()` succeeds);
 * - `burst: 0` with a non-zero interval rejects every request (exporter-toolkit's footgun, kept for compatibility).
 */

export interface TokenBucketOptions {
  /** Time to earn one token (ms); 0 disables limiting. */
  intervalMs: number;
  /** Most tokens held at once, and the number it starts with. */
  burst: number;
  /** Monotonic milliseconds (default `performance.now`), injectable for tests. */
  now?: () => number;
}

export class TokenBucket {
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(opts: TokenBucketOptions) {
    if (!Number.isFinite(opts.intervalMs) || opts.intervalMs < 0)
      throw new RangeError(`rate limit interval must be a finite number ≥ 0, not ${opts.intervalMs}`);
    if (!Number.isSafeInteger(opts.burst) || opts.burst < 0) throw new RangeError(`rate limit burst must be an integer ≥ 0, not ${opts.burst}`);
    this.#intervalMs = opts.intervalMs;
    this.#burst = opts.burst;
    this.#now = opts.now ?? (() => performance.now());
    this.#tokens = opts.burst;
    this.#last = this.#now();
  }

  /** Takes one token: true when the request may go on, false when it should be answered 429. */
  take(): boolean {
    if (this.#intervalMs === 0) return true;
    const now = this.#now();
    // A clock that steps back earns nothing (x/time/rate does the same) and moves the reference point back with it.
    if (now > this.#last) this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) / this.#intervalMs);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }
}
