import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

export const PROCESS_METRICS: readonly ContainerMetricSpec[] = [
  scalar('container_processes', 'gauge', 'Number of processes running inside the container.', (c) => c.processes?.processes),
  scalar('container_file_descriptors', 'gauge', 'Number of open file descriptors for the container.', (c) => c.processes?.fileDescriptors),
  scalar('container_sockets', 'gauge', 'Number of open sockets for the container.', (c) => c.processes?.sockets),
  scalar('container_threads', 'gauge', 'Number of threads running inside the container', (c) => c.cgroup.pids?.current),
  scalar('container_threads_max', 'gauge', 'Maximum number of threads allowed inside the container, infinity if value is zero', (c) => c.cgroup.pids?.max),
];
