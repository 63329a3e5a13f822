import { emitIf, type ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

const failures: ContainerMetricSpec = {
  name: 'container_memory_failures_total',
  help: 'Cumulative count of memory allocation failures.',
  type: 'counter',
  labels: ['failure_type', 'scope'],
  collect(c, emit) {
    const m = c.cgroup.memory;
    if (m === undefined) return;
    for (const [failureType, faults] of [
      ['pgfault', m.pgfault],
      ['pgmajfault', m.pgmajfault],
    ] as const) {
      if (faults === undefined) continue;
      emitIf(emit, faults.container, [failureType, 'container']);
      emitIf(emit, faults.hierarchy, [failureType, 'hierarchy']);
    }
  },
};

export const MEMORY_METRICS: readonly ContainerMetricSpec[] = [
  scalar(
    'container_memory_usage_bytes',
    'gauge',
    'Current memory usage in bytes, including all memory regardless of when it was accessed',
    (c) => c.cgroup.memory?.usageBytes,
  ),
  scalar('container_memory_max_usage_bytes', 'gauge', 'Maximum memory usage recorded in bytes', (c) => c.cgroup.memory?.maxUsageBytes),
  scalar('container_memory_working_set_bytes', 'gauge', 'Current working set in bytes.', (c) => c.cgroup.memory?.workingSetBytes),
  scalar('container_memory_rss', 'gauge', 'Size of RSS in bytes.', (c) => c.cgroup.memory?.rssBytes),
  scalar('container_memory_cache', 'gauge', 'Number of bytes of page cache memory.', (c) => c.cgroup.memory?.cacheBytes),
  scalar('container_memory_mapped_file', 'gauge', 'Size of memory mapped files in bytes.', (c) => c.cgroup.memory?.mappedFileBytes),
  scalar('container_memory_swap', 'gauge', 'Container swap usage in bytes.', (c) => c.cgroup.memory?.swapBytes),
  // cAdvisor's historical name, kept so existing dashboards and alerts keep working. cAdvisor types it a counter, but
  // a counter without `_total` fails `promtool check metrics`, and under OpenMetrics its samples would have to be
  // renamed `container_memory_failcnt_total`, breaking every query on the old name. As a gauge the name stays stable
  // in both formats and rate() works the same.
  scalar('container_memory_failcnt', 'gauge', 'Number of memory usage hits limits', (c) => c.cgroup.memory?.failcnt),
  failures,
  scalar('container_memory_total_active_file_bytes', 'gauge', 'Current total active file in bytes.', (c) => c.cgroup.memory?.activeFileBytes),
  scalar('container_memory_kernel_usage', 'gauge', 'Size of kernel memory allocated in bytes.', (c) => c.cgroup.memory?.kernelUsageBytes),
  scalar(
    'container_memory_events_high_total',
    'counter',
    'Cumulative count of memory.high throttle events for the container',
    (c) => c.cgroup.memory?.eventsHigh,
  ),
  scalar(
    'container_memory_events_max_total',
    'counter',
    'Cumulative count of memory.max limit hit events for the container',
    (c) => c.cgroup.memory?.eventsMax,
  ),
  scalar('container_memory_total_inactive_file_bytes', 'gauge', 'Current total inactive file in bytes.', (c) => c.cgroup.memory?.inactiveFileBytes),
];
