import t from 'tap';
import { NETWORK_METRICS } from '../../src/metrics/container/network.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('one row per interface and counter', async (t) => {
  const iface = (name: string, base: number) => ({
    name,
    rxBytes: base + 1,
    rxPackets: base + 2,
    rxErrors: base + 3,
    rxDropped: base + 4,
    txBytes: base + 5,
    txPackets: base + 6,
    txErrors: base + 7,
    txDropped: base + 8,
  });
  const c = container('/a', { spec: {} }, { network: [iface('eth0', 0), iface('eth1', 10)] });
  t.same(runContainer(NETWORK_METRICS, c, snap), [
    'container_network_receive_bytes_total{interface="eth0"} 1',
    'container_network_receive_bytes_total{interface="eth1"} 11',
    'container_network_receive_errors_total{interface="eth0"} 3',
    'container_network_receive_errors_total{interface="eth1"} 13',
    'container_network_receive_packets_dropped_total{interface="eth0"} 4',
    'container_network_receive_packets_dropped_total{interface="eth1"} 14',
    'container_network_receive_packets_total{interface="eth0"} 2',
    'container_network_receive_packets_total{interface="eth1"} 12',
    'container_network_transmit_bytes_total{interface="eth0"} 5',
    'container_network_transmit_bytes_total{interface="eth1"} 15',
    'container_network_transmit_errors_total{interface="eth0"} 7',
    'container_network_transmit_errors_total{interface="eth1"} 17',
    'container_network_transmit_packets_dropped_total{interface="eth0"} 8',
    'container_network_transmit_packets_dropped_total{interface="eth1"} 18',
    'container_network_transmit_packets_total{interface="eth0"} 6',
    'container_network_transmit_packets_total{interface="eth1"} 16',
  ]);
});

t.test('no network namespace of its own: nothing', async (t) => {
  t.same(runContainer(NETWORK_METRICS, container('/a', { spec: {} }), snap), []);
  t.same(runContainer(NETWORK_METRICS, container('/a', { spec: {} }, { network: [] }), snap), []);
});
