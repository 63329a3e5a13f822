import type { NetworkInterfaceStats } from '../../model/network.js';
import { emitIf, type ContainerMetricSpec } from '../spec.js';

type Counter = Exclude<keyof NetworkInterfaceStats, 'name'>;

/** One counter of /proc/<pid>/net/dev per interface. */
function perInterface(name: string, help: string, field: Counter): ContainerMetricSpec {
  return {
    name,
    help,
    type: 'counter',
    labels: ['interface'],
    collect(c, emit) {
      for (const iface of c.network ?? []) emitIf(emit, iface[field], [iface.name]);
    },
  };
}

export const NETWORK_METRICS: readonly ContainerMetricSpec[] = [
  perInterface('container_network_receive_bytes_total', 'Cumulative count of bytes received', 'rxBytes'),
  perInterface('container_network_receive_packets_total', 'Cumulative count of packets received', 'rxPackets'),
  perInterface('container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving', 'rxDropped'),
  perInterface('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving', 'rxErrors'),
  perInterface('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted', 'txBytes'),
  perInterface('container_network_transmit_packets_total', 'Cumulative count of packets transmitted', 'txPackets'),
  perInterface('container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting', 'txDropped'),
  perInterface('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting', 'txErrors'),
];
