/**
 * Runs the metric specs over a snapshot and renders each family's sample lines once.
 * Every container series carries the kubelet's six labels, then the spec's own labels; the label set of a family is fixed.
 */
import type { Snapshot } from '../model/snapshot.js';
import { FamilyWriter, escapeLabelValue, formatLabels, type RenderedFamily } from './exposition.js';
import type { ContainerMetricSpec, MachineMetricSpec } from './spec.js';

/** `id="…",name="…",image="…",container="…",pod="…",namespace="…"` for one container, escaped once. */
function containerLabelPrefix(id: string, l: { name: string; image: string; container: string; pod: string; namespace: string }): string {
  return (
    `id="${escapeLabelValue(id)}",name="${escapeLabelValue(l.name)}",image="${escapeLabelValue(l.image)}",` +
    `container="${escapeLabelValue(l.container)}",pod="${escapeLabelValue(l.pod)}",namespace="${escapeLabelValue(l.namespace)}"`
  );
}

export function renderContainerFamilies(snapshot: Snapshot, specs: readonly ContainerMetricSpec[]): RenderedFamily[] {
  const extra = snapshot.extraLabelNames ?? [];
  const prefixes = snapshot.containers.map((c) =>
    extra.length === 0 ? containerLabelPrefix(c.id, c.labels) : `${containerLabelPrefix(c.id, c.labels)},${formatLabels(extra, c.extraLabelValues ?? [])}`,
  );
  const out: RenderedFamily[] = [];
  for (const spec of specs) {
    const w = new FamilyWriter(spec.name, spec.help, spec.type);
    const own = spec.labels;
    let prefix = '';
    const emit = (value: number, labelValues?: readonly string[]): void => {
      if (own.length === 0) w.sample(prefix, value);
      else w.sample(`${prefix},${formatLabels(own, labelValues ?? [])}`, value);
    };
    for (let i = 0; i < snapshot.containers.length; i++) {
      const c = snapshot.containers[i];
      prefix = prefixes[i] ?? '';
      if (c !== undefined) spec.collect(c, emit, snapshot);
    }
    out.push(w.finish());
  }
  return out;
}

export function renderMachineFamilies(snapshot: Snapshot, specs: readonly MachineMetricSpec[]): RenderedFamily[] {
  const m = snapshot.machine;
  const prefix = `boot_id="${escapeLabelValue(m.bootId)}",machine_id="${escapeLabelValue(m.machineId)}",system_uuid="${escapeLabelValue(m.systemUuid)}"`;
  return specs.map((spec) => {
    const w = new FamilyWriter(spec.name, spec.help, spec.type);
    spec.collect(
      m,
      (value, labelValues) => {
        w.sample(spec.labels.length === 0 ? prefix : `${prefix},${formatLabels(spec.labels, labelValues ?? [])}`, value);
      },
      snapshot,
    );
    return w.finish();
  });
}
