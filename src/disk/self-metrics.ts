/** The disk scheduler's own metrics, kept as plain counts on the gather's thread and rendered with each gather. */
import { FamilyWriter, type RenderedFamily } from '../metrics/exposition.js';
import type { MeasureReport } from './scheduler.js';

const WALK_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300];

export class DiskSelfMetrics {
  readonly walks = { ok: 0, timeout: 0, error: 0 };
  files = 0;
  readonly buckets = WALK_BUCKETS.map(() => 0);
  count = 0;
  sum = 0;

  record(r: MeasureReport): void {
    this.walks[r.result]++;
    this.files += r.files ?? 0;
    const s = r.durationMs / 1000;
    this.count++;
    this.sum += s;
    WALK_BUCKETS.forEach((le, i) => {
      if (s <= le) this.buckets[i] = (this.buckets[i] ?? 0) + 1;
    });
  }

  families(queueLength: number): RenderedFamily[] {
    const d = new FamilyWriter('podvisor_disk_walk_duration_seconds', 'Time one disk usage measurement took (a walk, or a runtime snapshot usage call).', 'histogram');
    WALK_BUCKETS.forEach((le, i) => d.sample(`le="${le}"`, this.buckets[i] ?? 0, '_bucket'));
    d.sample('le="+Inf"', this.count, '_bucket');
    d.sample('', this.sum, '_sum');
    d.sample('', this.count, '_count');
    const w = new FamilyWriter('podvisor_disk_walks_total', 'Disk usage measurements by result: ok, timeout (cancelled at the deadline, nothing published), error.', 'counter');
    for (const k of ['ok', 'timeout', 'error'] as const) w.sample(`result="${k}"`, this.walks[k]);
    const q = new FamilyWriter('podvisor_disk_walk_queue_length', 'Containers due for a disk usage measurement and waiting for a slot.', 'gauge');
    q.sample('', queueLength);
    const f = new FamilyWriter('podvisor_disk_walk_files_total', 'Files visited by disk usage walks.', 'counter');
    f.sample('', this.files);
    return [d.finish(), w.finish(), q.finish(), f.finish()];
  }
}
