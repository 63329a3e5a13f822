/**
 * The caches behind the authenticator and the authorizer: a bounded LRU whose entries each expire after their own TTL
 * on an injected clock, and a single-flight map so that concurrent misses for one key share one lookup. A lookup's
 * error reaches every caller waiting on it and is not remembered.
 */

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export const DEFAULT_CACHE_ENTRIES = 4096;

export class TtlCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { maxEntries?: number; now?: () => number } = {}) {
    this.#max = Math.max(1, opts.maxEntries ?? DEFAULT_CACHE_ENTRIES);
    this.#now = opts.now ?? Date.now;
  }

  /** The live value under `key` (now the most recently used), or undefined. An expired entry is dropped. */
  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    this.#entries.delete(key);
    if (this.#now() >= e.expiresAt) return undefined;
    this.#entries.set(key, e);
    return e.value;
  }

  /** Stores `value` for `ttlMs`; the least recently used entry goes when the cache is full. A TTL ≤ 0 stores nothing. */
  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    if (!(ttlMs > 0)) return;
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }
}

/** Concurrent calls of `run` with one key share the first call's promise until it settles. */
export class SingleFlight<V> {
  readonly #inFlight = new Map<string, Promise<V>>();

  run(key: string, fn: () => Promise<V>): Promise<V> {
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    // fn runs on a later tick, so even a synchronous throw settles p after it is registered (and then unregistered).
    const p: Promise<V> = Promise.resolve()
      .then(fn)
      .finally(() => {
        if (this.#inFlight.get(key) === p) this.#inFlight.delete(key);
      });
    this.#inFlight.set(key, p);
    return p;
  }

  /** Lookups in flight. */
  get size(): number {
    return this.#inFlight.size;
  }
}
