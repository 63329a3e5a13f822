/**
 * The disk-usage measurements' own counts (podvisor_disk_walk_*), kept as plain data on the gather's thread and
 * copied into each snapshot; metrics/self.ts renders them. A walk denied permission has one fix (a capability), so it
 * also logs one warning naming it, at most once per window.
 */
import { DiskPermissionError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DiskWalkStats } from '../model/disk.js';
import { copyHistogram, newHistogram, observe } from '../model/histogram.js';
import type { MeasureReport } from './scheduler.js';

/** Upper bounds of podvisor_disk_walk_duration_seconds. */
export const WALK_BUCKETS: readonly number[] = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300];
/** At most one permission warning per this long: the fix (a capability) is node-wide, one line says it. */
export const DENIED_WARN_EVERY_MS = 10 * 60_000;

export interface WalkStatsOptions {
  /** Where the permission warning goes (none without it: the scheduler's report still carries the error). */
  log?: Logger;
  /** Monotonic milliseconds, for the warning's rate limit. Default `performance.now`. */
  now?: () => number;
  warnEveryMs?: number;
}

export class WalkStats {
  readonly #stats: Omit<DiskWalkStats, 'queueLength'> = { walks: { ok: 0, timeout: 0, error: 0 }, files: 0, duration: newHistogram(WALK_BUCKETS) };
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #warnEveryMs: number;
  #warnedAt: number | undefined;
  /** Denied measurements since the last warning that it did not name. */
  #suppressed = 0;

  constructor(opts: WalkStatsOptions = {}) {
    this.#log = opts.log;
    this.#now = opts.now ?? (() => performance.now());
    this.#warnEveryMs = opts.warnEveryMs ?? DENIED_WARN_EVERY_MS;
  }

  record(r: MeasureReport): void {
    this.#stats.walks[r.result]++;
    this.#stats.files += r.files ?? 0;
    observe(this.#stats.duration, r.durationMs / 1000);
    if (r.error instanceof DiskPermissionError) this.#warnDenied(r.key, r.error);
  }

  /** A copy of the counts now, with the scheduler's queue length. */
  current(queueLength: number): DiskWalkStats {
    const s = this.#stats;
    return { walks: { ...s.walks }, files: s.files, duration: copyHistogram(s.duration), queueLength };
  }

  /** A walk denied permission is an error like any other, but it has one fix: say it, at most once per window. */
  #warnDenied(key: string, err: DiskPermissionError): void {
    const now = this.#now();
    if (this.#warnedAt !== undefined && now - this.#warnedAt < this.#warnEveryMs) {
      this.#suppressed++;
      return;
    }
    this.#warnedAt = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#log?.warn(err.message, {
      container: key,
      path: err.deniedPath,
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }
}
