/**
 * Node.js process metrics (process_*, nodejs_*): prom-client's default collectors in a registry of their own, turned
 * into rendered families so that one writer serves both exposition formats for everything on /metrics.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { FamilyWriter, formatLabels, type FamilyType, type RenderedFamily } from './exposition.js';

/** prom-client names these gauges `_total`, which `promtool check metrics` rejects; their un-suffixed twins stay. */
const DROPPED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

function familyType(t: unknown): FamilyType {
  // prom-client's typings declare an enum, but the runtime value is the string name.
  const s = String(t);
  return s === 'counter' || s === 'gauge' || s === 'histogram' || s === 'summary' ? s : 'gauge';
}

export class ProcessMetrics {
  readonly #registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.#registry });
    for (const name of DROPPED) this.#registry.removeSingleMetric(name);
  }

  async families(): Promise<RenderedFamily[]> {
    const metrics = await this.#registry.getMetricsAsJSON();
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
}
