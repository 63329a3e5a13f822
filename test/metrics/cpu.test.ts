import t from 'tap';
import { CPU_METRICS, cpuLabel } from '../../src/metrics/container/cpu.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('v1: per-cpu rows only, zero CPUs skipped, no total row', async (t) => {
  const c = container('/a', {
    cpu: { usageSeconds: 3.5, perCpuSeconds: [1.5, 0, 2], userSeconds: 2, systemSeconds: 1 },
    spec: {},
  });
  t.same(runContainer(CPU_METRICS, c, snap), [
    'container_cpu_system_seconds_total 1',
    'container_cpu_usage_seconds_total{cpu="cpu00"} 1.5',
    'container_cpu_usage_seconds_total{cpu="cpu02"} 2',
    'container_cpu_user_seconds_total 2',
  ]);
});

t.test('v1: all per-cpu values zero emit no usage row (as cAdvisor)', async (t) => {
  const c = container('/a', { cpu: { usageSeconds: 0, perCpuSeconds: [0, 0] }, spec: {} });
  t.same(runContainer(CPU_METRICS, c, snap), []);
});

t.test('v2: no per-cpu data gives one cpu="total" row', async (t) => {
  for (const perCpuSeconds of [undefined, []]) {
    const c = container('/a', { cpu: { usageSeconds: 4.25, perCpuSeconds }, spec: {} });
    t.same(runContainer(CPU_METRICS, c, snap), ['container_cpu_usage_seconds_total{cpu="total"} 4.25']);
  }
});

t.test('cpu label is two-digit zero padded like %02d', async (t) => {
  t.equal(cpuLabel(0), 'cpu00');
  t.equal(cpuLabel(9), 'cpu09');
  t.equal(cpuLabel(63), 'cpu63');
  t.equal(cpuLabel(100), 'cpu100');
});

t.test('cfs counters only with a quota', async (t) => {
  const cpu = { periods: 100, throttledPeriods: 7, throttledSeconds: 0.25 };
  t.same(runContainer(CPU_METRICS, container('/a', { cpu, spec: {} }), snap), [], 'quota undefined (unlimited)');
  t.same(runContainer(CPU_METRICS, container('/a', { cpu, spec: { cpuQuota: 0 } }), snap), [], 'quota 0');
  t.same(runContainer(CPU_METRICS, container('/a', { cpu, spec: { cpuQuota: 50_000 } }), snap), [
    'container_cpu_cfs_periods_total 100',
    'container_cpu_cfs_throttled_periods_total 7',
    'container_cpu_cfs_throttled_seconds_total 0.25',
  ]);
});

t.test('a quota without cpu.stat data still emits nothing', async (t) => {
  t.same(runContainer(CPU_METRICS, container('/a', { spec: { cpuQuota: 50_000 } }), snap), []);
  t.same(runContainer(CPU_METRICS, container('/a', { cpu: {}, spec: { cpuQuota: 50_000 } }), snap), []);
});

t.test('no cpu stats: no cpu series', async (t) => {
  t.same(runContainer(CPU_METRICS, container('/a', { spec: {} }), snap), []);
});
