/**
 * The one way a test waits for something to happen: ask again and again, with a generous bound, and fail naming what
 * was awaited and what was last seen. Never a fixed sleep followed by an assertion: a loaded machine (hundreds of
 * containers, load 2+ on 2 cores) stretches every "it takes 300 ms here", while a bound of tens of seconds is only
 * ever reached when the thing awaited is really not happening.
 *
 *   const body = await poll('the container labelled', async () => { const b = await scrape(); return has(b) ? b : undefined; })
 *   await until('registered', () => factory.status().up)
 *   await until('6 lists', () => client.listCalls >= 6, { timeoutMs: 60_000, describe: () => `${client.listCalls} lists` })
 */
import { inspect } from 'node:util';

/** Generous: on a busy machine a condition that holds at all holds well within this. */
export const POLL_TIMEOUT_MS = 30_000;
/** Pause between attempts (ms) unless an attempt says otherwise. */
export const POLL_EVERY_MS = 20;

export interface PollOptions<T = unknown> {
  /** Give up after this long (default POLL_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Pause between attempts (default POLL_EVERY_MS). Use a few hundred ms when an attempt is costly (a scrape, a CLI). */
  everyMs?: number;
  /** A value fn returned is accepted only when this says so (default: any value but undefined). */
  accept?: (value: T) => boolean;
  /** Describes the state for the failure message when the last attempt neither threw nor was accepted. */
  describe?: () => string;
  /** Checked before each attempt: a reason to stop waiting at once (the process being waited on exited), or undefined. */
  giveUp?: () => string | undefined;
}

function show(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : inspect(value, { depth: 3, breakLength: Infinity });
  return s.length > 400 ? `${s.slice(0, 400)}… (${s.length} chars)` : s;
}

/**
 * Calls `fn` until it returns a value that is not undefined (and that `accept` accepts), and resolves to that value.
 * A throw counts as "not yet". Rejects after `timeoutMs` with
 * `timed out after <ms> ms waiting for <what>; last: <the last value, error or description>`.
 */
export async function poll<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, opts: PollOptions<T> = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? POLL_TIMEOUT_MS;
  const everyMs = opts.everyMs ?? POLL_EVERY_MS;
  const deadline = performance.now() + timeoutMs;
  let last: string;
  for (;;) {
    const reason = opts.giveUp?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`);
    try {
      const v = await fn();
      if (v !== undefined && (opts.accept === undefined || opts.accept(v))) return v;
      last = opts.describe?.() ?? show(v);
    } catch (err) {
      last = `threw ${err instanceof Error ? err.message : show(err)}`;
    }
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until `cond` returns true (a throw counts as false); rejects as poll() does, naming `what`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, opts: Omit<PollOptions<true>, 'accept'> = {}): Promise<void> {
  await poll(what, async () => ((await cond()) ? true : undefined), { ...opts, describe: opts.describe ?? (() => 'false') });
}
