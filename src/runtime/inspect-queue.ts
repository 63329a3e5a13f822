/**
 * A runtime factory's background inspects. Each id is inspected at most once at a time, at most 4 at once, the rest
 * queued in arrival order (a lookup miss is dropped past 1024 queued: the next gather's lookup asks again). An id
 * that changes while its inspect is in flight (an event) is inspected again once that call returns, and the stale
 * answer is dropped. "The runtime does not know this id" (and a failed inspect of an id not cached) is remembered
 * for 30 s, so a lookup miss does not ask the runtime again on every gather.
 *
 * The queue owns none of the cache: answers go to the `onFound` / `onGone` hooks.
 */
import type { RuntimeContainer } from '../model/runtime.js';

export const MAX_INSPECTS_IN_FLIGHT = 4;
/** Lookups beyond this many queued inspects are dropped; the next gather's lookup asks again. */
export const MAX_INSPECTS_QUEUED = 1024;
/** How long "the runtime does not know this id" (or a failed inspect) is remembered. */
export const NEGATIVE_TTL_MS = 30_000;
/** Negative entries are swept of expired ones when the map grows past this. */
export const NEGATIVE_SWEEP_AT = 4096;

export interface InspectQueueOptions {
  /** One inspect, bounded by the caller: the container, or undefined if the runtime does not know `id`. */
  inspect: (id: string) => Promise<RuntimeContainer | undefined>;
  /** Whether inspects may start now (the runtime is registered); asked every time the queue pumps. */
  canStart: () => boolean;
  /** A current answer: the runtime knows `c`. */
  onFound: (c: RuntimeContainer) => void;
  /** A current answer: the runtime does not know `id`. */
  onGone: (id: string) => void;
  /** An inspect rejected (not called once the queue is closed). */
  onFailed: (id: string, err: unknown) => void;
  /** Whether `id` is cached: a failed inspect keeps what is cached and remembers only an unknown id as negative. */
  isCached: (id: string) => boolean;
  /** Wall clock in ms: negative-entry expiry. */
  now: () => number;
}

export class InspectQueue {
  readonly #opts: InspectQueueOptions;
  #closed = false;
  /** Queued ids (insertion order), ids in flight, ids to re-inspect once their call returns. */
  readonly #queue = new Set<string>();
  readonly #inFlight = new Set<string>();
  readonly #again = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  /** id → expiry (ms, `now()` clock) of a negative inspect result. */
  readonly #negative = new Map<string, number>();

  constructor(opts: InspectQueueOptions) {
    this.#opts = opts;
  }

  /** How many ids are queued, in flight, and remembered as negative (expired entries count until swept). */
  counts(): { queued: number; inFlight: number; negative: number } {
    return { queued: this.#queue.size, inFlight: this.#inFlight.size, negative: this.#negative.size };
  }

  /** Whether an inspect of `id` is queued or in flight (a re-inspect after a mid-flight change included). */
  pending(id: string): boolean {
    return this.#queue.has(id) || this.#inFlight.has(id);
  }

  /**
   * A lookup missed `id`: inspect it unless it is remembered as negative (and not expired), already queued or in
   * flight, or the queue is full.
   */
  request(id: string): void {
    const until = this.#negative.get(id);
    if (until !== undefined) {
      if (this.#opts.now() < until) return;
      this.#negative.delete(id);
    }
    if (this.#inFlight.has(id) || this.#queue.has(id) || this.#queue.size >= MAX_INSPECTS_QUEUED) return;
    this.#queue.add(id);
    this.#pump();
  }

  /** The runtime reported `id` changed: forget a negative answer and inspect it (again, if one is in flight). */
  changed(id: string): void {
    this.#negative.delete(id);
    if (this.#inFlight.has(id)) this.#again.add(id);
    else this.#queue.add(id);
    this.#pump();
  }

  /** The runtime reported `id` destroyed: drop it from the queue. */
  destroyed(id: string): void {
    this.#queue.delete(id);
    // An inspect already in flight may return the container as it was; check again once it returns.
    if (this.#inFlight.has(id)) this.#again.add(id);
  }

  /** Inspect each of `ids` not in flight (cached ids a listing lacked), with no bound on the queue. */
  recheck(ids: Iterable<string>): void {
    for (const id of ids) if (!this.#inFlight.has(id)) this.#queue.add(id);
    this.#pump();
  }

  /** A listing showed `id`: a remembered negative answer is wrong now. */
  forget(id: string): void {
    this.#negative.delete(id);
  }

  /** Drops every queued inspect (the runtime went away); inspects in flight run to their end. */
  clear(): void {
    this.#queue.clear();
  }

  /** Drops the queue for good; answers that arrive after are ignored. See `settled()`. */
  close(): void {
    this.#closed = true;
    this.#queue.clear();
  }

  /** Resolves once every inspect started so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#running]);
  }

  #pump(): void {
    while (this.#inFlight.size < MAX_INSPECTS_IN_FLIGHT && this.#opts.canStart() && !this.#closed) {
      const next = this.#queue.values().next();
      if (next.done === true) return;
      const id = next.value;
      this.#queue.delete(id);
      this.#inFlight.add(id);
      const p = this.#inspect(id);
      this.#running.add(p);
      void p.finally(() => this.#running.delete(p));
    }
  }

  async #inspect(id: string): Promise<void> {
    try {
      const c = await this.#opts.inspect(id);
      // Closed, or an event arrived meanwhile: this answer may be stale; the re-inspect below decides.
      if (this.#closed || this.#again.has(id)) return;
      if (c !== undefined) {
        this.#negative.delete(id);
        this.#opts.onFound(c);
      } else {
        this.#opts.onGone(id);
        this.#remember(id);
      }
    } catch (err) {
      if (this.#closed) return;
      this.#opts.onFailed(id, err);
      // Keep what we had; remember an unknown id so a struggling runtime is not asked again every gather.
      if (!this.#opts.isCached(id)) this.#remember(id);
    } finally {
      this.#inFlight.delete(id);
      if (this.#again.delete(id) && !this.#closed) this.#queue.add(id);
      this.#pump();
    }
  }

  #remember(id: string): void {
    const now = this.#opts.now();
    if (this.#negative.size >= NEGATIVE_SWEEP_AT) {
      for (const [k, until] of this.#negative) if (until <= now) this.#negative.delete(k);
    }
    this.#negative.set(id, now + NEGATIVE_TTL_MS);
  }
}
