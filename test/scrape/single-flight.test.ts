import t from 'tap';
import { SingleFlight } from '../../src/scrape/single-flight.js';

import { deferred } from '../support/deferred.js';

t.test('callers during a run share it', async (t) => {
  let runs = 0;
  const d = deferred<number>();
  const f = new SingleFlight(() => {
    runs++;
    return d.promise;
  }, 0);
  const flights = Array.from({ length: 20 }, () => f.get());
  t.equal(runs, 1);
  t.same(
    flights.map((x) => x.shared),
    [false, ...Array<boolean>(19).fill(true)],
  );
  d.resolve(42);
  t.same(await Promise.all(flights.map((x) => x.value)), Array<number>(20).fill(42));
  f.get();
  t.equal(runs, 2, 'with no minimum age, the next caller after completion starts a new run');
});

t.test('min age reuses a fresh result, then expires', async (t) => {
  let now = 1000;
  let runs = 0;
  const f = new SingleFlight(
    async () => ++runs,
    5000,
    () => now,
  );
  t.equal(await f.get().value, 1);
  await new Promise((r) => setImmediate(r));
  now += 4999;
  const reused = f.get();
  t.equal(reused.shared, true);
  t.equal(await reused.value, 1);
  now += 1;
  t.equal(await f.get().value, 2, 'a result as old as the minimum age is not reused');
});

t.test('a failed run is not reused', async (t) => {
  let runs = 0;
  const f = new SingleFlight(async () => {
    runs++;
    if (runs === 1) throw new Error('boom');
    return runs;
  }, 60_000);
  await t.rejects(f.get().value, /boom/);
  await new Promise((r) => setImmediate(r));
  t.equal(await f.get().value, 2);
});
