/**
 * The queue every NVML call goes through: one native call in flight at a time, each with a timeout.
 *
 * NVML is thread-safe, but a driver call can block for as long as the driver likes (a GPU falling off the bus, a
 * stuck nvidia-persistenced). koffi's `.async` runs each call on one of libuv's four pool threads, so unbounded
 * parallel calls into a stuck driver would take every pool thread (and with them fs and dns for the whole process).
 * Serialising caps that at one thread. When a call passes its timeout its caller gets NvmlTimeoutError, the call
 * stays outstanding (a native call cannot be cancelled), and every queued and later call is refused at once with
 * NvmlHungError until the outstanding one returns; then the queue runs normally again.
 *
 * Generic over any `() => Promise<T>`, so it is tested with plain promises as well as with koffi.
 */
import { NvmlHungError, NvmlTimeoutError } from './codes.js';

export interface NvmlCallQueueOptions {
  /** How long one call may take before its caller gets NvmlTimeoutError. */
  timeoutMs: number;
  /** The clock of `hung().sinceMs` and NvmlHungError (default Date.now). */
  now?: () => number;
}

/** The call now outstanding past its timeout: its name and when it was started (`now()`). */
export interface NvmlHung {
  call: string;
  sinceMs: number;
}

interface Job {
  call: string;
  /** Starts the call; the promise never rejects and routes the outcome to the caller while `live()` says so. */
  launch: (live: () => boolean) => Promise<void>;
  reject: (err: Error) => void;
}

interface Running {
  call: string;
  startedMs: number;
  timedOut: boolean;
}

export class NvmlCallQueue {
  readonly timeoutMs: number;
  readonly #now: () => number;
  readonly #waiting: Job[] = [];
  #running: Running | undefined;
  #timeouts = 0;

  constructor(opts: NvmlCallQueueOptions) {
    if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new RangeError(`NVML call timeout must be positive, got ${opts.timeoutMs}`);
    this.timeoutMs = opts.timeoutMs;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Runs `start` (which begins one native call and returns its promise) after every call queued before it, with the
   * timeout. Rejects with NvmlHungError without calling `start` while an earlier call is outstanding past its timeout;
   * a synchronous throw from `start` becomes the rejection.
   */
  run<T>(call: string, start: () => Promise<T>): Promise<T> {
    const hung = this.hung();
    if (hung !== undefined) return Promise.reject(new NvmlHungError(call, hung.call, hung.sinceMs));
    return new Promise<T>((resolve, reject) => {
      const launch = (live: () => boolean): Promise<void> =>
        invoke(start).then(
          (v) => {
            if (live()) resolve(v);
          },
          (err: unknown) => {
            if (live()) reject(err);
          },
        );
      this.#waiting.push({ call, launch, reject });
      this.#next();
    });
  }

  /** The call now outstanding past its timeout (the driver is stuck until it returns), else undefined. */
  hung(): NvmlHung | undefined {
    const r = this.#running;
    return r?.timedOut === true ? { call: r.call, sinceMs: r.startedMs } : undefined;
  }

  /** Calls that passed their timeout so far. */
  get timeouts(): number {
    return this.#timeouts;
  }

  #next(): void {
    if (this.#running !== undefined) return;
    const job = this.#waiting.shift();
    if (job === undefined) return;
    const running: Running = { call: job.call, startedMs: this.#now(), timedOut: false };
    this.#running = running;
    const timer = setTimeout(() => this.#timedOut(job, running), this.timeoutMs);
    void job
      .launch(() => !running.timedOut)
      .finally(() => {
        clearTimeout(timer);
        this.#running = undefined;
        this.#next();
      });
  }

  #timedOut(job: Job, running: Running): void {
    running.timedOut = true;
    this.#timeouts++;
    job.reject(new NvmlTimeoutError(job.call, this.timeoutMs));
    for (const waiting of this.#waiting.splice(0)) waiting.reject(new NvmlHungError(waiting.call, running.call, running.startedMs));
  }
}

/** `start()`, with a synchronous throw turned into a rejection. */
function invoke<T>(start: () => Promise<T>): Promise<T> {
  try {
    return start();
  } catch (err) {
    return Promise.reject(err);
  }
}
