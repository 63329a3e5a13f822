import t from 'tap';
import { SPEC_METRICS } from '../../src/metrics/container/spec.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('all spec values, unlimited memory reported as 0', async (t) => {
  const c = container('/a', {
    spec: {
      cpuPeriod: 100_000,
      cpuQuota: 50_000,
      cpuShares: 512,
      memoryLimitBytes: 1_073_741_824,
      memoryReservationBytes: 0,
      memorySwapLimitBytes: 0,
    },
  });
  t.same(runContainer(SPEC_METRICS, c, snap), [
    'container_spec_cpu_period 100000',
    'container_spec_cpu_quota 50000',
    'container_spec_cpu_shares 512',
    'container_spec_memory_limit_bytes 1073741824',
    'container_spec_memory_reservation_limit_bytes 0',
    'container_spec_memory_swap_limit_bytes 0',
  ]);
});

t.test('cpu quota absent when undefined or 0', async (t) => {
  t.same(runContainer(SPEC_METRICS, container('/a', { spec: { cpuPeriod: 100_000 } }), snap), ['container_spec_cpu_period 100000']);
  t.same(runContainer(SPEC_METRICS, container('/a', { spec: { cpuPeriod: 100_000, cpuQuota: 0 } }), snap), ['container_spec_cpu_period 100000']);
});

t.test('empty spec: nothing', async (t) => {
  t.same(runContainer(SPEC_METRICS, container('/a', { spec: {} }), snap), []);
});
