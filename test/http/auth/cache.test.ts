import t from 'tap';
import { DEFAULT_CACHE_ENTRIES, SingleFlight, TtlCache } from '../../../src/http/auth/cache.js';
import { deferred } from '../../support/deferred.js';

t.test('TtlCache: each entry lives its own TTL', async (t) => {
  let now = 1000;
  const c = new TtlCache<string>({ now: () => now });
  c.set('a', 'A', 100);
  c.set('b', 'B', 200);
  now += 99;
  t.equal(c.get('a'), 'A');
  now += 1;
  t.equal(c.get('a'), undefined, 'expired at its TTL');
  t.equal(c.get('b'), 'B');
  now += 100;
  t.equal(c.get('b'), undefined);
  t.equal(c.size, 0, 'expired entries are dropped when seen');
  c.set('z', 'Z', 0);
  t.equal(c.get('z'), undefined, 'a TTL of 0 stores nothing');
  c.set('n', 'N', Number.NaN);
  t.equal(c.size, 0, 'nor does NaN');
});

t.test('TtlCache: set replaces, delete and clear remove', async (t) => {
  const c = new TtlCache<number>({ now: () => 0 });
  c.set('k', 1, 10);
  c.set('k', 2, 10);
  t.equal(c.get('k'), 2);
  t.equal(c.size, 1);
  c.delete('k');
  t.equal(c.get('k'), undefined);
  c.set('x', 1, 10);
  c.clear();
  t.equal(c.size, 0);
});

t.test('TtlCache: bounded, least recently used out first', async (t) => {
  const c = new TtlCache<number>({ maxEntries: 3, now: () => 0 });
  c.set('a', 1, 10);
  c.set('b', 2, 10);
  c.set('c', 3, 10);
  t.equal(c.get('a'), 1, 'a is now the most recently used');
  c.set('d', 4, 10);
  t.equal(c.size, 3);
  t.equal(c.get('b'), undefined, 'b, the least recently used, went');
  t.equal(c.get('a'), 1);
  t.equal(c.get('c'), 3);
  t.equal(c.get('d'), 4);
  t.equal(DEFAULT_CACHE_ENTRIES, 4096);
  const big = new TtlCache<number>({ now: () => 0 });
  for (let i = 0; i < 5000; i++) big.set(String(i), i, 10);
  t.equal(big.size, 4096, 'the default bound');
  t.equal(big.get('0'), undefined);
  t.equal(big.get('4999'), 4999);
});

t.test('SingleFlight: concurrent calls share one run; errors are shared, not kept', async (t) => {
  const f = new SingleFlight<number>();
  let runs = 0;
  const d = deferred<number>();
  const calls = Array.from({ length: 10 }, () =>
    f.run('k', () => {
      runs++;
      return d.promise;
    }),
  );
  await new Promise((r) => setImmediate(r));
  t.equal(runs, 1);
  t.equal(f.size, 1);
  d.resolve(7);
  t.same(await Promise.all(calls), Array(10).fill(7));
  t.equal(f.size, 0, 'forgotten once settled');

  const e = deferred<number>();
  const failing = [f.run('k', () => e.promise), f.run('k', () => Promise.resolve(1))];
  e.reject(new Error('boom'));
  for (const p of failing) await t.rejects(p, /boom/, 'every waiter sees the error');
  t.equal(await f.run('k', () => Promise.resolve(2)), 2, 'the error is not kept');

  const other = await Promise.all([f.run('a', () => Promise.resolve(1)), f.run('b', () => Promise.resolve(2))]);
  t.same(other, [1, 2], 'keys are separate');
});

t.test('SingleFlight: a synchronous throw rejects and is forgotten', async (t) => {
  const f = new SingleFlight<number>();
  await t.rejects(
    f.run('k', () => {
      throw new Error('sync');
    }),
    /sync/,
  );
  t.equal(f.size, 0);
  t.equal(await f.run('k', () => Promise.resolve(3)), 3);
});
