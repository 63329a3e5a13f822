import type { SocketStats } from '../../model/network.js';
import { TCP_STATES, UDP_STATES } from '../../proc/net-sockets.js';
import { emitIf, type ContainerMetricSpec } from '../spec.js';

/**
 * Sockets by state of the namespace a container owns. cAdvisor's gauges named `_total`: typed untyped, so the names stay
 * and promtool lints clean (as container_fs_inodes_total).
 */
function byState(
  name: string,
  help: string,
  label: string,
  states: readonly string[],
  pick: (s: SocketStats) => Readonly<Record<string, number>> | undefined,
): ContainerMetricSpec {
  return {
    name,
    help,
    type: 'untyped',
    labels: [label],
    collect(c, emit) {
      const counts = c.sockets === undefined ? undefined : pick(c.sockets);
      if (counts === undefined) return;
      for (const state of states) emitIf(emit, counts[state], [state]);
    },
  };
}

export const TCP_METRICS: readonly ContainerMetricSpec[] = [
  byState('container_network_tcp_usage_total', 'tcp connection usage statistic for container', 'tcp_state', TCP_STATES, (s) => s.tcp),
  byState('container_network_tcp6_usage_total', 'tcp6 connection usage statistic for container', 'tcp_state', TCP_STATES, (s) => s.tcp6),
];

export const UDP_METRICS: readonly ContainerMetricSpec[] = [
  byState('container_network_udp_usage_total', 'udp connection usage statistic for container', 'udp_state', UDP_STATES, (s) => s.udp),
  byState('container_network_udp6_usage_total', 'udp6 connection usage statistic for container', 'udp_state', UDP_STATES, (s) => s.udp6),
];
