import t from 'tap';
import { LIFECYCLE_METRICS } from '../../src/metrics/container/lifecycle.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

t.test('last_seen is the gather time for every container; start time only when known', async (t) => {
  const known = container('/a', { spec: {} }, { startTimeSeconds: 1_700_000_000 });
  const unknown = container('/b', { spec: {} });
  const snap = snapshotOf([known, unknown]);
  t.same(runContainer(LIFECYCLE_METRICS, known, snap), ['container_last_seen 1700000123.456', 'container_start_time_seconds 1700000000']);
  t.same(runContainer(LIFECYCLE_METRICS, unknown, snap), ['container_last_seen 1700000123.456']);
});
