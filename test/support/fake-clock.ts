/**
 * A clock whose time moves only when the test says (the scrape service's Clock): timers fire in order of their due
 * time as `advance` passes it, with the event loop let through between them so promises chained on a timer settle.
 */
import type { Clock } from '../../src/scrape/ahead.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Lets pending promise chains, and I/O callbacks that are already due, run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: Timer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
    await settle();
  }

  /** Moves time forward by `ms` without firing timers: the event loop held by synchronous work for that long. */
  block(ms: number): void {
    this.#now += ms;
  }

  /** Moves time to `at` (not backwards). */
  async advanceTo(at: number): Promise<void> {
    await this.advance(Math.max(0, at - this.#now));
  }
}
