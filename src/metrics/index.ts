/** The metric specs podvisor exports, in exposition order, and the rendering of a whole snapshot. */
import { ACCELERATOR_METRICS } from './container/accelerator.js';
import { BLKIO_METRICS } from './container/blkio.js';
import { CPU_METRICS } from './container/cpu.js';
import { CPUSET_METRICS } from './container/cpuset.js';
import { DISKIO_METRICS } from './container/diskio.js';
import { FS_METRICS } from './container/fs.js';
import { HUGETLB_METRICS } from './container/hugetlb.js';
import { LIFECYCLE_METRICS } from './container/lifecycle.js';
import { MEMORY_METRICS } from './container/memory.js';
import { NETWORK_METRICS } from './container/network.js';
import { NUMA_METRICS } from './container/numa.js';
import { OOM_METRICS } from './container/oom.js';
import { PRESSURE_METRICS } from './container/pressure.js';
import { PROCESS_METRICS } from './container/processes.js';
import { SCHED_METRICS } from './container/sched.js';
import { TCP_METRICS, UDP_METRICS } from './container/sockets.js';
import { SPEC_METRICS } from './container/spec.js';
import type { Snapshot } from '../model/snapshot.js';
import type { RenderedFamily } from './exposition.js';
import { ACCELERATOR_MACHINE_METRICS } from './accelerator.js';
import { MACHINE_METRICS } from './machine.js';
import { renderContainerFamilies, renderMachineFamilies } from './render.js';
import { renderSelfFamilies, SNAPSHOT_SELF_METRICS } from './self.js';
import { ofKind, type KindedSpec } from './spec.js';

/** Every container_* family podvisor exports, with its metric kind, sorted by name (a stable exposition order). */
export const CONTAINER_METRICS: readonly KindedSpec[] = Object.freeze(
  [
    ...ofKind('accelerator', ACCELERATOR_METRICS),
    ...ofKind('diskIO', BLKIO_METRICS),
    ...ofKind('diskIO', DISKIO_METRICS),
    ...ofKind('cpu', CPU_METRICS),
    ...ofKind('cpuset', CPUSET_METRICS),
    ...ofKind('disk', FS_METRICS),
    ...ofKind('hugetlb', HUGETLB_METRICS),
    ...ofKind('always', LIFECYCLE_METRICS),
    ...ofKind('memory', MEMORY_METRICS),
    ...ofKind('memory_numa', NUMA_METRICS),
    ...ofKind('network', NETWORK_METRICS),
    ...ofKind('oom_event', OOM_METRICS),
    ...ofKind('pressure', PRESSURE_METRICS),
    ...ofKind('process', PROCESS_METRICS),
    ...ofKind('sched', SCHED_METRICS),
    ...ofKind('always', SPEC_METRICS),
    ...ofKind('tcp', TCP_METRICS),
    ...ofKind('udp', UDP_METRICS),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
);

/** The families of the kinds on (every family when the snapshot does not say). */
export function specsFor(kinds: readonly string[] | undefined): readonly KindedSpec[] {
  if (kinds === undefined) return CONTAINER_METRICS;
  return CONTAINER_METRICS.filter((s) => s.kind === 'always' || kinds.includes(s.kind));
}

/** Every family a gather renders: container_* (sorted by name), then machine_*, then the gather's own podvisor_*. */
export function renderSnapshot(snapshot: Snapshot): RenderedFamily[] {
  return [
    ...renderContainerFamilies(snapshot, specsFor(snapshot.kinds)),
    ...renderMachineFamilies(snapshot, MACHINE_METRICS),
    // The node's GPUs: only when the accelerator kind is on and NVML was found (no empty families on other nodes).
    ...(snapshot.acceleratorStatus === undefined ? [] : renderMachineFamilies(snapshot, ACCELERATOR_MACHINE_METRICS)),
    ...renderSelfFamilies(SNAPSHOT_SELF_METRICS, snapshot),
  ];
}
