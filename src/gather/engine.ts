/**
 * A gather engine runs a gather and renders its families: on a worker thread (the default) or in-process.
 * Either way the HTTP side only gets rendered families, and never reads a host file itself.
 */
import type { CgroupLayout, CollectorName } from '../cgroup/types.js';
import { CONTAINER_METRICS, MACHINE_METRICS } from '../metrics/index.js';
import { encodeFamilies, FamilyWriter, type EncodedFamilies, type RenderedFamily } from '../metrics/exposition.js';
import { renderContainerFamilies, renderMachineFamilies } from '../metrics/render.js';
import type { Logger } from '../log.js';
import { Gatherer, type GathererOptions } from './gatherer.js';
import type { Snapshot } from './snapshot.js';

export interface GatherResult {
  /** When the gather started (ms since the epoch). */
  timestampMs: number;
  durationMs: number;
  /** Cgroups reported. */
  containers: number;
  /** Every family of the gather, sample lines encoded once. */
  body: EncodedFamilies;
}

export interface GatherEngine {
  gather(): Promise<GatherResult>;
  close(): Promise<void>;
}

export interface EngineOptions {
  layout: CgroupLayout;
  rootfs: string;
  allowPrefixes: readonly string[];
  machineInfoIntervalMs: number;
}

const COLLECTORS: readonly CollectorName[] = ['blkio', 'cpu', 'discovery', 'machine', 'memory', 'network', 'pids', 'pressure', 'process', 'spec'];

function collectorErrorsFamily(snapshot: Snapshot): RenderedFamily {
  const w = new FamilyWriter(
    'podvisor_collector_errors_total',
    'Files that existed but could not be read or parsed, by collector; the series they feed were left out of the scrape.',
    'counter',
  );
  for (const c of COLLECTORS) w.sample(`collector="${c}"`, snapshot.collectorErrors[c] ?? 0);
  return w.finish();
}

export function renderSnapshot(snapshot: Snapshot): RenderedFamily[] {
  return [...renderContainerFamilies(snapshot, CONTAINER_METRICS), ...renderMachineFamilies(snapshot, MACHINE_METRICS), collectorErrorsFamily(snapshot)];
}

/** Gathers on the calling thread: inside the gather worker, or on the HTTP thread with `--no-gather-in-worker`. */
export class LocalEngine implements GatherEngine {
  readonly #gatherer: Gatherer;

  /** `tuning` fixes the clock and machine facts (golden tests) or sets the slice length (on the HTTP thread). */
  constructor(opts: EngineOptions, log: Logger, tuning?: Pick<GathererOptions, 'now' | 'machineInfo' | 'sliceMs'>) {
    this.#gatherer = new Gatherer(opts.layout, {
      rootfs: opts.rootfs,
      allowPrefixes: opts.allowPrefixes,
      machineInfoIntervalMs: opts.machineInfoIntervalMs,
      log,
      ...tuning,
    });
  }

  async gather(): Promise<GatherResult> {
    const start = performance.now();
    const snapshot = await this.#gatherer.gather();
    const body = encodeFamilies(renderSnapshot(snapshot));
    return { timestampMs: snapshot.timestampMs, durationMs: performance.now() - start, containers: snapshot.containers.length, body };
  }

  async close(): Promise<void> {}
}
