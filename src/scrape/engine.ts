/**
 * A gather engine runs a gather and renders its families: in-process on the HTTP thread in time slices (the default),
 * or on a worker thread (`--gather-in-worker`, see worker-engine.ts). Either way the scrape service only gets encoded
 * families (those of /metrics and, from the same snapshot, those of /metrics/resource), and never reads a host file
 * itself.
 */
import { createGatherer, type GatherOptions, type GatherSetup, type GatherTuning } from '../gather/setup.js';
import type { Logger } from '../log.js';
import type { RuntimeStatus } from '../model/runtime.js';
import { encodeFamilies, type EncodedFamilies } from '../metrics/exposition.js';
import { renderSnapshot } from '../metrics/index.js';
import { renderResourceFamilies } from '../metrics/resource.js';

export interface GatherResult {
  /** When the gather started (ms since the epoch). */
  timestampMs: number;
  durationMs: number;
  /** Cgroups reported. */
  containers: number;
  /** Every family of the gather, sample lines encoded once. */
  body: EncodedFamilies;
  /** The kubelet's /metrics/resource families of the same snapshot (text 0.0.4 only: their samples carry ms timestamps). */
  resource: EncodedFamilies;
  /** Runtime registration state at the end of the gather. */
  runtimes: RuntimeStatus[];
}

export interface GatherEngine {
  gather(): Promise<GatherResult>;
  close(): Promise<void>;
}

/** Gathers on the calling thread: on the HTTP thread (the default, in slices), or inside the gather worker. */
export class LocalEngine implements GatherEngine {
  readonly #setup: GatherSetup;

  /** `tuning` fixes the clock and machine facts (golden tests) or sets the slice length (on the HTTP thread). */
  constructor(opts: GatherOptions, log: Logger, tuning?: GatherTuning) {
    this.#setup = createGatherer(opts, log, tuning);
  }

  async gather(): Promise<GatherResult> {
    const start = performance.now();
    const snapshot = await this.#setup.gatherer.gather();
    const body = encodeFamilies(renderSnapshot(snapshot));
    const resource = encodeFamilies(renderResourceFamilies(snapshot));
    return {
      timestampMs: snapshot.timestampMs,
      durationMs: performance.now() - start,
      containers: snapshot.containers.length,
      body,
      resource,
      runtimes: [...(snapshot.runtimes ?? [])],
    };
  }

  close(): Promise<void> {
    return this.#setup.close();
  }
}
