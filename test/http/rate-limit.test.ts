import t from 'tap';
import { TokenBucket } from '../../src/http/rate-limit.js';

/** A clock that moves only when told. */
function clock(start = 1_000): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let ms = start;
  return {
    now: () => ms,
    advance: (d) => {
      ms += d;
    },
    set: (v) => {
      ms = v;
    },
  };
}

function takeN(b: TokenBucket, n: number): boolean[] {
  return Array.from({ length: n }, () => b.take());
}

t.test('starts full and refuses once the burst is spent', async (t) => {
  const c = clock();
  const b = new TokenBucket({ intervalMs: 1_000, burst: 3, now: c.now });
  t.same(takeN(b, 4), [true, true, true, false]);
  t.equal(b.take(), false, 'still empty while time stands still');
});

t.test('one token per interval, never more than the burst', async (t) => {
  const c = clock();
  const b = new TokenBucket({ intervalMs: 1_000, burst: 2, now: c.now });
  t.same(takeN(b, 3), [true, true, false]);
  c.advance(999);
  t.equal(b.take(), false, 'not a whole token yet');
  c.advance(1);
  t.same(takeN(b, 2), [true, false], 'one token after one interval');
  c.advance(1_500);
  t.same(takeN(b, 2), [true, false], 'one and a half intervals give one token');
  c.advance(500);
  t.same(takeN(b, 2), [true, false], 'the half token left over is kept');
  c.advance(2_500);
  t.same(takeN(b, 3), [true, true, false], 'two and a half intervals from empty give the two of the burst');
  c.advance(500);
  t.equal(b.take(), false, 'what went over the burst was not kept');
  c.advance(60_000);
  t.same(takeN(b, 3), [true, true, false], 'a long quiet spell refills only up to the burst');
});

t.test('a refused request takes nothing', async (t) => {
  const c = clock();
  const b = new TokenBucket({ intervalMs: 100, burst: 1, now: c.now });
  t.equal(b.take(), true);
  c.advance(50);
  t.equal(b.take(), false);
  c.advance(50);
  t.equal(b.take(), true, 'the refusal at 50 ms did not cost the half token');
});

t.test('interval 0 disables limiting', async (t) => {
  const c = clock();
  for (const burst of [0, 1, 5]) {
    const b = new TokenBucket({ intervalMs: 0, burst, now: c.now });
    t.ok(
      takeN(b, 100).every((x) => x),
      `burst ${burst}`,
    );
  }
});

t.test('burst 0 with an interval refuses everything (exporter-toolkit footgun, kept)', async (t) => {
  const c = clock();
  const b = new TokenBucket({ intervalMs: 1_000, burst: 0, now: c.now });
  t.equal(b.take(), false);
  c.advance(3_600_000);
  t.equal(b.take(), false, 'even after an hour');
});

t.test('a clock that steps back earns nothing', async (t) => {
  const c = clock(10_000);
  const b = new TokenBucket({ intervalMs: 1_000, burst: 1, now: c.now });
  t.equal(b.take(), true);
  c.set(5_000);
  t.equal(b.take(), false);
  c.set(5_999);
  t.equal(b.take(), false);
  c.set(6_000);
  t.equal(b.take(), true, 'time counts again from where the clock went back to');
});

t.test('the default clock is used without now()', async (t) => {
  const b = new TokenBucket({ intervalMs: 3_600_000, burst: 1 });
  t.same(takeN(b, 2), [true, false]);
});

t.test('bad options are refused', async (t) => {
  t.throws(() => new TokenBucket({ intervalMs: -1, burst: 1 }), RangeError);
  t.throws(() => new TokenBucket({ intervalMs: Number.NaN, burst: 1 }), RangeError);
  t.throws(() => new TokenBucket({ intervalMs: Infinity, burst: 1 }), RangeError);
  t.throws(() => new TokenBucket({ intervalMs: 10, burst: -1 }), RangeError);
  t.throws(() => new TokenBucket({ intervalMs: 10, burst: 1.5 }), RangeError);
});
