import type { ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

/**
 * OOM kills as the kernel counts them (v2 memory.events `oom_kill`, v1 memory.oom_control `oom_kill`; `/`: the node's,
 * /proc/vmstat), or, on kernels without that counter, as read from /dev/kmsg since podvisor started.
 */
export const OOM_METRICS: readonly ContainerMetricSpec[] = [
  scalar('container_oom_events_total', 'counter', 'Count of out of memory events observed for the container', (c) => c.cgroup.oomKills),
];
