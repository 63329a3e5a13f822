/**
 * Waiting bounded by an AbortSignal, for the runtime factory: a sleep that wakes early on abort, and a race that
 * gives up on a promise as soon as its signal aborts. Plus how a wait reads in a log line.
 */

/** `2s`, `1.5s`, `250ms`: for log lines. */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects; the timer is unref'd and cleared on abort. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Settles with `start()`'s promise, or rejects with `onAbort()` as soon as `signal` aborts, so a client that ignores
 * its signal still cannot hold the factory past a timeout or close. A late settlement of the client's promise is
 * absorbed (no unhandled rejection).
 */
export function raceSignal<T>(start: () => Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(onAbort());
    const abort = (): void => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    const settle = (): void => signal.removeEventListener('abort', abort);
    let p: Promise<T>;
    try {
      p = start();
    } catch (err) {
      settle();
      return reject(err instanceof Error ? err : new Error(String(err)));
    }
    p.then(
      (v) => {
        settle();
        resolve(v);
      },
      (err: unknown) => {
        settle();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
