import type { Snapshot } from '../../model/snapshot.js';
import { emitIf, type ContainerMetricSpec } from '../spec.js';

/** The `device` label: `/dev/<name>` from /proc/partitions, or '' when the device is unknown. */
export function deviceName(snapshot: Snapshot, dev: { major: number; minor: number }): string {
  return snapshot.deviceNames.get(`${dev.major}:${dev.minor}`) ?? '';
}

/** Bytes of one operation (`Read`, `Write`) per device. */
function bytesByDevice(name: string, help: string, operation: string): ContainerMetricSpec {
  return {
    name,
    help,
    type: 'counter',
    labels: ['device'],
    collect(c, emit, snapshot) {
      for (const dev of c.cgroup.blkio ?? []) emitIf(emit, dev.bytes[operation], [deviceName(snapshot, dev)]);
    },
  };
}

const deviceUsage: ContainerMetricSpec = {
  name: 'container_blkio_device_usage_total',
  help: 'Blkio Device bytes usage',
  type: 'counter',
  labels: ['device', 'major', 'minor', 'operation'],
  collect(c, emit, snapshot) {
    for (const dev of c.cgroup.blkio ?? []) {
      const device = deviceName(snapshot, dev);
      for (const [operation, bytes] of Object.entries(dev.bytes)) {
        emitIf(emit, bytes, [device, String(dev.major), String(dev.minor), operation]);
      }
    }
  },
};

export const BLKIO_METRICS: readonly ContainerMetricSpec[] = [
  bytesByDevice('container_fs_reads_bytes_total', 'Cumulative count of bytes read', 'Read'),
  bytesByDevice('container_fs_writes_bytes_total', 'Cumulative count of bytes written', 'Write'),
  deviceUsage,
];
