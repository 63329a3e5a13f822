/**
 * container_fs_* of a gather. Disk usage is measured in the background by the disk scheduler, never here: a gather
 * tells the scheduler which containers exist now and attaches the last complete result of each (absent until the
 * first one finishes); the root cgroup gets the totals of the node's block-device filesystems.
 */
import type { Filesystems } from '../disk/filesystems.js';
import type { DiskScheduler, Measure } from '../disk/scheduler.js';
import { planUsage } from '../disk/usage.js';
import type { WalkStats } from '../disk/walk-stats.js';
import type { RuntimeContainer } from '../model/runtime.js';
import type { ContainerSnapshot, Snapshot } from '../model/snapshot.js';
import type { RuntimeFactory } from '../runtime/factory.js';

export interface DiskUsage {
  scheduler: DiskScheduler;
  filesystems: Filesystems;
  /** The measurements' own counts (podvisor_disk_walk_*), copied into each snapshot. */
  stats?: WalkStats;
}

/**
 * Attaches `fs` to the containers whose runtime says where their writable layer is, syncs the scheduler with them,
 * and sets the snapshot's filesystem totals and walk stats. `owners[i]` is the runtime container of `containers[i]`.
 * `holdWalks`: disk walks on the gather's thread wait for it between their slices.
 */
export function attachDiskUsage(
  snapshot: Snapshot,
  containers: readonly ContainerSnapshot[],
  owners: readonly (RuntimeContainer | undefined)[],
  runtimes: readonly RuntimeFactory[],
  disk: DiskUsage,
  rootfs: string,
  holdWalks: () => Promise<void> | undefined,
): void {
  const measures = new Map<string, Measure>();
  containers.forEach((c, i) => {
    const owner = owners[i];
    const factory = owner === undefined ? undefined : runtimes.find((f) => f.runtime === owner.runtime);
    if (owner === undefined || factory === undefined || measures.has(owner.id)) return;
    let plan = planUsage(owner, factory, rootfs, holdWalks);
    if (plan === undefined && owner.runtime === 'docker') {
      // Docker with the containerd image store has no upper dir: its snapshot lives in containerd's `moby` namespace.
      const containerd = runtimes.find((f) => f.runtime === 'containerd');
      const moby = containerd?.get(owner.id);
      if (containerd !== undefined && moby !== undefined) plan = planUsage(moby, containerd, rootfs, holdWalks);
    }
    if (plan === undefined) return;
    measures.set(owner.id, plan.measure);
    const usage = disk.scheduler.get(owner.id);
    const filesystem = disk.filesystems.of(plan.dir);
    if (usage === undefined || filesystem === undefined) return; // absent until the first walk finishes
    c.fs = {
      device: filesystem.device,
      usageBytes: usage.bytes,
      inodes: usage.inodes,
      limitBytes: filesystem.capacityBytes,
      inodesFree: filesystem.inodesFree,
    };
  });
  disk.scheduler.sync(measures);
  snapshot.filesystems = disk.filesystems.all();
  if (disk.stats !== undefined) snapshot.disk = disk.stats.current(disk.scheduler.queueLength());
}
