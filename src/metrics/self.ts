/**
 * podvisor's own metrics (prom-client, one registry) and Node.js process metrics (a separate registry, as the
 * style guide asks), both rendered through the same exposition writer as container metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../version.js';

export class SelfMetrics {
  readonly registry = new Registry();
  readonly processRegistry = new Registry();
  readonly gathers: Counter<'result'>;
  readonly gatherDuration: Histogram;
  readonly coalesced: Counter;
  readonly deadlineExceeded: Counter;
  readonly cgroups: Gauge;

  constructor() {
    const registers = [this.registry];
    this.gathers = new Counter({ name: 'podvisor_gathers_total', help: 'Gathers run, by result (success or error).', labelNames: ['result'], registers });
    this.gathers.inc({ result: 'success' }, 0);
    this.gathers.inc({ result: 'error' }, 0);
    this.gatherDuration = new Histogram({
      name: 'podvisor_gather_duration_seconds',
      help: 'Time one gather took: discovering cgroups, reading their files and rendering the series.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.coalesced = new Counter({
      name: 'podvisor_scrapes_coalesced_total',
      help: 'Scrapes served from a gather another scrape started (in flight or younger than --min-gather-interval).',
      registers,
    });
    this.deadlineExceeded = new Counter({
      name: 'podvisor_scrape_deadline_exceeded_total',
      help: 'Scrapes answered 503 because the gather could not finish before the scrape deadline.',
      registers,
    });
    this.cgroups = new Gauge({ name: 'podvisor_cgroups', help: 'Cgroups reported by the last successful gather.', registers });
    const info = new Gauge({
      name: 'podvisor_build_info',
      help: 'A metric with a constant 1 value labeled by podvisor version and Node.js version.',
      labelNames: ['version', 'nodejs_version'],
      registers,
    });
    info.set({ version: VERSION, nodejs_version: process.version }, 1);
    collectDefaultMetrics({ register: this.processRegistry });
    // prom-client names these gauges `_total`, which `promtool check metrics` rejects; the un-suffixed twins stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.processRegistry.removeSingleMetric(name);
    }
  }
}
