/**
 * Single-flight: callers that arrive while a run is in flight share its promise, so N concurrent scrapes cost one
 * gather and one result in memory. With `minAgeMs` > 0 a finished result younger than that is reused too.
 */
export interface Flight<T> {
  value: Promise<T>;
  /** True when this caller did not start a run of its own. */
  shared: boolean;
}

export class SingleFlight<T> {
  readonly #run: () => Promise<T>;
  readonly #minAgeMs: number;
  readonly #now: () => number;
  #inFlight: Promise<T> | undefined;
  #last: { value: Promise<T>; startedAt: number } | undefined;

  constructor(run: () => Promise<T>, minAgeMs: number, now: () => number = () => performance.now()) {
    this.#run = run;
    this.#minAgeMs = minAgeMs;
    this.#now = now;
  }

  /** The run in flight, if any. */
  current(): Promise<T> | undefined {
    return this.#inFlight;
  }

  get(): Flight<T> {
    if (this.#inFlight !== undefined) return { value: this.#inFlight, shared: true };
    if (this.#last !== undefined && this.#now() - this.#last.startedAt < this.#minAgeMs) return { value: this.#last.value, shared: true };
    const startedAt = this.#now();
    const value = this.#run();
    this.#inFlight = value;
    const settle = (ok: boolean): void => {
      if (this.#inFlight === value) this.#inFlight = undefined;
      // Only a successful result is worth reusing; a failure is retried by the next caller.
      this.#last = ok && this.#minAgeMs > 0 ? { value, startedAt } : undefined;
    };
    value.then(
      () => settle(true),
      () => settle(false),
    );
    return { value, shared: false };
  }
}
