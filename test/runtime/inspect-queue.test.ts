/**
 * The background inspect queue on its own: bounds, dedupe, re-inspect after a mid-flight change, the negative cache
 * and its sweep (time from an injected clock), and close().
 */
import t from 'tap';
import { InspectQueue, MAX_INSPECTS_IN_FLIGHT, MAX_INSPECTS_QUEUED, NEGATIVE_SWEEP_AT, NEGATIVE_TTL_MS } from '../../src/runtime/inspect-queue.js';
import type { RuntimeContainer } from '../../src/model/runtime.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { container } from './fixtures/fake-client.js';

/** Lets every pending promise callback run (setImmediate fires after the microtask queue drains). */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function harness() {
  const clock = { now: 1_700_000_000_000 };
  const state = { up: true };
  /** When set, inspect() answers at once with this; otherwise each call waits on its deferred in `pending`. */
  const auto: { answer: ((id: string) => RuntimeContainer | undefined) | undefined } = { answer: undefined };
  const pending = new Map<string, Deferred<RuntimeContainer | undefined>>();
  const calls: string[] = [];
  const found: RuntimeContainer[] = [];
  const gone: string[] = [];
  const failed: string[] = [];
  const cached = new Set<string>();
  const q = new InspectQueue({
    inspect: (id) => {
      calls.push(id);
      if (auto.answer !== undefined) return Promise.resolve(auto.answer(id));
      const d = deferred<RuntimeContainer | undefined>();
      pending.set(id, d);
      return d.promise;
    },
    canStart: () => state.up,
    onFound: (c) => {
      found.push(c);
      cached.add(c.id);
    },
    onGone: (id) => {
      gone.push(id);
      cached.delete(id);
    },
    onFailed: (id) => failed.push(id),
    isCached: (id) => cached.has(id),
    now: () => clock.now,
  });
  /** Settles the in-flight inspect of `id` and lets the queue react. */
  const answer = async (id: string, v: RuntimeContainer | undefined | Error): Promise<void> => {
    const d = pending.get(id);
    if (d === undefined) throw new Error(`no inspect of ${id} in flight`);
    pending.delete(id);
    if (v instanceof Error) d.reject(v);
    else d.resolve(v);
    await flush();
  };
  return { q, clock, state, auto, calls, found, gone, failed, cached, answer };
}

t.test('at most 4 in flight, at most 1024 queued; lookups past that are dropped, not events', async (t) => {
  const h = harness();
  const ids = Array.from({ length: MAX_INSPECTS_IN_FLIGHT + MAX_INSPECTS_QUEUED + 5 }, (_, i) => `id-${i}`);
  for (const id of ids) h.q.request(id);
  t.equal(h.calls.length, MAX_INSPECTS_IN_FLIGHT);
  t.same(h.q.counts(), { queued: MAX_INSPECTS_QUEUED, inFlight: MAX_INSPECTS_IN_FLIGHT, negative: 0 });
  h.q.request('id-0');
  h.q.request('id-10');
  t.same(h.q.counts(), { queued: MAX_INSPECTS_QUEUED, inFlight: MAX_INSPECTS_IN_FLIGHT, negative: 0 }, 'deduped: in flight or queued');

  await h.answer('id-0', container('id-0'));
  t.same(h.calls, ['id-0', 'id-1', 'id-2', 'id-3', 'id-4'], 'a finished inspect starts the next queued one, in order');
  t.equal(h.q.counts().queued, MAX_INSPECTS_QUEUED - 1);
  const dropped = ids[ids.length - 1]!;
  h.q.request(dropped);
  t.equal(h.q.counts().queued, MAX_INSPECTS_QUEUED, 'a dropped lookup is taken once there is room');

  h.q.changed('event-id');
  h.q.recheck(['resync-1', 'resync-2', 'id-1']);
  t.equal(h.q.counts().queued, MAX_INSPECTS_QUEUED + 3, 'events and resync rechecks are queued past the bound; in-flight ids are not');
});

t.test('pending(): queued or in flight, including a re-inspect after a mid-flight change', async (t) => {
  const h = harness();
  for (const id of ['a', 'b', 'c', 'd', 'e']) h.q.request(id);
  t.same(
    ['a', 'e', 'z'].map((id) => h.q.pending(id)),
    [true, true, false],
    'in flight, queued, never asked',
  );
  h.q.changed('a');
  await h.answer('a', container('a'));
  t.ok(h.q.pending('a'), 'the stale answer is dropped: a is queued again');
  await h.answer('b', undefined);
  t.equal(h.q.pending('b'), false, 'answered');
  h.q.request('f');
  t.same(h.q.counts(), { queued: 1, inFlight: 4, negative: 1 });
  h.q.clear();
  t.equal(h.q.pending('f'), false, 'clear() drops the queue');
  t.ok(h.q.pending('c'), 'what is in flight stays pending');
});

t.test('nothing starts while canStart() is false; clear() drops the queue but not what is in flight', async (t) => {
  const h = harness();
  h.state.up = false;
  for (let i = 0; i < 6; i++) h.q.request(`id-${i}`);
  t.same(h.calls, []);
  t.equal(h.q.counts().queued, 6);
  h.state.up = true;
  h.q.request('id-6');
  t.same(h.calls, ['id-0', 'id-1', 'id-2', 'id-3'], 'the next pump starts the oldest');
  h.q.clear();
  t.same(h.q.counts(), { queued: 0, inFlight: 4, negative: 0 });
  await h.answer('id-0', container('id-0'));
  t.same(
    h.found.map((c) => c.id),
    ['id-0'],
  );
  t.equal(h.calls.length, 4, 'nothing left to start');
});

t.test('a negative answer is remembered for 30 s by the injected clock; a listing or an event forgets it', async (t) => {
  const h = harness();
  h.q.request('gone');
  await h.answer('gone', undefined);
  t.same(h.gone, ['gone']);
  t.equal(h.q.counts().negative, 1);
  h.q.request('gone');
  h.clock.now += NEGATIVE_TTL_MS - 1;
  h.q.request('gone');
  t.equal(h.calls.length, 1, 'not asked again within the TTL');
  h.clock.now += 1;
  h.q.request('gone');
  t.equal(h.calls.length, 2, 'asked again once it expired');
  t.equal(h.q.counts().negative, 0, 'the expired entry is dropped');
  await h.answer('gone', undefined);

  h.q.forget('gone');
  h.q.request('gone');
  t.equal(h.calls.length, 3, 'forget(): a listing showed it');
  await h.answer('gone', undefined);
  h.q.changed('gone');
  t.equal(h.calls.length, 4, 'changed(): an event named it');
  await h.answer('gone', container('gone'));
  t.equal(h.q.counts().negative, 0, 'a positive answer clears the entry');
});

t.test('a failed inspect is remembered for an unknown id only; a cached id keeps its entry and is asked again', async (t) => {
  const h = harness();
  h.q.request('unknown');
  await h.answer('unknown', new Error('deadline exceeded'));
  t.same(h.failed, ['unknown']);
  h.q.request('unknown');
  t.equal(h.calls.length, 1);
  t.equal(h.q.counts().negative, 1);

  h.cached.add('known');
  h.q.request('known');
  await h.answer('known', new Error('deadline exceeded'));
  t.same(h.failed, ['unknown', 'known']);
  t.same(h.gone, [], 'a failure never drops a cached container');
  h.q.request('known');
  t.equal(h.calls.length, 3, 'a cached id is not remembered as negative');
});

t.test('the negative map is swept of expired entries once it reaches 4096', async (t) => {
  const h = harness();
  h.auto.answer = () => undefined;
  const drain = async (): Promise<void> => {
    while (h.q.counts().queued + h.q.counts().inFlight > 0) await flush();
  };
  const t0 = h.clock.now;
  for (let i = 0; i < NEGATIVE_SWEEP_AT; i++) {
    h.q.request(`n-${i}`);
    if (i % 1000 === 999) await drain();
  }
  await drain();
  t.equal(h.q.counts().negative, NEGATIVE_SWEEP_AT);

  h.clock.now = t0 + NEGATIVE_TTL_MS - 1;
  h.q.request('late-1');
  await drain();
  t.equal(h.q.counts().negative, NEGATIVE_SWEEP_AT + 1, 'a sweep with nothing expired keeps every entry');

  h.clock.now = t0 + NEGATIVE_TTL_MS;
  h.q.request('late-2');
  await drain();
  t.equal(h.q.counts().negative, 2, 'the sweep dropped the 4096 expired entries, kept late-1, added late-2');
});

t.test('a change while an inspect is in flight: the stale answer is dropped and the id inspected again', async (t) => {
  const h = harness();
  h.q.request('x');
  h.q.changed('x');
  t.same(h.calls, ['x'], 'never two concurrent inspects of one id');
  await h.answer('x', container('x', { pid: 1 }));
  t.same(h.found, [], 'the stale answer is not applied');
  t.same(h.calls, ['x', 'x'], 're-inspected');
  await h.answer('x', container('x', { pid: 2 }));
  t.same(
    h.found.map((c) => c.pid),
    [2],
  );

  h.q.request('y');
  h.q.destroyed('y');
  await h.answer('y', container('y'));
  t.equal(
    h.found.some((c) => c.id === 'y'),
    false,
    'a destroy mid-flight: the in-flight answer cannot resurrect it',
  );
  await h.answer('y', undefined);
  t.same(h.gone, ['y']);

  for (const id of ['a', 'b', 'c', 'd', 'queued']) h.q.request(id);
  h.q.destroyed('queued');
  t.equal(h.q.counts().queued, 0, 'a destroy drops a queued inspect');
});

t.test('close(): the queue is dropped, late answers are ignored, settled() waits for what is in flight', async (t) => {
  const h = harness();
  for (const id of ['a', 'b', 'c', 'd', 'e']) h.q.request(id);
  h.q.close();
  t.same(h.q.counts(), { queued: 0, inFlight: 4, negative: 0 });
  h.q.request('f');
  h.q.changed('g');
  t.equal(h.calls.length, 4, 'nothing starts after close()');

  let settled = false;
  void h.q.settled().then(() => {
    settled = true;
  });
  await h.answer('a', container('a'));
  await h.answer('b', undefined);
  await h.answer('c', new Error('aborted'));
  t.equal(settled, false, 'one inspect still in flight');
  await h.answer('d', container('d'));
  t.equal(settled, true);
  t.same([h.found, h.gone, h.failed], [[], [], []], 'no answer after close() reaches the hooks');
  t.equal(h.q.counts().negative, 0);
});
