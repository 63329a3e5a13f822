import { BLKIO_METRICS } from './container/blkio.js';
import { CPU_METRICS } from './container/cpu.js';
import { FS_METRICS } from './container/fs.js';
import { LIFECYCLE_METRICS } from './container/lifecycle.js';
import { MEMORY_METRICS } from './container/memory.js';
import { NETWORK_METRICS } from './container/network.js';
import { PRESSURE_METRICS } from './container/pressure.js';
import { PROCESS_METRICS } from './container/processes.js';
import { SPEC_METRICS } from './container/spec.js';
import type { ContainerMetricSpec } from './spec.js';

export { MACHINE_METRICS } from './machine.js';

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
