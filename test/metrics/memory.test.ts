import t from 'tap';
import { MEMORY_METRICS } from '../../src/metrics/container/memory.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('all memory fields', async (t) => {
  const c = container('/a', {
    memory: {
      usageBytes: 1000,
      maxUsageBytes: 2000,
      workingSetBytes: 800,
      rssBytes: 500,
      cacheBytes: 300,
      mappedFileBytes: 50,
      swapBytes: 0,
      activeFileBytes: 100,
      inactiveFileBytes: 200,
      failcnt: 3,
      pgfault: { container: 10, hierarchy: 11 },
      pgmajfault: { container: 1, hierarchy: 2 },
    },
    spec: {},
  });
  t.same(runContainer(MEMORY_METRICS, c, snap), [
    'container_memory_cache 300',
    'container_memory_failcnt 3',
    'container_memory_failures_total{failure_type="pgfault",scope="container"} 10',
    'container_memory_failures_total{failure_type="pgfault",scope="hierarchy"} 11',
    'container_memory_failures_total{failure_type="pgmajfault",scope="container"} 1',
    'container_memory_failures_total{failure_type="pgmajfault",scope="hierarchy"} 2',
    'container_memory_mapped_file 50',
    'container_memory_max_usage_bytes 2000',
    'container_memory_rss 500',
    'container_memory_swap 0',
    'container_memory_total_active_file_bytes 100',
    'container_memory_total_inactive_file_bytes 200',
    'container_memory_usage_bytes 1000',
    'container_memory_working_set_bytes 800',
  ]);
});

t.test('absent fields emit nothing; a measured 0 is emitted', async (t) => {
  const c = container('/a', { memory: { usageBytes: 0, pgmajfault: { container: 0, hierarchy: 0 } }, spec: {} });
  t.same(runContainer(MEMORY_METRICS, c, snap), [
    'container_memory_failures_total{failure_type="pgmajfault",scope="container"} 0',
    'container_memory_failures_total{failure_type="pgmajfault",scope="hierarchy"} 0',
    'container_memory_usage_bytes 0',
  ]);
  t.same(runContainer(MEMORY_METRICS, container('/a', { spec: {} }), snap), []);
});
