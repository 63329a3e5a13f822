/**
 * Polls the kubelet's PodResources List in the background and keeps the last good answer, so that a scrape only ever
 * reads memory (current()) and never waits on the kubelet.
 *
 * - The first poll runs at start(), then one every `intervalMs` after the previous one ended (never two at once);
 *   timers are unref'd and nothing escapes them.
 * - Socket missing (no kubelet, the directory not mounted, the kubelet restarting): no call is made, status says
 *   socketPresent=false, logged at info once per disappearance.
 * - A failed call keeps the last good answer; current() drops it once it is older than `maxAgeMs`, so attribution
 *   falls through rather than use a stale mapping. Errors are counted, and logged (warn) at most once per 30 s per
 *   distinct message, with the number of repeats left unlogged.
 * - RESOURCE_EXHAUSTED (the kubelet's rate limit) doubles the interval, up to 60 s; a success resets it.
 */
import { statSync } from 'node:fs';
import { errorMessage } from '../../errors.js';
import type { Fields, Logger } from '../../log.js';
import { PodResourcesClient, socketPathOf, type DeviceAssignment } from './client.js';

/** How long the last good answer is used when the kubelet stops answering. */
export const DEFAULT_MAX_AGE_MS = 5 * 60_000;
/** The longest interval RESOURCE_EXHAUSTED backs off to. */
export const MAX_BACKOFF_MS = 60_000;
/** A repeated error message is logged again only after this long. */
export const LOG_REPEAT_MS = 30_000;

/** gRPC status RESOURCE_EXHAUSTED: the kubelet's token bucket (100 QPS, burst 10) said no. */
const RESOURCE_EXHAUSTED = 8;

export interface PodResourcesStatus {
  /** The last call succeeded. */
  up: boolean;
  /** The socket file existed at the last poll. */
  socketPresent: boolean;
  /** The message of the last failed call, until a call succeeds. */
  lastError?: string;
  /** now() of the last successful call. */
  lastSuccessMs?: number;
  /** List calls made. */
  polls: number;
  /** List calls failed. */
  errors: number;
}

/** The timers the source uses (default: setTimeout, unref'd); a test passes its fake clock. */
export interface PodResourcesTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface PodResourcesSourceOptions {
  /** The kubelet's socket, e.g. `/var/lib/kubelet/pod-resources/kubelet.sock`. */
  socket: string;
  /** Deadline of each List call. */
  timeoutMs: number;
  /** Pause between the end of one poll and the start of the next. */
  intervalMs: number;
  /** current() returns the last good answer while it is no older than this (default DEFAULT_MAX_AGE_MS). */
  maxAgeMs?: number;
  log: Logger;
  /** Clock of lastSuccessMs, staleness and log throttling (default Date.now). */
  now?: () => number;
  /** Default: a PodResourcesClient on `socket` with `timeoutMs`. The source closes it. */
  client?: Pick<PodResourcesClient, 'list' | 'close'>;
  timers?: PodResourcesTimers;
}

const REAL_TIMERS: PodResourcesTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

function isResourceExhausted(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'grpcCode' in err && err.grpcCode === RESOURCE_EXHAUSTED;
}

/** The socket file exists. A stat that fails for another reason (EACCES) cannot tell, so the call is tried. */
function socketExists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    return !(err instanceof Error && 'code' in err && err.code === 'ENOTDIR');
  }
}

export class PodResourcesSource {
  readonly #socket: string;
  readonly #path: string;
  readonly #intervalMs: number;
  readonly #maxAgeMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #client: Pick<PodResourcesClient, 'list' | 'close'>;
  readonly #timers: PodResourcesTimers;

  #started = false;
  #closed = false;
  #timer: unknown;
  #inFlight: Promise<void> | undefined;
  #delayMs: number;
  #missingLogged = false;
  /** message → when it was last logged and how many repeats were not logged since. */
  readonly #logged = new Map<string, { at: number; suppressed: number }>();

  #last: readonly DeviceAssignment[] | undefined;
  #lastSuccessMs: number | undefined;
  #lastError: string | undefined;
  #up = false;
  #socketPresent = false;
  #polls = 0;
  #errors = 0;

  constructor(opts: PodResourcesSourceOptions) {
    this.#socket = opts.socket;
    this.#path = socketPathOf(opts.socket);
    this.#intervalMs = opts.intervalMs;
    this.#maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#timers = opts.timers ?? REAL_TIMERS;
    this.#client = opts.client ?? new PodResourcesClient({ socket: opts.socket, timeoutMs: opts.timeoutMs });
    this.#delayMs = opts.intervalMs;
  }

  /** First poll at once, then every intervalMs (backed off on RESOURCE_EXHAUSTED). Idempotent. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#tick();
  }

  /** The last good assignments while no older than maxAgeMs, else undefined (stale or never answered). */
  current(): readonly DeviceAssignment[] | undefined {
    if (this.#last === undefined || this.#lastSuccessMs === undefined) return undefined;
    return this.#now() - this.#lastSuccessMs <= this.#maxAgeMs ? this.#last : undefined;
  }

  status(): PodResourcesStatus {
    return {
      up: this.#up,
      socketPresent: this.#socketPresent,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#lastSuccessMs !== undefined ? { lastSuccessMs: this.#lastSuccessMs } : {}),
      polls: this.#polls,
      errors: this.#errors,
    };
  }

  /** Stops polling, cancels the call in flight, closes the client; resolves once the poll in flight has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#client.close();
    } catch (err) {
      this.#emit('warn', 'pod-resources: closing the client failed', { socket: this.#socket, error: errorMessage(err) });
    }
    await this.#inFlight;
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    this.#inFlight = this.#cycle();
  }

  /** One poll, then the next timer. Never rejects. */
  async #cycle(): Promise<void> {
    try {
      await this.#poll();
    } catch {
      // #poll catches every failure of the call and of the logger; nothing may stop the polling.
    }
    this.#inFlight = undefined;
    if (this.#closed) return;
    try {
      this.#timer = this.#timers.setTimeout(() => this.#tick(), this.#delayMs);
    } catch {
      // Only an injected timer can throw; there is nothing left to schedule with.
    }
  }

  async #poll(): Promise<void> {
    this.#socketPresent = socketExists(this.#path);
    if (!this.#socketPresent) {
      this.#up = false;
      if (!this.#missingLogged) {
        this.#missingLogged = true;
        this.#emit('info', 'pod-resources socket not found: devices are not attributed to pods until it appears', { socket: this.#socket });
      }
      return;
    }
    if (this.#missingLogged) {
      this.#missingLogged = false;
      this.#emit('info', 'pod-resources socket found', { socket: this.#socket });
    }
    this.#polls++;
    try {
      const list = await this.#client.list();
      if (this.#closed) return;
      this.#last = Object.freeze([...list]);
      this.#lastSuccessMs = this.#now();
      this.#lastError = undefined;
      this.#up = true;
      this.#delayMs = this.#intervalMs;
    } catch (err) {
      if (this.#closed) return; // cancelled by close()
      this.#errors++;
      this.#up = false;
      this.#lastError = errorMessage(err);
      if (isResourceExhausted(err)) this.#delayMs = Math.max(this.#intervalMs, Math.min(this.#delayMs * 2, MAX_BACKOFF_MS));
      this.#warnThrottled(this.#lastError);
    }
  }

  /** Logs `message` unless it was logged less than LOG_REPEAT_MS ago (then counts it as a repeat). */
  #warnThrottled(message: string): void {
    const now = this.#now();
    const seen = this.#logged.get(message);
    if (seen !== undefined && now - seen.at < LOG_REPEAT_MS) {
      seen.suppressed++;
      return;
    }
    // Bounded: an entry long past its window only carries a repeat count nobody will read.
    for (const [m, e] of this.#logged) if (now - e.at >= 10 * LOG_REPEAT_MS) this.#logged.delete(m);
    this.#logged.set(message, { at: now, suppressed: 0 });
    this.#emit('warn', 'pod-resources List failed', {
      socket: this.#socket,
      error: message,
      ...(seen !== undefined && seen.suppressed > 0 ? { repeats: seen.suppressed } : {}),
      ...(this.#delayMs !== this.#intervalMs ? { nextPollMs: this.#delayMs } : {}),
    });
  }

  /** Logs; a logger that throws is not our caller's problem (nothing escapes the timers or close()). */
  #emit(level: 'info' | 'warn', msg: string, fields: Fields): void {
    try {
      this.#log[level](msg, fields);
    } catch {
      // Dropped: the log line is lost, the polling goes on.
    }
  }
}
