import type { HugetlbStats } from '../../model/cgroup.js';
import { emitIf, type ContainerMetricSpec, type MetricType } from '../spec.js';

function perPagesize(name: string, help: string, type: MetricType, pick: (h: HugetlbStats) => number | undefined): ContainerMetricSpec {
  return {
    name,
    help,
    type,
    labels: ['pagesize'],
    collect(c, emit) {
      for (const h of c.cgroup.hugetlb ?? []) emitIf(emit, pick(h), [h.pagesize]);
    },
  };
}

export const HUGETLB_METRICS: readonly ContainerMetricSpec[] = [
  // cAdvisor types it a counter; as container_memory_failcnt, a gauge keeps the name valid in both formats.
  perPagesize('container_hugetlb_failcnt', 'Number of hugepage usage hits limits', 'gauge', (h) => h.failcnt),
  perPagesize('container_hugetlb_usage_bytes', 'Current hugepage usage in bytes', 'gauge', (h) => h.usageBytes),
  perPagesize('container_hugetlb_max_usage_bytes', 'Maximum hugepage usage recorded in bytes', 'gauge', (h) => h.maxUsageBytes),
];
