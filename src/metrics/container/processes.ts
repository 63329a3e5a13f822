import { emitIf, type ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

const ulimitsSoft: ContainerMetricSpec = {
  name: 'container_ulimits_soft',
  help: 'Soft ulimit values for the container root process. Unlimited if -1, except priority and nice',
  type: 'gauge',
  labels: ['ulimit'],
  collect(c, emit) {
    for (const [ulimit, soft] of Object.entries(c.processes?.ulimitsSoft ?? {})) emitIf(emit, soft, [ulimit]);
  },
};

export const PROCESS_METRICS: readonly ContainerMetricSpec[] = [
  ulimitsSoft,
  scalar('container_processes', 'gauge', 'Number of processes running inside the container.', (c) => c.processes?.processes),
  scalar('container_file_descriptors', 'gauge', 'Number of open file descriptors for the container.', (c) => c.processes?.fileDescriptors),
  scalar('container_sockets', 'gauge', 'Number of open sockets for the container.', (c) => c.processes?.sockets),
  scalar('container_threads', 'gauge', 'Number of threads running inside the container', (c) => c.cgroup.pids?.current),
  scalar('container_threads_max', 'gauge', 'Maximum number of threads allowed inside the container, infinity if value is zero', (c) => c.cgroup.pids?.max),
];
