/**
 * The factory at startup: a list() bounded by progress rather than as a whole, `settled()` (registered, absent,
 * unresponsive, closed) and `pending()`. Time is a manual clock whose `advance()` fires the factory's timers, so no
 * assertion depends on how fast the machine is; only retries (real backoff of a few ms) are awaited by polling.
 */
import t, { type Test } from 'tap';
import type { Logger } from '../../src/log.js';
import { RuntimeFactory, type FactoryOptions, type SettleOutcome, type Timer } from '../../src/runtime/factory.js';
import { deferred } from '../support/deferred.js';
import { until } from '../support/poll.js';
import { container, FakeClient, hexId } from './fixtures/fake-client.js';

/** A clock and the factory's timers on it: `advance(ms)` moves the clock and fires every timer due by then. */
function manualTime() {
  const clock = { now: 1_700_000_000_000 };
  const armed = new Set<{ due: number; fn: () => void }>();
  const timer: Timer = (ms, fn) => {
    const entry = { due: clock.now + ms, fn };
    armed.add(entry);
    return () => armed.delete(entry);
  };
  const advance = (ms: number): void => {
    clock.now += ms;
    for (const e of [...armed].sort((a, b) => a.due - b.due)) {
      if (e.due > clock.now || !armed.has(e)) continue;
      armed.delete(e);
      e.fn();
    }
  };
  return { clock, timer, advance, armed };
}

function recorder(): { log: Logger; info: string[] } {
  const info: string[] = [];
  const none = (): void => {};
  return { log: { debug: none, info: (msg) => info.push(msg), warn: none, error: none }, info };
}

/** A factory on manual time (not started: settled() may be asked first); closed when the test ends. */
function setup(t: Test, client: FakeClient, opts: Partial<FactoryOptions> = {}) {
  const time = manualTime();
  const rec = recorder();
  const f = new RuntimeFactory(client, {
    callTimeoutMs: 30_000,
    listTimeoutMs: 1000,
    retryMinMs: 5,
    retryMaxMs: 5,
    resyncMs: 600_000,
    log: rec.log,
    now: () => time.clock.now,
    timer: time.timer,
    ...opts,
  });
  t.teardown(() => f.close());
  return { f, ...time, ...rec };
}

/** Lets every pending promise callback run. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The outcome of `p` once it settles, or undefined while it has not (checked after a flush). */
function watch(p: Promise<SettleOutcome>): { outcome: SettleOutcome | undefined } {
  const w: { outcome: SettleOutcome | undefined } = { outcome: undefined };
  void p.then((o) => (w.outcome = o));
  return w;
}

t.test('list(): bounded by progress, not as a whole', async (t) => {
  t.test('a listing slower than listTimeoutMs in all registers while it keeps answering', async (t) => {
    const client = new FakeClient();
    client.add(container(hexId(1)), container(hexId(2)));
    client.listGate = deferred();
    const { f, advance, armed } = setup(t, client);
    f.start();
    await until('list() called', () => client.listProgress !== undefined);
    // 20 answers 600 ms apart: 12 s in all, against a 1 s bound.
    for (let i = 0; i < 20; i++) {
      advance(600);
      client.listProgress?.();
    }
    t.equal(armed.size, 1, 'one progress timer, re-armed at each answer');
    client.listGate.resolve();
    await until('registered', () => f.status().up);
    t.equal(f.status().containers, 2);
    t.equal(armed.size, 0, 'the progress timer is cleared with the list');
    t.equal(f.status().lastError, undefined);
  });

  t.test('a listing that stops answering fails after listTimeoutMs without progress, and is retried', async (t) => {
    const client = new FakeClient();
    client.listGate = deferred();
    const { f, advance } = setup(t, client);
    f.start();
    await until('list() called', () => client.listProgress !== undefined);
    const listSignal = client.signals.at(-1);
    advance(900);
    client.listProgress?.();
    advance(999);
    await flush();
    t.equal(f.status().lastError, undefined, '999 ms since the last answer: still waiting');
    advance(1);
    await until('failed', () => f.status().lastError !== undefined);
    t.equal(f.status().lastError, 'list() made no progress for 1000 ms');
    t.ok(listSignal?.aborted, "the stalled list's signal is aborted");
    client.listGate.resolve();
    client.listGate = undefined;
    await until('registered on a retry', () => f.status().up);
    t.equal(client.listCalls, 2);
  });

  t.test('a late onProgress after the list ended arms nothing', async (t) => {
    const client = new FakeClient();
    const { f, armed } = setup(t, client);
    f.start();
    await until('registered', () => f.status().up);
    client.listProgress?.();
    t.equal(armed.size, 0);
  });
});

t.test('settled()', async (t) => {
  t.test("'registered': once the first list is in, and at once after", async (t) => {
    const client = new FakeClient();
    client.listGate = deferred();
    const { f } = setup(t, client);
    const early = f.settled(10_000);
    t.equal(f.settled(5_000), early, 'callers share one wait');
    const w = watch(early);
    f.start();
    await until('list() called', () => client.listProgress !== undefined);
    await flush();
    t.equal(w.outcome, undefined, 'version() alone is not registration');
    client.listGate.resolve();
    t.equal(await early, 'registered');
    t.equal(await f.settled(10_000), 'registered', 'at once once registered');
  });

  t.test("'absent': a failed attempt with no socket on this node, without waiting out the grace", async (t) => {
    const client = new FakeClient({ socket: true });
    client.socketIsMissing = true;
    client.failVersion = Infinity;
    const { f, info } = setup(t, client);
    f.start();
    t.equal(await f.settled(600_000), 'absent');
    t.equal(await f.settled(1), 'absent', 'settled once');
    t.same(info, []);
    // The runtime comes up later: it still registers, and settled() says so from then on.
    client.socketIsMissing = false;
    client.failVersion = 0;
    await until('registered', () => f.status().up);
    t.equal(await f.settled(1), 'registered');
  });

  t.test('a failing runtime whose socket exists is not absent: it is waited for, up to the grace', async (t) => {
    const client = new FakeClient({ socket: true });
    client.failVersion = Infinity;
    const { f, advance, info } = setup(t, client);
    f.start();
    const w = watch(f.settled(10_000));
    await until('3 failed attempts', () => client.versionCalls.length >= 3);
    advance(9_999);
    await flush();
    t.equal(w.outcome, undefined, 'failures are not answers; the grace is not over yet');
    advance(1);
    await flush();
    t.equal(w.outcome, 'unresponsive');
    t.same(info, ['docker runtime did not answer within 10s of startup; serving its containers without labels until it registers']);
    t.equal(await f.settled(60_000), 'unresponsive', 'settled once, whatever the grace asked later');
    client.failVersion = 0;
    await until('registered', () => f.status().up);
    t.equal(await f.settled(1), 'registered', 'a runtime that registers later answers registered');
    t.equal(info.length, 2, 'one give-up line, then the registration');
  });

  t.test('a client without socketMissing() is never absent', async (t) => {
    const client = new FakeClient();
    client.failVersion = Infinity;
    const { f, advance } = setup(t, client);
    f.start();
    const p = f.settled(5_000);
    await until('2 failed attempts', () => client.versionCalls.length >= 2);
    advance(5_000);
    t.equal(await p, 'unresponsive');
  });

  t.test('a hung version(): unresponsive after the grace', async (t) => {
    const client = new FakeClient();
    client.hangVersion = true;
    const { f, advance } = setup(t, client);
    f.start();
    const p = f.settled(10_000);
    await until('version() called', () => client.versionCalls.length === 1);
    advance(10_000);
    t.equal(await p, 'unresponsive');
  });

  t.test('a slow listing is waited for while it answers; the grace restarts at each answer', async (t) => {
    const client = new FakeClient();
    client.listGate = deferred();
    const { f, advance, info } = setup(t, client, { listTimeoutMs: 60_000 });
    f.start();
    const w = watch(f.settled(10_000));
    await until('list() called', () => client.listProgress !== undefined);
    for (let i = 0; i < 5; i++) {
      advance(6_000);
      client.listProgress?.();
    }
    await flush();
    t.equal(w.outcome, undefined, '30 s in, still waiting: every answer came within 10 s of the one before');
    advance(10_000);
    await flush();
    t.equal(w.outcome, 'unresponsive', 'then 10 s with no answer');
    t.same(info, ['docker runtime made no progress registering for 10s; serving its containers without labels until it registers']);
    client.listGate.resolve();
    await until('registered', () => f.status().up);
    t.equal(await f.settled(10_000), 'registered');
  });

  t.test('asked late, with no answer since start(): unresponsive at once', async (t) => {
    const client = new FakeClient();
    client.hangVersion = true;
    const { f, advance } = setup(t, client);
    f.start();
    advance(20_000);
    t.equal(await f.settled(10_000), 'unresponsive');
  });

  t.test("'closed': close() ends the wait and clears its timer", async (t) => {
    const client = new FakeClient();
    client.hangVersion = true;
    const { f, armed } = setup(t, client);
    const p = f.settled(10_000);
    t.equal(armed.size, 0, 'no grace timer before start()');
    f.start();
    t.equal(armed.size, 1, 'the grace timer, armed by start()');
    await f.close();
    t.equal(await p, 'closed');
    t.equal(await f.settled(10_000), 'closed');
    t.equal(armed.size, 0);
  });

  t.test('registered before close stays registered', async (t) => {
    const client = new FakeClient();
    const { f } = setup(t, client);
    f.start();
    await until('registered', () => f.status().up);
    await f.close();
    t.equal(await f.settled(10_000), 'registered');
  });
});

t.test('pending(): a lookup queued or in flight, while the runtime is up', async (t) => {
  const client = new FakeClient();
  const { f } = setup(t, client);
  const id = hexId(7);
  t.equal(f.pending(id), false, 'not started');
  f.start();
  await until('registered', () => f.status().up);
  const ids = Array.from({ length: 6 }, (_, i) => hexId(100 + i));
  for (const x of [id, ...ids]) client.add(container(x));
  client.inspectGate = deferred();
  t.equal(f.lookup(id), undefined);
  for (const x of ids) f.lookup(x);
  t.equal(client.inspectsInFlight, 4);
  t.ok(f.pending(id), 'in flight');
  t.ok(f.pending(ids[5] ?? ''), 'queued behind 4 in flight');
  t.equal(f.pending(hexId(999)), false, 'never looked up');
  client.inspectGate.resolve();
  client.inspectGate = undefined;
  await until('all inspected', () => [id, ...ids].every((x) => f.get(x) !== undefined));
  t.equal(f.pending(id), false, 'answered');

  client.inspectGate = deferred();
  f.lookup(hexId(8));
  t.ok(f.pending(hexId(8)));
  await f.close();
  t.equal(f.pending(hexId(8)), false, 'closed');
  client.inspectGate.resolve();
});
