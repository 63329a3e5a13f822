/**
 * Turns prom-client registries (podvisor's self-metrics, Node.js process metrics) into rendered families, so that
 * one writer serves both exposition formats for everything on /metrics.
 */
import type { Registry } from 'prom-client';
import { FamilyWriter, formatLabels, type FamilyType, type RenderedFamily } from './exposition.js';

function familyType(t: unknown): FamilyType {
  // prom-client's typings declare an enum, but the runtime value is the string name.
  const s = String(t);
  return s === 'counter' || s === 'gauge' || s === 'histogram' || s === 'summary' ? s : 'gauge';
}

export async function promClientFamilies(registry: Registry): Promise<RenderedFamily[]> {
  const metrics = await registry.getMetricsAsJSON();
  return metrics.map((m) => {
    const w = new FamilyWriter(m.name, m.help, familyType(m.type));
    for (const v of m.values) {
      const names = Object.keys(v.labels);
      const values = names.map((n) => String(v.labels[n] ?? ''));
      const metricName = 'metricName' in v && typeof v.metricName === 'string' ? v.metricName : m.name;
      w.sample(formatLabels(names, values), v.value, metricName.slice(m.name.length));
    }
    return w.finish();
  });
}
