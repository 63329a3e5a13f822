import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

export const SCHED_METRICS: readonly ContainerMetricSpec[] = [
  scalar(
    'container_cpu_schedstat_run_seconds_total',
    'counter',
    'Time duration the processes of the container have run on the CPU.',
    (c) => c.sched?.runSeconds,
  ),
  scalar(
    'container_cpu_schedstat_runqueue_seconds_total',
    'counter',
    'Time duration processes of the container have been waiting on a runqueue.',
    (c) => c.sched?.runqueueSeconds,
  ),
  scalar('container_cpu_schedstat_run_periods_total', 'counter', 'Number of times processes of the cgroup have run on the cpu', (c) => c.sched?.runPeriods),
];
