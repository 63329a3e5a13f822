/**
 * What a walk does between two synchronous slices on the caller's thread, on one thread (walker.ts) and on two
 * (walk-threads.ts): yield one event-loop turn, and reject with an `AbortError` once the signal has aborted.
 */
import { setImmediate as eventLoopTurn } from 'node:timers/promises';

/** One event-loop turn between slices, then as long as `holdWhile` returns a promise, that promise. */
export async function nextTurn(holdWhile?: () => Promise<unknown> | undefined): Promise<void> {
  await eventLoopTurn();
  for (let hold = holdWhile?.(); hold !== undefined; hold = holdWhile?.()) await hold;
}

export function abortError(root: string | Buffer, signal: AbortSignal): Error {
  const err = new Error(`disk walk of ${String(root)} aborted`, { cause: signal.reason });
  err.name = 'AbortError';
  return Object.assign(err, { code: 'ABORT_ERR' });
}
