import type { ContainerSnapshot, Snapshot } from '../model/snapshot.js';
import type { FamilyKind } from '../model/kinds.js';
import type { MachineSnapshot } from '../model/machine.js';

/**
 * Metric specs are data: a name, a help text, a type, the extra label names, and how to pull values out of a
 * snapshot. The renderer owns the exposition format; specs know nothing of text, HTTP or prom-client.
 */
/**
 * `untyped` exists for cAdvisor's gauges named `_total` (`container_fs_inodes_total`): typed gauge, promtool rejects the
 * name; untyped keeps the name dashboards use and lints clean (OpenMetrics calls it `unknown`).
 */
export type MetricType = 'counter' | 'gauge' | 'untyped';

/** Emits one sample; `labelValues` lines up with the spec's `labels`. */
export type Emit = (value: number, labelValues?: readonly string[]) => void;

export interface ContainerMetricSpec {
  name: string;
  help: string;
  type: MetricType;
  /** Labels after the six base labels (`id, name, image, container, pod, namespace`); fixed per family. */
  labels: readonly string[];
  /** Emits zero or more samples for one container. Absent values emit nothing. */
  collect(c: ContainerSnapshot, emit: Emit, snapshot: Snapshot): void;
}

/** A container family and the metric kind that switches it (`always`: never switched off). */
export interface KindedSpec extends ContainerMetricSpec {
  kind: FamilyKind;
}

/** Tags each spec of a group with its kind. */
export function ofKind(kind: FamilyKind, specs: readonly ContainerMetricSpec[]): KindedSpec[] {
  return specs.map((s) => ({ ...s, kind }));
}

export interface MachineMetricSpec {
  name: string;
  help: string;
  type: MetricType;
  /** Labels after the machine base labels (`boot_id, machine_id, system_uuid`). */
  labels: readonly string[];
  collect(m: MachineSnapshot, emit: Emit, snapshot: Snapshot): void;
}

/** Base label names of every container series, in the kubelet's set. */
export const CONTAINER_BASE_LABELS = ['id', 'name', 'image', 'container', 'pod', 'namespace'] as const;
/** Base label names of machine_* series, as cAdvisor. */
export const MACHINE_BASE_LABELS = ['boot_id', 'machine_id', 'system_uuid'] as const;

/** Emits `value` only when it is a finite number: absent is not zero. */
export function emitIf(emit: Emit, value: number | undefined, labelValues?: readonly string[]): void {
  if (value !== undefined && Number.isFinite(value)) emit(value, labelValues);
}
