/**
 * Builds what a gather needs from plain options (they cross to the gather worker with `--gather-in-worker`): the
 * runtime factories, the disk-usage scheduler, the read-ahead thread and the Gatherer itself; and closes them again.
 */
import type { CgroupLayout } from '../cgroup/types.js';
import { Filesystems } from '../disk/filesystems.js';
import { DiskScheduler } from '../disk/scheduler.js';
import { WalkStats } from '../disk/walk-stats.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { createRuntimes, type RuntimeConfig } from '../runtime/index.js';
import type { DiskUsage } from './disk-usage.js';
import { Gatherer, type GathererOptions } from './gatherer.js';
import { readHugepageSizes } from './hugepages.js';
import { startOomSource, type OomFallback } from './oom-source.js';
import type { MetricKind } from '../model/kinds.js';
import { ThreadReadAhead } from './read-ahead.js';
import type { Accelerators } from './accelerators.js';
import { NvmlSampler } from '../gpu/sampler.js';
import { PodResourcesSource } from '../gpu/pod-resources/source.js';
import { noteStuckNativeCall } from '../host/exit.js';

/** PodResources answers older than this are not used (the kubelet gone for long: attribution falls back to NVML's pids). */
const POD_RESOURCES_MAX_AGE_MS = 5 * 60_000;

/** Plain data: everything a gather is built from. */
export interface GatherOptions {
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
  /** The metric kinds on; absent: every kind. */
  kinds?: MetricKind[];
  /** --runtime-containers-only */
  runtimeContainersOnly?: boolean;
  /** The accelerator kind's sources; absent (or the kind off): no NVML, no PodResources. */
  accelerator?: AcceleratorOptions;
}

/** Plain data for the accelerator kind, from its flags (Config.accelerator). */
export interface AcceleratorOptions {
  /**
   * --nvml-library. In the flags '' means "look for it"; here, the library main found and checked (main replaces '' by
   * the path before it builds the gather).
   */
  nvmlLibrary: string;
  /** --accelerator-interval */
  intervalMs: number;
  /** --accelerator-timeout: each NVML call. */
  timeoutMs: number;
  /** --pod-resources-socket: '' turns the kubelet's PodResources API off. */
  podResourcesSocket: string;
  /** --pod-resources-interval */
  podResourcesIntervalMs: number;
  /** --pod-resources-timeout */
  podResourcesTimeoutMs: number;
}

export interface DiskConfig {
  /** --disk-walk-concurrency */
  concurrency: number;
  /** --disk-usage-interval */
  intervalMs: number;
  /** --disk-walk-cpu-percent / 100; default 0.005 */
  cpuBudget?: number;
}

/** What tests and the HTTP thread pin or tune: the clock and machine facts (golden tests), the slice length. */
export type GatherTuning = Pick<GathererOptions, 'now' | 'machineInfo' | 'sliceMs' | 'readAhead' | 'reader'>;

export interface GatherSetup {
  gatherer: Gatherer;
  /** Stops the disk scheduler, the runtime factories and the read-ahead thread. */
  close(): Promise<void>;
}

export function createGatherer(opts: GatherOptions, log: Logger, tuning: GatherTuning = {}): GatherSetup {
  const readAhead = tuning.readAhead ?? ((opts.gatherThreads ?? 1) > 1 ? new ThreadReadAhead() : undefined);
  const runtimes = opts.runtimes === undefined ? [] : createRuntimes(opts.runtimes, log);
  const on = (kind: MetricKind): boolean => opts.kinds === undefined || opts.kinds.includes(kind);
  // The disk kind off: no walks at all.
  const disk = opts.disk === undefined || !on('disk') ? undefined : createDiskUsage(opts.disk, opts.rootfs, log);
  let oom: OomFallback | undefined;
  const oomStarted = on('oom_event') ? startOomSource(opts.rootfs, log).then((f) => (oom = f)) : undefined;
  const accelerators = opts.accelerator === undefined || !on('accelerator') ? undefined : startAccelerators(opts.accelerator, log);
  const gatherer = new Gatherer(opts.layout, {
    ...(accelerators === undefined ? {} : { accelerators: accelerators.view }),
    ...(opts.kinds === undefined ? {} : { kinds: opts.kinds }),
    ...(opts.runtimeContainersOnly === true ? { runtimeContainersOnly: true } : {}),
    ...(on('hugetlb') ? { hugepageSizes: readHugepageSizes(opts.rootfs) } : {}),
    kmsgOomKills: () => oom?.counts(),
    ...(disk === undefined ? {} : { disk }),
    runtimes,
    ...(opts.runtimes === undefined
      ? {}
      : { extraLabels: opts.runtimes.extraLabels, startupGraceMs: opts.runtimes.startupGraceMs, labelHoldMs: opts.runtimes.labelHoldMs }),
    rootfs: opts.rootfs,
    allowPrefixes: opts.allowPrefixes,
    machineInfoIntervalMs: opts.machineInfoIntervalMs,
    log,
    ...tuning,
    ...(readAhead === undefined ? {} : { readAhead }),
  });
  return {
    gatherer,
    async close() {
      await disk?.scheduler.close();
      await Promise.all(runtimes.map((f) => f.close()));
      await readAhead?.close();
      await oomStarted;
      await oom?.close();
      await accelerators?.close();
    },
  };
}

/** NVML's poll and the PodResources poll, both in the background, and the view a gather takes of them. */
function startAccelerators(opts: AcceleratorOptions, log: Logger): { view: Accelerators; close(): Promise<void> } {
  // The binding (and koffi) is imported here, on the gather's thread, only where the kind is on and NVML was found.
  let sampler: NvmlSampler | undefined;
  const started = import('../gpu/nvml/library.js').then(
    ({ loadNvml }) => {
      sampler = new NvmlSampler({ library: loadNvml(opts.nvmlLibrary, { timeoutMs: opts.timeoutMs }), intervalMs: opts.intervalMs, log });
      sampler.start();
    },
    (err: unknown) => log.error('accelerator metrics off: the NVML binding could not be loaded', { error: errorMessage(err) }),
  );
  const podResources =
    opts.podResourcesSocket === ''
      ? undefined
      : new PodResourcesSource({
          socket: opts.podResourcesSocket,
          timeoutMs: opts.podResourcesTimeoutMs,
          intervalMs: opts.podResourcesIntervalMs,
          maxAgeMs: POD_RESOURCES_MAX_AGE_MS,
          log,
        });
  podResources?.start();
  // A socket never seen is a node without the API (no series); one that went away is a kubelet down or restarting (0).
  let socketSeen = false;
  const view: Accelerators = {
    sample: () => sampler?.current(),
    assignments: () => podResources?.current(),
    status() {
      const status: ReturnType<Accelerators['status']> = { nvmlUp: sampler?.up() ?? false, nvmlErrors: sampler?.errors() ?? 0 };
      const pr = podResources?.status();
      socketSeen ||= pr?.socketPresent === true;
      if (pr !== undefined && socketSeen) {
        status.podResourcesUp = pr.up && pr.socketPresent;
        status.podResourcesErrors = pr.errors;
      }
      return status;
    },
  };
  return {
    view,
    async close() {
      await podResources?.close();
      await started;
      const { hung } = (await sampler?.close()) ?? { hung: false };
      if (!hung) return;
      log.warn('an NVML call is still outstanding: NVML was not shut down (the process exits without waiting for it)');
      noteStuckNativeCall();
    },
  };
}

function createDiskUsage(cfg: DiskConfig, rootfs: string, log: Logger): DiskUsage {
  const stats = new WalkStats({ log });
  const scheduler = new DiskScheduler({
    concurrency: cfg.concurrency,
    intervalMs: cfg.intervalMs,
    ...(cfg.cpuBudget === undefined ? {} : { cpuBudget: cfg.cpuBudget }),
    onResult: (r) => {
      stats.record(r);
      if (r.result !== 'ok')
        log.debug('disk usage measurement did not finish', {
          container: r.key,
          result: r.result,
          error: r.error === undefined ? undefined : errorMessage(r.error),
        });
    },
  });
  scheduler.start();
  return { scheduler, filesystems: new Filesystems({ rootfs }), stats };
}
