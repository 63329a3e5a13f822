import { hostPath } from '../host/paths.js';
import type { CgroupReadContext } from './types.js';
import type { CgroupStats } from '../model/cgroup.js';
import { readV1 } from './v1.js';
import { readPressure, readV2 } from './v2.js';

/**
 * One cgroup's stats, read by the layout's mode: v2 from the cgroup2 tree; v1 from the controller hierarchies;
 * hybrid as v1, plus PSI from the cgroup2 mount where the same path exists there.
 * Never throws: absent files give absent fields, and a file that fails to read or parse is reported through
 * `ctx.onError` and leaves its fields out. A vanished cgroup gives `{ spec: {} }` and no error.
 */
export function readCgroupStats(ctx: CgroupReadContext, path: string): CgroupStats {
  const { layout } = ctx;
  switch (layout.mode) {
    case 'v2':
      return layout.v2 === undefined ? { spec: {} } : readV2(ctx, layout.v2, path);
    case 'v1':
      return readV1(ctx, path);
    case 'hybrid': {
      const stats = readV1(ctx, path);
      const pressure =
        layout.v2 === undefined || (ctx.kinds !== undefined && !ctx.kinds.has('pressure')) ? undefined : readPressure(ctx, hostPath(layout.v2, path));
      return pressure === undefined ? stats : { ...stats, pressure };
    }
  }
}
