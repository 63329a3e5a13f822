import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

/** container_spec_*: limits and shares. Unlimited memory is already 0 in the snapshot, as cAdvisor reports it. */
export const SPEC_METRICS: readonly ContainerMetricSpec[] = [
  scalar('container_spec_cpu_period', 'gauge', 'CPU period of the container.', (c) => c.cgroup.spec.cpuPeriod),
  // cAdvisor leaves the quota out when there is none (0, or unlimited, which the reader turns into undefined).
  scalar('container_spec_cpu_quota', 'gauge', 'CPU quota of the container.', (c) => (c.cgroup.spec.cpuQuota === 0 ? undefined : c.cgroup.spec.cpuQuota)),
  scalar('container_spec_cpu_shares', 'gauge', 'CPU share of the container.', (c) => c.cgroup.spec.cpuShares),
  scalar('container_spec_memory_limit_bytes', 'gauge', 'Memory limit for the container.', (c) => c.cgroup.spec.memoryLimitBytes),
  scalar('container_spec_memory_reservation_limit_bytes', 'gauge', 'Memory reservation limit for the container.', (c) => c.cgroup.spec.memoryReservationBytes),
  scalar('container_spec_memory_swap_limit_bytes', 'gauge', 'Memory swap limit for the container.', (c) => c.cgroup.spec.memorySwapLimitBytes),
];
