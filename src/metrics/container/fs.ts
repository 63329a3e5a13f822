import type { FilesystemStats, ContainerFsUsage } from '../../model/disk.js';
import type { ContainerMetricSpec, MetricType } from '../spec.js';

/**
 * container_fs_* from disk usage: containers get their writable layer's usage (from the disk scheduler's last
 * complete measurement: absent until the first one finishes) on the device that holds it; the root cgroup gets the
 * totals of every block-device filesystem, as cAdvisor.
 */
function fsSpec(
  name: string,
  help: string,
  type: MetricType,
  root: (f: FilesystemStats) => number,
  container: (u: ContainerFsUsage) => number | undefined,
): ContainerMetricSpec {
  return {
    name,
    help,
    type,
    labels: ['device'],
    collect(c, emit, snapshot) {
      if (c.id === '/') {
        for (const f of snapshot.filesystems ?? []) emit(root(f), [f.device]);
        return;
      }
      const value = c.fs === undefined ? undefined : container(c.fs);
      if (c.fs !== undefined && value !== undefined) emit(value, [c.fs.device]);
    },
  };
}

export const FS_METRICS: readonly ContainerMetricSpec[] = [
  fsSpec(
    'container_fs_inodes_free',
    'Number of available Inodes',
    'gauge',
    (f) => f.inodesFree,
    (u) => u.inodesFree,
  ),
  // cAdvisor's name: a gauge ending in `_total`, typed untyped so the name stays and promtool lints clean.
  fsSpec(
    'container_fs_inodes_total',
    'Number of Inodes',
    'untyped',
    (f) => f.inodes,
    (u) => u.inodes,
  ),
  fsSpec(
    'container_fs_limit_bytes',
    'Number of bytes that can be consumed by the container on this filesystem.',
    'gauge',
    (f) => f.capacityBytes,
    (u) => u.limitBytes,
  ),
  fsSpec(
    'container_fs_usage_bytes',
    'Number of bytes that are consumed by the container on this filesystem.',
    'gauge',
    (f) => f.capacityBytes - f.freeBytes,
    (u) => u.usageBytes,
  ),
];
