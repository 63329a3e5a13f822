/**
 * Holds back a cgroup whose runtime is still looking it up, so that a container is never exposed without its labels:
 * Prometheus would keep that unlabelled copy as a series of its own for five minutes (an empty `namespace` bucket in
 * every `sum by (namespace)`). A held cgroup is left out of the gather until the lookup answers; one held for longer
 * than --label-hold is exposed with empty labels after all, and counted, so a runtime that never answers cannot hide
 * a container for good.
 */
export class LabelHold {
  readonly #holdMs: number;
  readonly #now: () => number;
  /** cgroup → when it was first held (the `now` clock). */
  readonly #since = new Map<string, number>();
  /** Cgroups whose hold ran out: exposed with empty labels while their lookup is still pending. */
  readonly #expired = new Set<string>();
  /** Cgroups held back in the current gather. */
  #held = 0;
  /** Holds that ran out, since start. */
  #expiredTotal = 0;

  constructor(holdMs: number, now: () => number) {
    this.#holdMs = holdMs;
    this.#now = now;
  }

  /** A new gather starts. */
  begin(): void {
    this.#held = 0;
  }

  /** The runtime is looking `id` up: true to leave it out of this gather, false once its hold ran out. */
  hold(id: string): boolean {
    if (this.#expired.has(id)) return false;
    const now = this.#now();
    let since = this.#since.get(id);
    if (since === undefined) {
      since = now;
      this.#since.set(id, since);
    }
    if (now - since < this.#holdMs) {
      this.#held++;
      return true;
    }
    this.#since.delete(id);
    this.#expired.add(id);
    this.#expiredTotal++;
    return false;
  }

  /** `id` needs no hold (its labels are known, or no runtime is looking it up). */
  release(id: string): void {
    this.#since.delete(id);
    this.#expired.delete(id);
  }

  /** Forgets the cgroups that are gone. */
  keepOnly(present: ReadonlySet<string>): void {
    for (const id of this.#since.keys()) if (!present.has(id)) this.#since.delete(id);
    for (const id of this.#expired) if (!present.has(id)) this.#expired.delete(id);
  }

  counts(): { held: number; expired: number } {
    return { held: this.#held, expired: this.#expiredTotal };
  }
}
