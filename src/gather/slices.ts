/**
 * Time slices for a gather on the HTTP thread: after `sliceMs` of synchronous reading the gather gives the event loop
 * one turn, so /healthz and queued requests never wait longer than one slice. Without a slice length it never yields.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Slices {
  readonly #sliceMs: number;
  #start = performance.now();

  constructor(sliceMs: number | undefined) {
    this.#sliceMs = sliceMs ?? Infinity;
  }

  /** One event-loop turn if this slice is used up; a new slice starts after it. */
  async maybeYield(): Promise<void> {
    if (performance.now() - this.#start < this.#sliceMs) return;
    await yieldToEventLoop();
    this.#start = performance.now();
  }
}
