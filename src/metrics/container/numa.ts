import { emitIf, type ContainerMetricSpec } from '../spec.js';

const numaPages: ContainerMetricSpec = {
  name: 'container_memory_numa_pages',
  help: 'Number of used pages per NUMA node',
  type: 'gauge',
  labels: ['type', 'scope', 'node'],
  collect(c, emit) {
    const numa = c.cgroup.numa;
    if (numa === undefined) return;
    for (const [scope, byType] of [
      ['container', numa.container],
      ['hierarchy', numa.hierarchy],
    ] as const) {
      for (const [type, nodes] of Object.entries(byType ?? {})) {
        for (const [node, pages] of Object.entries(nodes)) emitIf(emit, pages, [type, scope, node]);
      }
    }
  },
};

export const NUMA_METRICS: readonly ContainerMetricSpec[] = [numaPages];
