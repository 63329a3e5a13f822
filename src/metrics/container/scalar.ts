import type { ContainerSnapshot } from '../../model/snapshot.js';
import { emitIf, type ContainerMetricSpec, type MetricType } from '../spec.js';

/**
 * A family without extra labels and at most one sample per container. `pick` returns `undefined` when the value
 * is absent (file missing, controller off, condition not met), and then nothing is emitted.
 */
export function scalar(name: string, type: MetricType, help: string, pick: (c: ContainerSnapshot) => number | undefined): ContainerMetricSpec {
  return {
    name,
    help,
    type,
    labels: [],
    collect(c, emit) {
      emitIf(emit, pick(c));
    },
  };
}
