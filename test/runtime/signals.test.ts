/** delay() and raceSignal(): woken and settled by an AbortSignal, never by the clock in these tests. */
import t from 'tap';
import { getEventListeners } from 'node:events';
import { delay, raceSignal } from '../../src/runtime/signals.js';
import { deferred } from '../support/deferred.js';

const HOUR = 60 * 60_000;

t.test('delay() resolves at once on an aborted signal, and when the signal aborts', async (t) => {
  await delay(HOUR, AbortSignal.abort());
  const ac = new AbortController();
  const waiting = delay(HOUR, ac.signal);
  t.equal(getEventListeners(ac.signal, 'abort').length, 1);
  ac.abort();
  await waiting;
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'its listener is removed');
});

t.test('raceSignal() settles with the promise and removes its listener', async (t) => {
  const ac = new AbortController();
  t.equal(
    await raceSignal(
      () => Promise.resolve(7),
      ac.signal,
      () => new Error('aborted'),
    ),
    7,
  );
  t.equal(getEventListeners(ac.signal, 'abort').length, 0);
  await t.rejects(
    raceSignal(
      () => Promise.reject(new Error('boom')),
      ac.signal,
      () => new Error('aborted'),
    ),
    { message: 'boom' },
  );
  await t.rejects(
    // A client rejecting with a non-Error still yields an Error.
    raceSignal(
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the non-Error reason is the case under test
      () => Promise.reject('plain string'),
      ac.signal,
      () => new Error('aborted'),
    ),
    { message: 'plain string' },
  );
  await t.rejects(
    raceSignal(
      () => {
        throw new Error('sync throw');
      },
      ac.signal,
      () => new Error('aborted'),
    ),
    { message: 'sync throw' },
    'a synchronous throw from start() is a rejection',
  );
  t.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

t.test('raceSignal() rejects with onAbort() when the signal aborts, and absorbs the late settlement', async (t) => {
  let started = 0;
  await t.rejects(
    raceSignal(
      () => {
        started++;
        return Promise.resolve(1);
      },
      AbortSignal.abort(),
      () => new Error('already aborted'),
    ),
    { message: 'already aborted' },
  );
  t.equal(started, 0, 'start() is not called on an aborted signal');

  const ac = new AbortController();
  const hung = deferred<number>();
  const racing = raceSignal(
    () => hung.promise,
    ac.signal,
    () => new Error('timed out'),
  );
  ac.abort();
  await t.rejects(racing, { message: 'timed out' });
  // A late rejection of the ignored promise must not surface as an unhandled rejection (tap would fail the run).
  hung.reject(new Error('late'));
  await new Promise((r) => setImmediate(r));
  t.pass('late settlement absorbed');
});
