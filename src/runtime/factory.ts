/**
 * One generic runtime factory over any `RuntimeClient`: registers the runtime, keeps a container cache fresh from
 * events and periodic resyncs, and answers lookups synchronously from that cache.
 *
 * cAdvisor registers each factory once at startup and never retries (InitializePlugins in its container/factory.go
 * logs a failed Register and moves on; google/cadvisor#953, "cadvisor should not require docker to be up"): a runtime
 * that comes up a second later is lost for the life of the process and its containers stay `raw`. Here registration
 * is a loop with capped exponential backoff, and losing the events stream (a daemon restart) re-registers instead of
 * giving up.
 *
 * A listing is bounded by how long it goes without progress (the client reports each answer), not as a whole: a
 * daemon that answers each of 200 inspects in a second registers, a wedged one fails. `settled()` tells startup when
 * to stop waiting for the first registration: done, no socket on this node, or no answer for a grace period.
 *
 * The jobs it hands off: the container cache and its pod and cgroup-path indexes (container-index.ts), background
 * inspects and their negative cache (inspect-queue.ts), sleeping and racing against an abort (signals.ts).
 */
import { errorMessage } from '../errors.js';
import { isContainerId } from '../guards.js';
import type { Logger } from '../log.js';
import type { RuntimeClient, RuntimeEvent, RuntimeVersion } from './types.js';
import type { RuntimeContainer, RuntimeName, RuntimeStatus } from '../model/runtime.js';
import { parseVersion } from './version.js';
import { ContainerIndex } from './container-index.js';
import { InspectQueue } from './inspect-queue.js';
import { delay, formatDelay, raceSignal } from './signals.js';

export interface FactoryOptions {
  /** Bound on every client call (combined with the factory's close signal). */
  callTimeoutMs: number;
  /**
   * How long a list() may go without progress (default: callTimeoutMs, at least 30 s), re-armed at each answer the
   * client reports: a listing may take one request per container (Docker inspects each), each of which the client
   * bounds by its own per-request timeout, so the whole has no fixed bound.
   */
  listTimeoutMs?: number;
  /** Registration retry backoff: starts here (default 1000), doubles, capped at `retryMaxMs` (default 15000). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Full list resync while up (default 60000); the only refresh for a client without `events()`. */
  resyncMs?: number;
  log: Logger;
  /** Wall clock in ms (default Date.now): negative-cache expiry, log rate limit, `lastErrorAt`, backoff reset, grace. */
  now?: () => number;
  /** Arms the list() progress bound and the settled() grace (default: an unref'd setTimeout); tests fire it by hand. */
  timer?: Timer;
}

/** Calls `fn` once after `ms` unless the returned function is called first. Must not keep the process alive. */
export type Timer = (ms: number, fn: () => void) => () => void;

/** How the wait for a runtime's first registration ended; see RuntimeFactory.settled(). */
export type SettleOutcome = 'registered' | 'absent' | 'unresponsive' | 'closed';

const unrefTimer: Timer = (ms, fn) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

const DEFAULT_RETRY_MIN_MS = 1000;
const DEFAULT_RETRY_MAX_MS = 15_000;
const DEFAULT_RESYNC_MS = 60_000;
/** While events flow, resyncs inspect only containers not cached yet; every this many a resync inspects them all. */
const FULL_RESYNC_EVERY = 10;
/** While registration keeps failing, the failure is logged at warn at most this often (debug otherwise). */
const FAILURE_WARN_EVERY_MS = 5 * 60_000;

export class RuntimeFactory {
  readonly runtime: RuntimeName;
  readonly #client: RuntimeClient;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #callTimeoutMs: number;
  readonly #listTimeoutMs: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #resyncMs: number;
  readonly #timer: Timer;
  /** Aborted by close(): every sleep, stream and in-flight call listens to it. */
  readonly #closer = new AbortController();

  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #loop: Promise<void> | undefined;

  #up = false;
  /** True from a registration failure until the next successful registration (for log rate limiting). */
  #failing = false;
  #lastWarnAt = 0;
  #version: RuntimeVersion | undefined;
  #parsedVersion = 'unknown';
  #lastError: string | undefined;
  #lastErrorAt: number | undefined;

  /** The first registration completed (settled() answers 'registered' from then on, whatever it answered before). */
  #registered = false;
  /** When the runtime last answered (version, list progress), `now()` clock; start() counts as one. */
  #lastAnswerAt = 0;
  #everAnswered = false;
  /** How the wait for the first registration ended, once it has. */
  #outcome: SettleOutcome | undefined;
  /** The one wait settled() callers share, with its grace timer (armed from start(), re-armed at each answer). */
  #wait: { promise: Promise<SettleOutcome>; resolve: (o: SettleOutcome) => void; graceMs: number; cancel?: () => void } | undefined;

  readonly #index = new ContainerIndex();
  readonly #inspects: InspectQueue;

  constructor(client: RuntimeClient, opts: FactoryOptions) {
    this.#client = client;
    this.runtime = client.runtime;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#callTimeoutMs = opts.callTimeoutMs;
    this.#listTimeoutMs = opts.listTimeoutMs ?? Math.max(opts.callTimeoutMs, 30_000);
    this.#retryMinMs = opts.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.#retryMaxMs = Math.max(opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS, this.#retryMinMs);
    this.#resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#timer = opts.timer ?? unrefTimer;
    this.#inspects = new InspectQueue({
      inspect: (id) => this.#call('inspect()', (s) => this.#client.inspect(id, s)),
      canStart: () => this.#up,
      onFound: (c) => this.#index.set(c),
      onGone: (id) => this.#index.delete(id),
      onFailed: (id, err) => this.#log.debug(`${this.runtime} inspect of ${id} failed: ${errorMessage(err)}`),
      isCached: (id) => this.#index.has(id),
      now: this.#now,
    });
  }

  /** Starts the registration loop in the background. Idempotent; never throws; a no-op after close(). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#lastAnswerAt = this.#now();
    this.#armGrace();
    this.#loop = this.#run().catch((err: unknown) => {
      /* c8 ignore next 2 -- #run handles its own failures; this only guards against a bug becoming an unhandled rejection */
      this.#log.error(`${this.runtime} runtime factory stopped: ${errorMessage(err)}`);
    });
  }

  status(): RuntimeStatus {
    const s: RuntimeStatus = {
      runtime: this.runtime,
      up: this.#up,
      version: this.#version?.version ?? '',
      apiVersion: this.#version?.apiVersion ?? '',
      parsedVersion: this.#parsedVersion,
      containers: this.#index.size,
    };
    if (this.#lastError !== undefined) s.lastError = this.#lastError;
    if (this.#lastErrorAt !== undefined) s.lastErrorAt = new Date(this.#lastErrorAt).toISOString();
    return s;
  }

  /**
   * Resolves once startup may stop waiting for this runtime's first registration:
   * - 'registered': version() and the first full list() succeeded (at once if they already have);
   * - 'absent': an attempt failed and the client says its socket does not exist (no such runtime on this node);
   * - 'unresponsive': no answer (version, list progress) for `graceMs`, counted from start() or the last answer, so a
   *   slow daemon that keeps answering is waited for, a hung or failing one is not;
   * - 'closed': close() came first.
   * Settled once: later calls answer at once with the same outcome, except 'registered' once the runtime has
   * registered. Concurrent callers share one wait, with the grace of the first.
   */
  settled(graceMs: number): Promise<SettleOutcome> {
    const done = this.#settledAs();
    if (done !== undefined) return Promise.resolve(done);
    if (this.#wait !== undefined) return this.#wait.promise;
    let resolve!: (o: SettleOutcome) => void;
    const promise = new Promise<SettleOutcome>((r) => (resolve = r));
    this.#wait = { promise, resolve, graceMs };
    this.#armGrace(); // may settle at once: started long enough ago with no answer since
    return promise;
  }

  /** Sync, from cache only. */
  get(id: string): RuntimeContainer | undefined {
    return this.#index.get(id);
  }

  /**
   * Sync: the cached container, or undefined. A miss for an id that looks like a container id schedules a background
   * inspect (deduped, at most 4 in flight, each bounded by callTimeoutMs), so the next lookup hits; a negative result
   * is remembered for 30 s. Only while the runtime is up.
   */
  lookup(id: string): RuntimeContainer | undefined {
    const hit = this.#index.get(id);
    if (hit !== undefined) return hit;
    if (!this.#up || this.#closed || !isContainerId(id)) return undefined;
    this.#inspects.request(id);
    return undefined;
  }

  /** Whether an inspect of `id` is queued or in flight (while the runtime is up): its entry may arrive shortly. */
  pending(id: string): boolean {
    return this.#up && !this.#closed && this.#inspects.pending(id);
  }

  /** Whether this runtime can measure a container's writable layer itself (containerd snapshots). */
  canMeasureSnapshot(c: RuntimeContainer): boolean {
    return this.#client.snapshotUsage !== undefined && c.namespace !== undefined && c.snapshotter !== undefined && c.snapshotKey !== undefined;
  }

  /** The container's snapshot usage from the runtime (no walk); the caller bounds it with `signal`. */
  async snapshotUsage(c: RuntimeContainer, signal: AbortSignal): Promise<{ bytes: number; inodes: number }> {
    const client = this.#client;
    if (client.snapshotUsage === undefined || c.namespace === undefined || c.snapshotter === undefined || c.snapshotKey === undefined) {
      throw new Error(`${this.runtime} cannot measure the snapshot of ${c.id}`);
    }
    const u = await client.snapshotUsage(c.namespace, c.snapshotter, c.snapshotKey, signal);
    return { bytes: u.size, inodes: u.inodes };
  }

  /** Sync, from cache only: the container the runtime placed in exactly this cgroup path, if it said so. */
  byCgroupPath(path: string): RuntimeContainer | undefined {
    return this.#index.byCgroupPath(path);
  }

  /** Pod UID (with dashes) → name and namespace, from cached containers' `io.kubernetes.pod.*` labels. */
  pod(uid: string): { pod: string; namespace: string } | undefined {
    return this.#index.pod(uid);
  }

  /** Stops timers, aborts the stream and in-flight calls, waits for them to unwind, closes the client. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#up = false;
    this.#settle('closed');
    this.#inspects.close();
    this.#closer.abort();
    this.#closing = (async () => {
      await this.#loop;
      await this.#inspects.settled();
      try {
        const timeout = AbortSignal.timeout(this.#callTimeoutMs);
        await raceSignal(
          () => this.#client.close(),
          timeout,
          () => new Error(`close() timed out after ${this.#callTimeoutMs} ms`),
        );
      } catch (err) {
        this.#log.debug(`${this.runtime} runtime client close failed: ${errorMessage(err)}`);
      }
    })();
    return this.#closing;
  }

  // --- registration loop ---

  async #run(): Promise<void> {
    const closed = this.#closer.signal;
    let attempt = 0;
    while (!this.#closed) {
      const began = this.#now();
      try {
        await this.#register();
      } catch (err) {
        if (this.#closed) return;
        if (this.#outcome === undefined && this.#client.socketMissing?.() === true) this.#settle('absent');
        const wait = this.#backoff(attempt++);
        this.#registrationFailed(errorMessage(err), wait);
        await delay(wait, closed);
        continue;
      }
      const cause = await this.#watch();
      if (this.#closed) return;
      // A session that lived at least as long as the longest backoff resets it; one that ends at once keeps
      // backing off, so a stream that keeps ending immediately cannot turn into a list() loop.
      if (this.#now() - began >= this.#retryMaxMs) attempt = 0;
      const wait = this.#backoff(attempt++);
      this.#setError(cause);
      // The cache and `up` are kept: the containers are still there; re-registration decides whether we are up.
      this.#log.info(`${this.runtime} ${cause}, re-registering in ${formatDelay(wait)}`);
      await delay(wait, closed);
    }
  }

  #backoff(attempt: number): number {
    return Math.min(this.#retryMinMs * 2 ** Math.min(attempt, 30), this.#retryMaxMs);
  }

  async #register(): Promise<void> {
    const version = await this.#call('version()', (s) => this.#client.version(s));
    this.#answered();
    const list = await this.#list(undefined);
    if (this.#closed) return;
    this.#index.replaceAll(list);
    for (const c of list) this.#inspects.forget(c.id);
    this.#version = version;
    this.#parsedVersion = safeParseVersion(version.version);
    this.#up = true;
    this.#failing = false;
    this.#log.info(`${this.runtime} runtime registered`, {
      version: version.version,
      api_version: version.apiVersion || undefined,
      parsed_version: this.#parsedVersion,
      containers: this.#index.size,
    });
    this.#registered = true;
    this.#settle('registered');
  }

  // --- settling the wait for the first registration ---

  #settledAs(): SettleOutcome | undefined {
    return this.#registered ? 'registered' : this.#outcome;
  }

  /** Records the outcome (the first one sticks) and resolves the shared wait, if any. */
  #settle(outcome: SettleOutcome): void {
    this.#outcome ??= outcome;
    const wait = this.#wait;
    if (wait === undefined) return;
    this.#wait = undefined;
    wait.cancel?.();
    wait.resolve(this.#settledAs() ?? outcome);
  }

  /** The runtime answered: the grace restarts from now. */
  #answered(): void {
    this.#lastAnswerAt = this.#now();
    this.#everAnswered = true;
    this.#armGrace();
  }

  /** (Re-)arms the shared wait's grace timer for what is left of the grace since the last answer (once started). */
  #armGrace(): void {
    const wait = this.#wait;
    if (wait === undefined || !this.#started) return;
    wait.cancel?.();
    wait.cancel = undefined;
    const left = wait.graceMs - (this.#now() - this.#lastAnswerAt);
    if (left <= 0) this.#giveUp(wait.graceMs);
    else wait.cancel = this.#timer(left, () => this.#giveUp(wait.graceMs));
  }

  #giveUp(graceMs: number): void {
    if (this.#settledAs() !== undefined) return;
    const silence = this.#everAnswered
      ? `made no progress registering for ${formatDelay(graceMs)}`
      : `did not answer within ${formatDelay(graceMs)} of startup`;
    this.#log.info(`${this.runtime} runtime ${silence}; serving its containers without labels until it registers`);
    this.#settle('unresponsive');
  }

  #registrationFailed(cause: string, wait: number): void {
    const now = this.#now();
    this.#setError(cause, now);
    const wasUp = this.#up;
    this.#up = false;
    this.#inspects.clear();
    const retry = `retrying in ${formatDelay(wait)}: ${cause}`;
    if (wasUp) {
      this.#log.warn(`${this.runtime} runtime went away, ${retry}`);
      this.#lastWarnAt = now;
    } else if (!this.#failing || now - this.#lastWarnAt >= FAILURE_WARN_EVERY_MS) {
      this.#log.warn(`${this.runtime} runtime not available, ${retry}`);
      this.#lastWarnAt = now;
    } else {
      this.#log.debug(`${this.runtime} runtime not available, ${retry}`);
    }
    this.#failing = true;
  }

  #setError(cause: string, at = this.#now()): void {
    this.#lastError = cause;
    this.#lastErrorAt = at;
  }

  /**
   * While registered: the events stream (if the client has one) and a periodic list resync run side by side. The
   * first to end (stream ended or failed, resync failed) ends the session; the other is aborted. Resolves with the
   * cause; never rejects.
   */
  async #watch(): Promise<string> {
    const session = new AbortController();
    const signal = AbortSignal.any([this.#closer.signal, session.signal]);
    const tasks = [this.#resyncLoop(signal)];
    if (this.#client.events !== undefined) tasks.push(this.#stream(this.#client.events.bind(this.#client), signal));
    const cause = await Promise.race(tasks);
    session.abort();
    await Promise.allSettled(tasks);
    return cause;
  }

  async #stream(events: NonNullable<RuntimeClient['events']>, signal: AbortSignal): Promise<string> {
    try {
      await raceSignal(
        () => events((e) => this.#onEvent(e, signal), signal),
        signal,
        () => new Error('events stream aborted'),
      );
      return 'events stream ended';
    } catch (err) {
      return `events stream failed: ${errorMessage(err)}`;
    }
  }

  async #resyncLoop(signal: AbortSignal): Promise<string> {
    const evented = this.#client.events !== undefined;
    for (let n = 1; ; n++) {
      await delay(this.#resyncMs, signal);
      if (signal.aborted) return 'resync stopped';
      // The events stream of this session is up (the session ends when it does), so cached entries are current.
      const known = evented && n % FULL_RESYNC_EVERY !== 0 ? (id: string) => this.#index.get(id) : undefined;
      let list: RuntimeContainer[];
      try {
        list = await this.#list(known, signal);
      } catch (err) {
        return `resync failed: ${errorMessage(err)}`;
      }
      if (signal.aborted) return 'resync stopped';
      this.#merge(list);
    }
  }

  /**
   * A resync: the listed containers replace their entries; a cached container the list lacks is inspected before it
   * is dropped, since not every runtime can list everything (CRI-O's inspect API has no list at all).
   */
  #merge(list: readonly RuntimeContainer[]): void {
    const listed = new Set<string>();
    for (const c of list) {
      listed.add(c.id);
      this.#index.set(c);
      this.#inspects.forget(c.id);
    }
    this.#inspects.recheck([...this.#index.ids()].filter((id) => !listed.has(id)));
  }

  #onEvent(e: RuntimeEvent, signal: AbortSignal): void {
    if (signal.aborted || this.#closed || typeof e.id !== 'string' || e.id === '') return;
    switch (e.action) {
      case 'destroy':
        this.#inspects.destroyed(e.id);
        this.#index.delete(e.id);
        return;
      case 'create':
      case 'start':
      case 'die':
      case 'rename':
      case 'update':
        this.#inspects.changed(e.id);
        return;
      default:
        return;
    }
  }

  // --- client calls ---

  /**
   * One list(), failed once it goes listTimeoutMs without progress (the timer is re-armed at each `onProgress`), and
   * aborted by close() (and by `extra`, when given). Each request in it is bounded by the client's own timeout.
   */
  async #list(known: ((id: string) => RuntimeContainer | undefined) | undefined, extra?: AbortSignal): Promise<RuntimeContainer[]> {
    const ms = this.#listTimeoutMs;
    const idle = new AbortController();
    const arm = (): (() => void) => this.#timer(ms, () => idle.abort());
    let cancel = arm();
    let done = false;
    const onProgress = (): void => {
      if (done || idle.signal.aborted) return;
      cancel();
      cancel = arm();
      this.#answered();
    };
    const sources = [this.#closer.signal, idle.signal];
    if (extra !== undefined) sources.push(extra);
    const signal = AbortSignal.any(sources);
    try {
      return await raceSignal(
        () => this.#client.list(signal, known, onProgress),
        signal,
        () =>
          idle.signal.aborted && !this.#closer.signal.aborted && extra?.aborted !== true
            ? new Error(`list() made no progress for ${ms} ms`)
            : new Error('list() aborted'),
      );
    } finally {
      done = true;
      cancel();
    }
  }

  /** One client call (version(), inspect()), bounded by callTimeoutMs and aborted by close(). */
  #call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.#callTimeoutMs;
    const timeout = AbortSignal.timeout(ms);
    const signal = AbortSignal.any([this.#closer.signal, timeout]);
    return raceSignal(
      () => fn(signal),
      signal,
      () => (timeout.aborted && !this.#closer.signal.aborted ? new Error(`${what} timed out after ${ms} ms`) : new Error(`${what} aborted`)),
    );
  }
}

/** parseVersion never decides registration: a throw (it should not) is just 'unknown'. */
function safeParseVersion(raw: string): string {
  try {
    return parseVersion(raw);
  } catch {
    return 'unknown';
  }
}
