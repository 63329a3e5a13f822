import t from 'tap';
import { PRESSURE_METRICS } from '../../src/metrics/container/pressure.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('full → stalled, some → waiting', async (t) => {
  const c = container('/a', {
    pressure: {
      cpu: { someSeconds: 1.5, fullSeconds: 0.5 },
      memory: { someSeconds: 2, fullSeconds: 1 },
      io: { someSeconds: 3.25, fullSeconds: 3 },
    },
    spec: {},
  });
  t.same(runContainer(PRESSURE_METRICS, c, snap), [
    'container_pressure_cpu_stalled_seconds_total 0.5',
    'container_pressure_cpu_waiting_seconds_total 1.5',
    'container_pressure_io_stalled_seconds_total 3',
    'container_pressure_io_waiting_seconds_total 3.25',
    'container_pressure_memory_stalled_seconds_total 1',
    'container_pressure_memory_waiting_seconds_total 2',
  ]);
});

t.test('missing PSI files or lines emit nothing', async (t) => {
  const c = container('/a', { pressure: { cpu: { someSeconds: 1 } }, spec: {} });
  t.same(runContainer(PRESSURE_METRICS, c, snap), ['container_pressure_cpu_waiting_seconds_total 1']);
  t.same(runContainer(PRESSURE_METRICS, container('/a', { spec: {} }), snap), []);
});
