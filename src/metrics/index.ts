/** The metric specs podvisor exports, in exposition order, and the rendering of a whole snapshot. */
import { BLKIO_METRICS } from './container/blkio.js';
import { CPU_METRICS } from './container/cpu.js';
import { FS_METRICS } from './container/fs.js';
import { LIFECYCLE_METRICS } from './container/lifecycle.js';
import { MEMORY_METRICS } from './container/memory.js';
import { NETWORK_METRICS } from './container/network.js';
import { PRESSURE_METRICS } from './container/pressure.js';
import { PROCESS_METRICS } from './container/processes.js';
import { SPEC_METRICS } from './container/spec.js';
import type { Snapshot } from '../model/snapshot.js';
import type { RenderedFamily } from './exposition.js';
import { MACHINE_METRICS } from './machine.js';
import { renderContainerFamilies, renderMachineFamilies } from './render.js';
import { renderSelfFamilies, SNAPSHOT_SELF_METRICS } from './self.js';
import type { ContainerMetricSpec } from './spec.js';

/** Every container_* family podvisor exports, sorted by name (a stable exposition order). */
export const CONTAINER_METRICS: readonly ContainerMetricSpec[] = Object.freeze(
  [
    ...BLKIO_METRICS,
    ...CPU_METRICS,
    ...FS_METRICS,
    ...LIFECYCLE_METRICS,
    ...MEMORY_METRICS,
    ...NETWORK_METRICS,
    ...PRESSURE_METRICS,
    ...PROCESS_METRICS,
    ...SPEC_METRICS,
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
);

/** Every family a gather renders: container_* (sorted by name), then machine_*, then the gather's own podvisor_*. */
export function renderSnapshot(snapshot: Snapshot): RenderedFamily[] {
  return [
    ...renderContainerFamilies(snapshot, CONTAINER_METRICS),
    ...renderMachineFamilies(snapshot, MACHINE_METRICS),
    ...renderSelfFamilies(SNAPSHOT_SELF_METRICS, snapshot),
  ];
}
