import type { ContainerMetricSpec } from '../spec.js';

/**
 * container_fs_* from disk usage: containers get their writable layer's usage (from the disk scheduler's last
 * complete measurement: absent until the first one finishes) on the device that holds it; the root cgroup gets the
 * totals of every block-device filesystem, as cAdvisor.
 */
export const FS_METRICS: readonly ContainerMetricSpec[] = [
  {
    name: 'container_fs_inodes_free',
    help: 'Number of available Inodes',
    type: 'gauge',
    labels: ['device'],
    collect(c, emit, snapshot) {
      if (c.id === '/') for (const f of snapshot.filesystems ?? []) emit(f.inodesFree, [f.device]);
      else if (c.fs?.inodesFree !== undefined) emit(c.fs.inodesFree, [c.fs.device]);
    },
  },
  {
    // cAdvisor's name: a gauge ending in `_total`, typed untyped so the name stays and promtool lints clean.
    name: 'container_fs_inodes_total',
    help: 'Number of Inodes',
    type: 'untyped',
    labels: ['device'],
    collect(c, emit, snapshot) {
      if (c.id === '/') for (const f of snapshot.filesystems ?? []) emit(f.inodes, [f.device]);
      else if (c.fs !== undefined) emit(c.fs.inodes, [c.fs.device]);
    },
  },
  {
    name: 'container_fs_limit_bytes',
    help: 'Number of bytes that can be consumed by the container on this filesystem.',
    type: 'gauge',
    labels: ['device'],
    collect(c, emit, snapshot) {
      if (c.id === '/') for (const f of snapshot.filesystems ?? []) emit(f.capacityBytes, [f.device]);
      else if (c.fs?.limitBytes !== undefined) emit(c.fs.limitBytes, [c.fs.device]);
    },
  },
  {
    name: 'container_fs_usage_bytes',
    help: 'Number of bytes that are consumed by the container on this filesystem.',
    type: 'gauge',
    labels: ['device'],
    collect(c, emit, snapshot) {
      if (c.id === '/') for (const f of snapshot.filesystems ?? []) emit(f.capacityBytes - f.freeBytes, [f.device]);
      else if (c.fs !== undefined) emit(c.fs.usageBytes, [c.fs.device]);
    },
  },
];
