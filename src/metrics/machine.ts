import type { MachineSnapshot } from '../model/machine.js';
import { emitIf, type MachineMetricSpec } from './spec.js';

function machineGauge(name: string, help: string, pick: (m: MachineSnapshot) => number | undefined): MachineMetricSpec {
  return {
    name,
    help,
    type: 'gauge',
    labels: [],
    collect(m, emit) {
      emitIf(emit, pick(m));
    },
  };
}

/** machine_* gauges, sorted by name; the renderer adds `boot_id, machine_id, system_uuid`. */
export const MACHINE_METRICS: readonly MachineMetricSpec[] = Object.freeze([
  machineGauge('machine_cpu_cores', 'Number of logical CPU cores.', (m) => m.cpuCores),
  machineGauge('machine_cpu_physical_cores', 'Number of physical CPU cores.', (m) => m.cpuPhysicalCores),
  machineGauge('machine_cpu_sockets', 'Number of CPU sockets.', (m) => m.cpuSockets),
  machineGauge('machine_memory_bytes', 'Amount of memory installed on the machine.', (m) => m.memoryBytes),
  machineGauge('machine_swap_bytes', 'Amount of swap memory available on the machine.', (m) => m.swapBytes),
]);
