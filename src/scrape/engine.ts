/**
 * A gather engine runs a gather and renders its families: on a worker thread (the default) or in-process.
 * Either way the HTTP side only gets rendered families, and never reads a host file itself.
 */
import type { CgroupLayout } from '../cgroup/types.js';
import type { CollectorName } from '../model/cgroup.js';
import { CONTAINER_METRICS, MACHINE_METRICS } from '../metrics/index.js';
import { encodeFamilies, FamilyWriter, formatLabels, type EncodedFamilies, type RenderedFamily } from '../metrics/exposition.js';
import { createRuntimes, type RuntimeConfig } from '../runtime/index.js';
import type { RuntimeFactory } from '../runtime/factory.js';
import type { RuntimeStatus } from '../model/runtime.js';
import { DiskScheduler } from '../disk/scheduler.js';
import { DiskSelfMetrics } from '../disk/self-metrics.js';
import { Filesystems } from '../disk/filesystems.js';
import { errorMessage } from '../errors.js';
import { renderContainerFamilies, renderMachineFamilies } from '../metrics/render.js';
import type { Logger } from '../log.js';
import { Gatherer, type GathererOptions } from './gatherer.js';
import { ThreadReadAhead, type ReadAhead } from './read-ahead.js';
import type { Snapshot } from '../model/snapshot.js';

export interface GatherResult {
  /** When the gather started (ms since the epoch). */
  timestampMs: number;
  durationMs: number;
  /** Cgroups reported. */
  containers: number;
  /** Every family of the gather, sample lines encoded once. */
  body: EncodedFamilies;
  /** Runtime registration state at the end of the gather. */
  runtimes: RuntimeStatus[];
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
  /** --gather-threads (default 1): 2 adds a read-ahead thread. */
  gatherThreads?: number;
  /** Runtime factories to build on the gather's thread; absent: every cgroup is raw. */
  runtimes?: RuntimeConfig;
  /** Disk usage of runtime containers (needs runtimes); absent: no container_fs_usage_bytes for containers. */
  disk?: DiskConfig;
}

export interface DiskConfig {
  /** --disk-walk-concurrency */
  concurrency: number;
  /** --disk-usage-interval */
  intervalMs: number;
  /** --disk-walk-cpu-percent / 100; default 0.005 */
  cpuBudget?: number;
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

function runtimeFamilies(snapshot: Snapshot): RenderedFamily[] {
  const up = new FamilyWriter(
    'podvisor_runtime_up',
    'Whether the container runtime is registered and answering (1) or not (0); podvisor retries with backoff.',
    'gauge',
  );
  const info = new FamilyWriter(
    'podvisor_runtime_info',
    'A metric with a constant 1 value labeled by the runtime and the version strings it reported (as reported, however odd).',
    'gauge',
  );
  for (const r of snapshot.runtimes ?? []) {
    up.sample(`runtime="${r.runtime}"`, r.up ? 1 : 0);
    if (r.up) info.sample(formatLabels(['runtime', 'version', 'parsed_version', 'api_version'], [r.runtime, r.version, r.parsedVersion, r.apiVersion]), 1);
  }
  return [up.finish(), info.finish()];
}

export function renderSnapshot(snapshot: Snapshot): RenderedFamily[] {
  return [
    ...renderContainerFamilies(snapshot, CONTAINER_METRICS),
    ...renderMachineFamilies(snapshot, MACHINE_METRICS),
    collectorErrorsFamily(snapshot),
    ...runtimeFamilies(snapshot),
  ];
}

/** Gathers on the calling thread: inside the gather worker, or on the HTTP thread with `--no-gather-in-worker`. */
export class LocalEngine implements GatherEngine {
  readonly #gatherer: Gatherer;
  readonly #runtimes: RuntimeFactory[];
  readonly #disk: { scheduler: DiskScheduler; filesystems: Filesystems; self: DiskSelfMetrics } | undefined;
  readonly #readAhead: ReadAhead | undefined;

  /** `tuning` fixes the clock and machine facts (golden tests) or sets the slice length (on the HTTP thread). */
  constructor(opts: EngineOptions, log: Logger, tuning?: Pick<GathererOptions, 'now' | 'machineInfo' | 'sliceMs' | 'readAhead'>) {
    this.#readAhead = tuning?.readAhead ?? ((opts.gatherThreads ?? 1) > 1 ? new ThreadReadAhead() : undefined);
    this.#runtimes = opts.runtimes === undefined ? [] : createRuntimes(opts.runtimes, log);
    if (opts.disk !== undefined) {
      const self = new DiskSelfMetrics({ log });
      const scheduler = new DiskScheduler({
        concurrency: opts.disk.concurrency,
        intervalMs: opts.disk.intervalMs,
        ...(opts.disk.cpuBudget === undefined ? {} : { cpuBudget: opts.disk.cpuBudget }),
        onResult: (r) => {
          self.record(r);
          if (r.result !== 'ok')
            log.debug('disk usage measurement did not finish', {
              container: r.key,
              result: r.result,
              error: r.error === undefined ? undefined : errorMessage(r.error),
            });
        },
      });
      scheduler.start();
      this.#disk = { scheduler, filesystems: new Filesystems({ rootfs: opts.rootfs }), self };
    }
    this.#gatherer = new Gatherer(opts.layout, {
      ...(this.#disk === undefined ? {} : { disk: this.#disk }),
      runtimes: this.#runtimes,
      ...(opts.runtimes === undefined ? {} : { extraLabels: opts.runtimes.extraLabels }),
      rootfs: opts.rootfs,
      allowPrefixes: opts.allowPrefixes,
      machineInfoIntervalMs: opts.machineInfoIntervalMs,
      log,
      ...tuning,
      ...(this.#readAhead === undefined ? {} : { readAhead: this.#readAhead }),
    });
  }

  async gather(): Promise<GatherResult> {
    const start = performance.now();
    const snapshot = await this.#gatherer.gather();
    const families = renderSnapshot(snapshot);
    if (this.#disk !== undefined) families.push(...this.#disk.self.families(this.#disk.scheduler.queueLength()));
    const body = encodeFamilies(families);
    return {
      timestampMs: snapshot.timestampMs,
      durationMs: performance.now() - start,
      containers: snapshot.containers.length,
      body,
      runtimes: [...(snapshot.runtimes ?? [])],
    };
  }

  async close(): Promise<void> {
    await this.#disk?.scheduler.close();
    await Promise.all(this.#runtimes.map((f) => f.close()));
    await this.#readAhead?.close();
  }
}
