import type { DeviceCounters } from '../../model/cgroup.js';
import type { DiskIoCounters } from '../../model/disk.js';
import type { ContainerSnapshot, Snapshot } from '../../model/snapshot.js';
import { emitIf, type ContainerMetricSpec, type MetricType } from '../spec.js';
import { deviceName } from './blkio.js';

/**
 * The diskIO families beyond bytes, as cAdvisor's ioValues builds them: the cgroup's own rows per block device
 * (v1 blkio, v2 io.stat), and for `/` one row per block-device filesystem with that device's /proc/diskstats counters.
 * A filesystem row whose device already has a cgroup row is left out (a root filesystem on a whole disk, `/dev/vda`,
 * would otherwise give two series with one label set; cAdvisor's registry drops the second one the same way).
 * Containers get no filesystem row. cAdvisor gives a Docker container one: zeros in 0.38.7 (its FsStats carried no disk
 * counters), the whole disk's counters from 0.39 (container/docker/fs.go addDiskStats). Neither is the container's:
 * summed over a pod's containers the second counts the disk once per container.
 */

/** The devices whose /proc/diskstats counters are the cgroup's: every block-device filesystem's for `/`, none otherwise. */
function filesystemDevices(c: ContainerSnapshot, snapshot: Snapshot): string[] {
  return c.id === '/' ? (snapshot.filesystems ?? []).map((f) => f.device) : [];
}

function ioSpec(
  name: string,
  help: string,
  type: MetricType,
  rows: ((c: ContainerSnapshot) => readonly DeviceCounters[] | undefined) | undefined,
  op: string,
  fromDiskstats: ((d: DiskIoCounters) => number) | undefined,
): ContainerMetricSpec {
  return {
    name,
    help,
    type,
    labels: ['device'],
    collect(c, emit, snapshot) {
      const seen = new Set<string>();
      for (const dev of rows?.(c) ?? []) {
        const device = deviceName(snapshot, dev);
        const value = dev.values[op];
        if (value === undefined || seen.has(device)) continue;
        seen.add(device);
        emitIf(emit, value, [device]);
      }
      if (fromDiskstats === undefined || snapshot.diskstats === undefined) return;
      for (const device of filesystemDevices(c, snapshot)) {
        const counters = snapshot.diskstats.get(device);
        if (counters === undefined || seen.has(device)) continue;
        seen.add(device);
        emitIf(emit, fromDiskstats(counters), [device]);
      }
    },
  };
}

export const DISKIO_METRICS: readonly ContainerMetricSpec[] = [
  ioSpec(
    'container_fs_reads_total',
    'Cumulative count of reads completed',
    'counter',
    (c) => c.cgroup.io?.serviced,
    'Read',
    (d) => d.readsCompleted,
  ),
  ioSpec(
    'container_fs_writes_total',
    'Cumulative count of writes completed',
    'counter',
    (c) => c.cgroup.io?.serviced,
    'Write',
    (d) => d.writesCompleted,
  ),
  ioSpec(
    'container_fs_sector_reads_total',
    'Cumulative count of sector reads completed',
    'counter',
    (c) => c.cgroup.io?.sectors,
    'Read',
    (d) => d.sectorsRead,
  ),
  ioSpec(
    'container_fs_sector_writes_total',
    'Cumulative count of sector writes completed',
    'counter',
    (c) => c.cgroup.io?.sectors,
    'Write',
    (d) => d.sectorsWritten,
  ),
  ioSpec(
    'container_fs_reads_merged_total',
    'Cumulative count of reads merged',
    'counter',
    (c) => c.cgroup.io?.merged,
    'Read',
    (d) => d.readsMerged,
  ),
  ioSpec(
    'container_fs_writes_merged_total',
    'Cumulative count of writes merged',
    'counter',
    (c) => c.cgroup.io?.merged,
    'Write',
    (d) => d.writesMerged,
  ),
  ioSpec(
    'container_fs_read_seconds_total',
    'Cumulative count of seconds spent reading',
    'counter',
    (c) => c.cgroup.io?.serviceTime,
    'Read',
    (d) => d.readSeconds,
  ),
  ioSpec(
    'container_fs_write_seconds_total',
    'Cumulative count of seconds spent writing',
    'counter',
    (c) => c.cgroup.io?.serviceTime,
    'Write',
    (d) => d.writeSeconds,
  ),
  ioSpec(
    'container_fs_io_current',
    'Number of I/Os currently in progress',
    'gauge',
    (c) => c.cgroup.io?.queued,
    'Total',
    (d) => d.ioInProgress,
  ),
  ioSpec(
    'container_fs_io_time_seconds_total',
    'Cumulative count of seconds spent doing I/Os',
    'counter',
    (c) => c.cgroup.io?.serviceTime,
    'Total',
    (d) => d.ioSeconds,
  ),
  ioSpec('container_fs_io_time_weighted_seconds_total', 'Cumulative weighted I/O time in seconds', 'counter', undefined, 'Total', (d) => d.weightedIoSeconds),
  ioSpec('container_fs_io_cost_usage_seconds_total', 'Cumulative IOCost usage in seconds', 'counter', (c) => c.cgroup.io?.costUsage, 'Count', undefined),
  ioSpec('container_fs_io_cost_wait_seconds_total', 'Cumulative IOCost wait in seconds', 'counter', (c) => c.cgroup.io?.costWait, 'Count', undefined),
  ioSpec('container_fs_io_cost_indebt_seconds_total', 'Cumulative IOCost debt in seconds', 'counter', (c) => c.cgroup.io?.costIndebt, 'Count', undefined),
  ioSpec('container_fs_io_cost_indelay_seconds_total', 'Cumulative IOCost delay in seconds', 'counter', (c) => c.cgroup.io?.costIndelay, 'Count', undefined),
];
