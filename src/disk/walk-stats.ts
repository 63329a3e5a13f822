/** The disk scheduler's own metrics, kept as plain counts on the gather's thread and rendered with each gather. */
import type { Logger } from '../log.js';
import { FamilyWriter, type RenderedFamily } from '../metrics/exposition.js';
import type { MeasureReport } from './scheduler.js';
import { DiskPermissionError } from '../errors.js';

const WALK_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300];
/** At most one permission warning per this long: the fix (a capability) is node-wide, one line says it. */
export const DENIED_WARN_EVERY_MS = 10 * 60_000;

export interface DiskSelfMetricsOptions {
  /** Where the permission warning goes (none without it: the scheduler's report still carries the error). */
  log?: Logger;
  /** Monotonic milliseconds, for the warning's rate limit. Default `performance.now`. */
  now?: () => number;
  warnEveryMs?: number;
}

export class DiskSelfMetrics {
  readonly walks = { ok: 0, timeout: 0, error: 0 };
  files = 0;
  readonly buckets = WALK_BUCKETS.map(() => 0);
  count = 0;
  sum = 0;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #warnEveryMs: number;
  #warnedAt: number | undefined;
  /** Denied measurements since the last warning that it did not name. */
  #suppressed = 0;

  constructor(opts: DiskSelfMetricsOptions = {}) {
    this.#log = opts.log;
    this.#now = opts.now ?? (() => performance.now());
    this.#warnEveryMs = opts.warnEveryMs ?? DENIED_WARN_EVERY_MS;
  }

  record(r: MeasureReport): void {
    this.walks[r.result]++;
    this.files += r.files ?? 0;
    const s = r.durationMs / 1000;
    this.count++;
    this.sum += s;
    WALK_BUCKETS.forEach((le, i) => {
      if (s <= le) this.buckets[i] = (this.buckets[i] ?? 0) + 1;
    });
    if (r.error instanceof DiskPermissionError) this.#warnDenied(r.key, r.error);
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

  families(queueLength: number): RenderedFamily[] {
    const d = new FamilyWriter(
      'podvisor_disk_walk_duration_seconds',
      'Time one disk usage measurement took (a walk, or a runtime snapshot usage call).',
      'histogram',
    );
    WALK_BUCKETS.forEach((le, i) => d.sample(`le="${le}"`, this.buckets[i] ?? 0, '_bucket'));
    d.sample('le="+Inf"', this.count, '_bucket');
    d.sample('', this.sum, '_sum');
    d.sample('', this.count, '_count');
    const w = new FamilyWriter(
      'podvisor_disk_walks_total',
      'Disk usage measurements by result: ok, timeout (cancelled at the deadline, nothing published), error (failed, or a walk denied permission to part of the tree: nothing published).',
      'counter',
    );
    for (const k of ['ok', 'timeout', 'error'] as const) w.sample(`result="${k}"`, this.walks[k]);
    const q = new FamilyWriter('podvisor_disk_walk_queue_length', 'Containers due for a disk usage measurement and waiting for a slot.', 'gauge');
    q.sample('', queueLength);
    const f = new FamilyWriter('podvisor_disk_walk_files_total', 'Files visited by disk usage walks.', 'counter');
    f.sample('', this.files);
    return [d.finish(), w.finish(), q.finish(), f.finish()];
  }
}
