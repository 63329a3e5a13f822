/**
 * Machine facts (cores, memory, ids) are read at start and refreshed every --machine-info-interval in the background:
 * a gather waits for the first read only, never for a refresh. A failed read keeps the last facts and is counted.
 */
import type { MachineSnapshot } from '../model/machine.js';

const UNKNOWN: MachineSnapshot = { machineId: '', systemUuid: '', bootId: '' };

export class MachineFacts {
  readonly #read: () => Promise<MachineSnapshot>;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  #facts: MachineSnapshot = UNKNOWN;
  #readAt = -Infinity;
  #refresh: Promise<void> | undefined;

  constructor(read: () => Promise<MachineSnapshot>, intervalMs: number, now: () => number, onError: (err: unknown) => void) {
    this.#read = read;
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#onError = onError;
  }

  async current(): Promise<MachineSnapshot> {
    if (this.#now() - this.#readAt >= this.#intervalMs && this.#refresh === undefined) {
      this.#refresh = this.#read()
        .then((m) => {
          this.#facts = m;
        })
        .catch(this.#onError)
        .finally(() => {
          this.#readAt = this.#now();
          this.#refresh = undefined;
        });
    }
    if (this.#facts === UNKNOWN && this.#refresh !== undefined) await this.#refresh;
    return this.#facts;
  }
}
