import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

/** PSI totals (cgroup v2 `*.pressure`): `full` → stalled, `some` → waiting, as cAdvisor. */
export const PRESSURE_METRICS: readonly ContainerMetricSpec[] = [
  scalar(
    'container_pressure_cpu_stalled_seconds_total',
    'counter',
    'Total time duration no tasks in the container could make progress due to CPU congestion.',
    (c) => c.cgroup.pressure?.cpu?.fullSeconds,
  ),
  scalar(
    'container_pressure_cpu_waiting_seconds_total',
    'counter',
    'Total time duration tasks in the container have waited due to CPU congestion.',
    (c) => c.cgroup.pressure?.cpu?.someSeconds,
  ),
  scalar(
    'container_pressure_memory_stalled_seconds_total',
    'counter',
    'Total time duration no tasks in the container could make progress due to memory congestion.',
    (c) => c.cgroup.pressure?.memory?.fullSeconds,
  ),
  scalar(
    'container_pressure_memory_waiting_seconds_total',
    'counter',
    'Total time duration tasks in the container have waited due to memory congestion.',
    (c) => c.cgroup.pressure?.memory?.someSeconds,
  ),
  scalar(
    'container_pressure_io_stalled_seconds_total',
    'counter',
    'Total time duration no tasks in the container could make progress due to IO congestion.',
    (c) => c.cgroup.pressure?.io?.fullSeconds,
  ),
  scalar(
    'container_pressure_io_waiting_seconds_total',
    'counter',
    'Total time duration tasks in the container have waited due to IO congestion.',
    (c) => c.cgroup.pressure?.io?.someSeconds,
  ),
];
