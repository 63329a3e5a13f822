import type { ContainerAccelerator } from '../../model/accelerator.js';
import { emitIf, type ContainerMetricSpec } from '../spec.js';

/** cAdvisor's accelerator labels: `make` (always `nvidia`), `model` (NVML's name), `acc_id` (NVML's UUID). */
export const ACCELERATOR_LABELS = ['make', 'model', 'acc_id'] as const;
export const ACCELERATOR_MAKE = 'nvidia';

function perAccelerator(name: string, help: string, pick: (a: ContainerAccelerator) => number | undefined): ContainerMetricSpec {
  return {
    name,
    help,
    type: 'gauge',
    labels: ACCELERATOR_LABELS,
    collect(c, emit) {
      for (const a of c.accelerators ?? []) emitIf(emit, pick(a), [ACCELERATOR_MAKE, a.model, a.uuid]);
    },
  };
}

/**
 * container_accelerator_*: cAdvisor's names, labels, help and units, on runtime containers only (gather/accelerators.ts
 * says which container holds which device and how its values are split).
 */
export const ACCELERATOR_METRICS: readonly ContainerMetricSpec[] = [
  perAccelerator(
    'container_accelerator_duty_cycle',
    'Percent of time over the past sample period during which the accelerator was actively processing.',
    (a) => a.dutyCycle,
  ),
  perAccelerator('container_accelerator_memory_total_bytes', 'Total accelerator memory.', (a) => a.memoryTotalBytes),
  perAccelerator('container_accelerator_memory_used_bytes', 'Total accelerator memory allocated.', (a) => a.memoryUsedBytes),
];
