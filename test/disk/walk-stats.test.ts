/** WalkStats: walks by result, files, durations, and the one rate-limited warning for walks denied permission. */
import t from 'tap';
import { WalkStats, WALK_BUCKETS } from '../../src/disk/walk-stats.js';
import { DiskPermissionError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import { assemble, encodeFamilies } from '../../src/metrics/exposition.js';
import { renderSelfFamilies, SNAPSHOT_SELF_METRICS } from '../../src/metrics/self.js';
import type { Snapshot } from '../../src/model/snapshot.js';

function logger(level: 'debug' | 'error' = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger(level, (l) => lines.push(l)), lines };
}

const denied = (dir: string, n: number): DiskPermissionError => new DiskPermissionError(dir, n, `${dir}/data`);

t.test('a denied walk counts as an error and warns once, naming the dir and the fix; then at most once per window', async (t) => {
  let now = 0;
  const { log, lines } = logger();
  const m = new WalkStats({ log, now: () => now, warnEveryMs: 600_000 });
  m.record({ key: 'c1', result: 'error', durationMs: 20, error: denied('/var/lib/docker/overlay2/x/diff', 5) });
  t.same(m.current(0).walks, { ok: 0, timeout: 0, error: 1 });
  t.equal(lines.length, 1);
  t.match(
    lines[0],
    /level=warn msg="permission denied reading 5 entries under \/var\/lib\/docker\/overlay2\/x\/diff: podvisor needs CAP_DAC_READ_SEARCH \(see deploy\/README.md\)" container=c1 path=\/var\/lib\/docker\/overlay2\/x\/diff\/data\n$/,
  );
  t.notMatch(lines[0], /suppressed/);

  now += 1000;
  m.record({ key: 'c2', result: 'error', durationMs: 20, error: denied('/d2', 1) });
  m.record({ key: 'c1', result: 'error', durationMs: 20, error: denied('/d1', 1) });
  m.record({ key: 'c3', result: 'error', durationMs: 20, error: new Error('EIO') });
  m.record({ key: 'c3', result: 'ok', durationMs: 20, files: 4 });
  t.equal(lines.length, 1, 'rate-limited; other errors never warn here');
  t.same(m.current(0).walks, { ok: 1, timeout: 0, error: 4 });

  now = 600_000;
  m.record({ key: 'c2', result: 'error', durationMs: 20, error: denied('/d2', 1) });
  t.equal(lines.length, 2, 'once the window is over');
  t.match(lines[1], /msg="permission denied reading 1 entry under \/d2: .*" container=c2 path=\/d2\/data suppressed=2\n$/);
  now += 599_999;
  m.record({ key: 'c2', result: 'error', durationMs: 20, error: denied('/d2', 1) });
  t.equal(lines.length, 2);

  const snapshot: Snapshot = {
    timestampMs: 0,
    containers: [],
    machine: { machineId: '', systemUuid: '', bootId: '' },
    deviceNames: new Map(),
    collectorErrors: {},
    disk: m.current(3),
  };
  const body = assemble([encodeFamilies(renderSelfFamilies(SNAPSHOT_SELF_METRICS, snapshot))], 'text').toString();
  t.match(body, /\npodvisor_disk_walks_total\{result="error"\} 6\n/);
  t.match(body, /\npodvisor_disk_walks_total\{result="ok"\} 1\n/);
  t.match(body, /\npodvisor_disk_walk_queue_length 3\n/);
  t.match(body, /\npodvisor_disk_walk_files_total 4\n/);
  t.match(body, /\npodvisor_disk_walk_duration_seconds_bucket\{le="0.01"\} 0\n/, 'every walk took 20 ms');
  t.match(body, /\npodvisor_disk_walk_duration_seconds_bucket\{le="0.1"\} 7\n/);
  t.match(body, /\npodvisor_disk_walk_duration_seconds_bucket\{le="\+Inf"\} 7\n/);
  t.match(body, /\npodvisor_disk_walk_duration_seconds_count 7\n/);
});

t.test('current() is a copy: later records do not change a snapshot taken earlier', async (t) => {
  const m = new WalkStats();
  m.record({ key: 'c1', result: 'ok', durationMs: 2000, files: 10 });
  const before = m.current(0);
  m.record({ key: 'c1', result: 'timeout', durationMs: 400_000 });
  t.same(before.walks, { ok: 1, timeout: 0, error: 0 });
  t.equal(before.duration.count, 1);
  t.equal(before.duration.sum, 2);
  t.same(before.duration.counts, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1], 'cumulative: 2 s is in every bucket from le=5 up');
  t.same(before.duration.bounds, WALK_BUCKETS);
  const after = m.current(0);
  t.equal(after.duration.count, 2);
  t.same(after.duration.counts, before.duration.counts, 'a 400 s walk is in no finite bucket');
  t.same(after.walks, { ok: 1, timeout: 1, error: 0 });
});

t.test('without a logger (or below its level) nothing is written; the counts are the same', async (t) => {
  const m = new WalkStats();
  m.record({ key: 'c1', result: 'error', durationMs: 1, error: denied('/d', 2) });
  t.same(m.current(0).walks, { ok: 0, timeout: 0, error: 1 });
  const { log, lines } = logger('error');
  const quiet = new WalkStats({ log });
  quiet.record({ key: 'c1', result: 'error', durationMs: 1, error: denied('/d', 2) });
  t.same(lines, []);
});
