/**
 * What is measured for a container's disk usage, by runtime (cAdvisor's semantics where it has them):
 * - containerd (and Docker with the containerd image store, namespace `moby`): the runtime's Snapshots/Usage of the
 *   container's snapshot: no walk at all;
 * - Docker (overlay2): a walk of the container's upper dir plus its `/var/lib/docker/containers/<id>` dir (logs);
 * - CRI-O and anything else with a known upper dir: a walk of it.
 *
 * A walk that was denied anything (EACCES/EPERM: no CAP_DAC_READ_SEARCH, and a directory of another user) rejects
 * with a `DiskPermissionError`: the scheduler then counts an error and publishes nothing new, never the undercount.
 */
import path from 'node:path';
import { hostPath } from '../host/paths.js';
import type { RuntimeFactory } from '../runtime/factory.js';
import type { RuntimeContainer } from '../model/runtime.js';
import type { Measure } from './scheduler.js';
import { DiskPermissionError } from '../errors.js';
import { walk } from './walker.js';

export interface UsagePlan {
  measure: Measure;
  /** A host directory on the filesystem that holds the measured data: its device labels the series. */
  dir: string;
}

export function planUsage(
  c: RuntimeContainer,
  factory: Pick<RuntimeFactory, 'canMeasureSnapshot' | 'snapshotUsage'>,
  rootfs: string,
  holdWhile?: () => Promise<unknown> | undefined,
): UsagePlan | undefined {
  if (factory.canMeasureSnapshot(c)) {
    return {
      measure: (signal) => factory.snapshotUsage(c, signal),
      dir: `/var/lib/containerd/io.containerd.snapshotter.v1.${c.snapshotter ?? 'overlayfs'}`,
    };
  }
  if (c.upperDir === undefined) return undefined;
  const dirs = [c.upperDir];
  // Docker keeps logs and config in /var/lib/docker/containers/<id>; cAdvisor adds it to the container's usage.
  if (c.runtime === 'docker' && c.logDir !== undefined && path.basename(c.logDir) === c.id) dirs.push(c.logDir);
  return {
    dir: c.upperDir,
    measure: async (signal) => {
      let bytes = 0;
      let inodes = 0;
      let files = 0;
      for (const d of dirs) {
        const r = await walk(hostPath(rootfs, d), { signal, ...(holdWhile === undefined ? {} : { holdWhile }) });
        if (r.denied > 0) throw new DiskPermissionError(d, r.denied, r.deniedPath);
        bytes += r.bytes;
        inodes += r.inodes;
        files += r.files;
      }
      return { bytes, inodes, files };
    },
  };
}
