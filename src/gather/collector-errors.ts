/**
 * podvisor_collector_errors_total: files that existed but could not be read or parsed, by collector, since start.
 * A cgroup's errors are held back (`Pending`) until the cgroup is known to still exist: the half-read files of a
 * cgroup removed during the gather are not errors.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CollectorName } from '../model/cgroup.js';

/** Errors met while reading one cgroup, counted once it is known to still exist. */
export type Pending = [collector: CollectorName, file: string, err: unknown][];

export class CollectorErrors {
  readonly #counts: Partial<Record<CollectorName, number>> = {};
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  count(collector: CollectorName, file: string, err: unknown): void {
    this.#counts[collector] = (this.#counts[collector] ?? 0) + 1;
    this.#log.debug('collector error', { collector, file, error: errorMessage(err) });
  }

  countAll(pending: Pending): void {
    for (const [collector, file, err] of pending) this.count(collector, file, err);
  }

  /** The counts now, as the snapshot's plain data. */
  current(): Partial<Record<CollectorName, number>> {
    return { ...this.#counts };
  }
}
