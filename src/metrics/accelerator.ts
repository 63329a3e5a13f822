import type { AcceleratorDevice } from '../model/accelerator.js';
import { ACCELERATOR_MAKE } from './container/accelerator.js';
import { emitIf, type MachineMetricSpec } from './spec.js';

/** Per-device labels: cAdvisor's three, and `gpu`, NVML's index of the GPU (of the parent GPU for a MIG device). */
const DEVICE_LABELS = ['make', 'model', 'acc_id', 'gpu'] as const;

function perDevice(name: string, help: string, pick: (d: AcceleratorDevice) => number | undefined): MachineMetricSpec {
  return {
    name,
    help,
    type: 'gauge',
    labels: DEVICE_LABELS,
    collect(_m, emit, snapshot) {
      for (const d of snapshot.accelerators ?? []) emitIf(emit, pick(d), [ACCELERATOR_MAKE, d.model, d.uuid, String(d.index)]);
    },
  };
}

/**
 * machine_accelerator_*: the node's GPUs and MIG devices, one series per device, for node dashboards. Each is absent
 * where the device or driver cannot say (NVML's NOT_SUPPORTED is absence, not zero); utilization is absent on MIG.
 */
export const ACCELERATOR_MACHINE_METRICS: readonly MachineMetricSpec[] = Object.freeze([
  perDevice(
    'machine_accelerator_duty_cycle',
    "Percent of time over NVML's past sample period during which the accelerator was actively processing.",
    (d) => d.utilizationPercent,
  ),
  perDevice('machine_accelerator_memory_total_bytes', 'Total accelerator memory.', (d) => d.memoryTotalBytes),
  perDevice('machine_accelerator_memory_used_bytes', 'Accelerator memory allocated, by every process and the driver.', (d) => d.memoryUsedBytes),
  perDevice('machine_accelerator_power_watts', 'Power drawn by the accelerator and its memory, in watts.', (d) => d.powerWatts),
  perDevice('machine_accelerator_temperature_celsius', 'Temperature of the accelerator die, in degrees Celsius.', (d) => d.temperatureCelsius),
]);
