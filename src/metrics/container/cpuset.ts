import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

export const CPUSET_METRICS: readonly ContainerMetricSpec[] = [
  scalar('container_memory_migrate', 'gauge', 'Memory migrate status.', (c) => c.cgroup.memoryMigrate),
];
