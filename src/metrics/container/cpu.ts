import type { ContainerSnapshot } from '../../model/snapshot.js';
import { emitIf, type ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

/** cAdvisor's per-cpu label: `cpu00`, `cpu01`, ... (`%02d`, so `cpu100` past 99). */
export function cpuLabel(index: number): string {
  return `cpu${String(index).padStart(2, '0')}`;
}

/** cAdvisor emits the CFS counters only when the container has a quota (spec cpu quota ≠ 0). */
function cfs(c: ContainerSnapshot, value: number | undefined): number | undefined {
  const quota = c.cgroup.spec.cpuQuota;
  return quota !== undefined && quota !== 0 ? value : undefined;
}

const usage: ContainerMetricSpec = {
  name: 'container_cpu_usage_seconds_total',
  help: 'Cumulative cpu time consumed in seconds.',
  type: 'counter',
  labels: ['cpu'],
  collect(c, emit) {
    const cpu = c.cgroup.cpu;
    if (cpu === undefined) return;
    const perCpu = cpu.perCpuSeconds;
    if (perCpu !== undefined && perCpu.length > 0) {
      // v1: only the per-cpu rows (no `total` row), skipping CPUs at 0 (offline or never used), as cAdvisor.
      perCpu.forEach((seconds, i) => {
        if (seconds > 0) emitIf(emit, seconds, [cpuLabel(i)]);
      });
      return;
    }
    // v2 has no per-cpu accounting: one `total` row.
    emitIf(emit, cpu.usageSeconds, ['total']);
  },
};

export const CPU_METRICS: readonly ContainerMetricSpec[] = [
  usage,
  scalar('container_cpu_user_seconds_total', 'counter', 'Cumulative user cpu time consumed in seconds.', (c) => c.cgroup.cpu?.userSeconds),
  scalar('container_cpu_system_seconds_total', 'counter', 'Cumulative system cpu time consumed in seconds.', (c) => c.cgroup.cpu?.systemSeconds),
  scalar('container_cpu_cfs_periods_total', 'counter', 'Number of elapsed enforcement period intervals.', (c) => cfs(c, c.cgroup.cpu?.periods)),
  scalar('container_cpu_cfs_throttled_periods_total', 'counter', 'Number of throttled period intervals.', (c) => cfs(c, c.cgroup.cpu?.throttledPeriods)),
  scalar('container_cpu_cfs_throttled_seconds_total', 'counter', 'Total time duration the container has been throttled.', (c) =>
    cfs(c, c.cgroup.cpu?.throttledSeconds),
  ),
  scalar('container_cpu_cfs_burst_periods_total', 'counter', 'Number of periods when burst occurs.', (c) => cfs(c, c.cgroup.cpu?.burstPeriods)),
  scalar('container_cpu_cfs_burst_seconds_total', 'counter', 'Total time duration the container has been bursted.', (c) => cfs(c, c.cgroup.cpu?.burstSeconds)),
];
