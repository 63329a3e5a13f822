/**
 * DiskScheduler on a fake clock (injected `now` and `timers`): concurrency bound, deadlines, backoff, priority,
 * drop on sync, absent-before-first-result, jitter, close. One child process checks that the real, unref()'d
 * timer lets the process exit after close().
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DiskScheduler, nextWaitMs, type Measure, type MeasureReport, type SchedulerOptions, type TimerApi, type Usage } from '../../src/disk/scheduler.js';
import { DiskPermissionError, ConfigError } from '../../src/errors.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A manual clock: timers fire, in order, only inside advance(). */
class FakeClock {
  t = 0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  readonly now = (): number => this.t;
  readonly timers: TimerApi = {
    set: (fn, ms) => {
      const id = ++this.#seq;
      this.#timers.set(id, { at: this.t + ms, fn });
      return id;
    },
    clear: (handle) => {
      this.#timers.delete(handle as number);
    },
  };

  pending(): number {
    return this.#timers.size;
  }

  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await flush();
  }

  /** A measure that takes `ms` of fake time, honours its signal, and records each call. */
  measure(ms: number, usage: Usage, calls?: { at: number; signal: AbortSignal }[]): Measure {
    return (signal) =>
      new Promise((resolve, reject) => {
        calls?.push({ at: this.t, signal });
        const h = this.timers.set(() => resolve({ ...usage, files: usage.inodes }), ms);
        signal.addEventListener('abort', () => {
          this.timers.clear(h);
          reject(signal.reason as unknown);
        });
      });
  }
}

interface Deferred {
  resolve(u: Usage): void;
  reject(e: unknown): void;
  signal: AbortSignal;
  at: number;
}

/** A measure the test settles by hand; it ignores its signal on purpose. */
function manual(clock: FakeClock, calls: Deferred[]): Measure {
  return (signal) =>
    new Promise((resolve, reject) => {
      calls.push({ resolve, reject, signal, at: clock.t });
    });
}

function scheduler(clock: FakeClock, opts: Partial<SchedulerOptions> = {}): { s: DiskScheduler; reports: MeasureReport[] } {
  const reports: MeasureReport[] = [];
  const s = new DiskScheduler({
    concurrency: 2,
    intervalMs: 1000,
    deadlineMs: 5000,
    now: clock.now,
    timers: clock.timers,
    random: () => 0.5,
    onResult: (r) => reports.push(r),
    ...opts,
  });
  return { s, reports };
}

t.test('get is undefined before the first result, then the last complete one', async (t) => {
  const clock = new FakeClock();
  const { s, reports } = scheduler(clock);
  s.sync(new Map([['a', clock.measure(100, { bytes: 4096, inodes: 3 })]]));
  s.start();
  t.equal(s.get('a'), undefined, 'absent, not 0');
  t.equal(s.get('nope'), undefined);
  await clock.advance(0);
  t.equal(s.inFlight(), 1, 'started from the timer, not from sync');
  await clock.advance(99);
  t.equal(s.get('a'), undefined, 'nothing partial while in flight');
  await clock.advance(1);
  t.same(s.get('a'), { bytes: 4096, inodes: 3 });
  t.same(reports, [{ key: 'a', result: 'ok', durationMs: 100, files: 3 }]);
  await s.close();
});

t.test('nothing runs inside sync or before start', async (t) => {
  const clock = new FakeClock();
  const calls: Deferred[] = [];
  const { s } = scheduler(clock);
  s.sync(new Map([['a', manual(clock, calls)]]));
  await clock.advance(10_000);
  t.equal(calls.length, 0, 'not started');
  s.start();
  s.sync(
    new Map([
      ['a', manual(clock, calls)],
      ['b', manual(clock, calls)],
    ]),
  );
  t.equal(calls.length, 0, 'sync only records');
  t.equal(s.queueLength(), 2);
  await clock.advance(0);
  t.equal(calls.length, 2);
  t.equal(s.queueLength(), 0);
  t.equal(s.inFlight(), 2);
  for (const c of calls) c.resolve({ bytes: 1, inodes: 1 });
  await s.close();
});

t.test('concurrency never exceeds the bound', async (t) => {
  const clock = new FakeClock();
  const { s } = scheduler(clock, { concurrency: 3, intervalMs: 500, deadlineMs: 10_000 });
  let active = 0;
  let max = 0;
  let done = 0;
  const keys = new Map<string, Measure>();
  for (let i = 0; i < 50; i++) {
    const inner = clock.measure(10 + (i % 7) * 13, { bytes: i, inodes: i });
    keys.set(`k${i}`, async (signal) => {
      active++;
      max = Math.max(max, active);
      try {
        return await inner(signal);
      } finally {
        active--;
        done++;
      }
    });
  }
  s.sync(keys);
  s.start();
  await clock.advance(0);
  t.equal(s.inFlight(), 3);
  t.equal(s.queueLength(), 47);
  for (let step = 0; step < 300; step++) {
    await clock.advance(7);
    t.ok(s.inFlight() <= 3, 'inFlight within the bound');
  }
  t.equal(max, 3, 'the bound was reached and never exceeded');
  t.ok(done > 50, 'every key was measured and refreshed');
  for (let i = 0; i < 50; i++) t.same(s.get(`k${i}`), { bytes: i, inodes: i });
  await s.close();
  t.equal(active, 0, 'close aborted the ones in flight');
});

t.test('the deadline aborts, frees the slot, keeps the previous value, discards a late result', async (t) => {
  const clock = new FakeClock();
  const calls: Deferred[] = [];
  const other: { at: number; signal: AbortSignal }[] = [];
  const { s, reports } = scheduler(clock, { concurrency: 1, intervalMs: 10_000, deadlineMs: 1000 });
  s.sync(new Map([['a', manual(clock, calls)]]));
  s.start();
  await clock.advance(0);
  calls[0]?.resolve({ bytes: 100, inodes: 1 });
  await clock.advance(0);
  t.same(s.get('a'), { bytes: 100, inodes: 1 });

  await clock.advance(10_000);
  t.equal(calls.length, 2, 'refresh started after one interval');
  s.sync(
    new Map([
      ['a', manual(clock, calls)],
      ['b', clock.measure(10, { bytes: 7, inodes: 7 }, other)],
    ]),
  );
  await clock.advance(999);
  t.equal(other.length, 0, 'b waits: the one slot is taken');
  t.notOk(calls[1]?.signal.aborted);
  await clock.advance(1);
  t.ok(calls[1]?.signal.aborted, 'the signal aborted at the deadline');
  t.equal((calls[1]?.signal.reason as Error).name, 'TimeoutError');
  t.same(reports.at(-1), { key: 'a', result: 'timeout', durationMs: 1000 });
  t.equal(other.length, 1, 'the slot was freed although the measure ignores its signal');
  t.same(s.get('a'), { bytes: 100, inodes: 1 }, 'previous complete value kept');

  calls[1]?.resolve({ bytes: 999, inodes: 9 });
  await clock.advance(10);
  t.same(s.get('a'), { bytes: 100, inodes: 1 }, 'late result discarded');
  t.same(
    reports.map((r) => `${r.key}:${r.result}`),
    ['a:ok', 'a:timeout', 'b:ok'],
    'no report for the late result',
  );
  // A timeout backs off like an error: next attempt 2 × interval after the deadline.
  const deadlineAt = calls[1]?.at === undefined ? NaN : calls[1].at + 1000;
  await clock.advance(deadlineAt + 20_000 - 1 - clock.t);
  t.equal(calls.length, 2);
  await clock.advance(1);
  t.equal(calls.length, 3, 'retried after 2 × interval');
  calls[2]?.resolve({ bytes: 1, inodes: 1 });
  await s.close();
});

t.test('backoff doubles up to 20× for a failing key and resets after a success', async (t) => {
  const clock = new FakeClock();
  const starts: number[] = [];
  let fail = true;
  const { s, reports } = scheduler(clock, { concurrency: 1, intervalMs: 1000 });
  s.sync(
    new Map<string, Measure>([
      [
        'a',
        async () => {
          starts.push(clock.t);
          if (fail) throw new Error('EACCES');
          return { bytes: 1, inodes: 1 };
        },
      ],
    ]),
  );
  s.start();
  const gaps = (): number[] => starts.slice(1).map((at, i) => (at - (starts[i] ?? 0)) / 1000);
  await clock.advance(0);
  await clock.advance(2000 + 4000 + 8000 + 16_000 + 20_000 + 20_000);
  t.same(gaps(), [2, 4, 8, 16, 20, 20], 'interval × 2^n, capped at 20×');
  t.equal(reports.at(-1)?.result, 'error');
  t.equal((reports.at(-1)?.error as Error).message, 'EACCES');
  fail = false;
  starts.length = 0;
  await clock.advance(20_000);
  t.equal(starts.length, 1, 'one more attempt, which succeeds');
  await clock.advance(1000);
  fail = true;
  await clock.advance(1000 + 2000);
  starts.unshift(clock.t - 4000); // the success's start time anchors the gaps
  t.same(gaps().slice(1), [1, 1, 2], 'a success resets the wait to 1×, and failures start over at 2×');
  await s.close();
});

t.test('a walk denied permission publishes nothing: absent before any value, the previous one after; an error; backoff', async (t) => {
  const clock = new FakeClock();
  const starts: number[] = [];
  let denied = true;
  const { s, reports } = scheduler(clock, { concurrency: 1, intervalMs: 1000 });
  s.sync(
    new Map<string, Measure>([
      [
        'a',
        async () => {
          starts.push(clock.t);
          // what planUsage's measure does with a walk whose `denied` > 0
          if (denied) throw new DiskPermissionError('/var/lib/docker/overlay2/x/diff', 3, '/var/lib/docker/overlay2/x/diff/home/app/data');
          return { bytes: 21_016_576, inodes: 13, files: 9 };
        },
      ],
    ]),
  );
  s.start();
  await clock.advance(0);
  t.equal(s.get('a'), undefined, 'never measured: no value (absent, not the undercount)');
  t.same(
    reports.map((r) => [r.result, r.files]),
    [['error', undefined]],
    'counted as an error; no files reported for it',
  );
  t.type(reports[0]?.error, DiskPermissionError);
  t.equal(
    (reports[0]?.error as Error).message,
    'permission denied reading 3 entries under /var/lib/docker/overlay2/x/diff: podvisor needs CAP_DAC_READ_SEARCH (see deploy/README.md)',
  );
  await clock.advance(2000 + 4000 - 1);
  t.same(starts, [0, 2000], 'backs off like any error: 2×, then 4×');
  denied = false;
  await clock.advance(1);
  t.same(s.get('a'), { bytes: 21_016_576, inodes: 13 });
  denied = true;
  await clock.advance(1000);
  t.equal(reports.at(-1)?.result, 'error');
  t.same(s.get('a'), { bytes: 21_016_576, inodes: 13 }, 'the previous complete value is kept, as after a timeout or error');
  t.same(starts, [0, 2000, 6000, 7000]);
  await clock.advance(2000);
  t.equal(starts.length, 5, 'and backs off again from 2×');
  await s.close();
});

t.test('never-measured keys go first, then the oldest due', async (t) => {
  const clock = new FakeClock();
  const order: string[] = [];
  const randoms = [0.9999, 0];
  const { s } = scheduler(clock, { concurrency: 1, intervalMs: 1000, random: () => randoms.shift() ?? 0.5 });
  const m = (key: string, ms: number): Measure => {
    const inner = clock.measure(ms, { bytes: 1, inodes: 1 });
    return (signal) => {
      order.push(key);
      return inner(signal);
    };
  };
  const keys = new Map([
    ['a', m('a', 10)],
    ['b', m('b', 10)],
  ]);
  s.sync(keys);
  s.start();
  await clock.advance(20);
  // a finished at 10 with +10% jitter: due ≈1110; b at 20 with −10%: due 920.
  keys.set('blk', m('blk', 1000));
  await clock.advance(480);
  s.sync(keys);
  await clock.advance(700); // t = 1200: a and b due, blk holds the slot until 1500
  keys.set('c', m('c', 10));
  s.sync(keys);
  t.equal(s.queueLength(), 3);
  await clock.advance(400);
  t.same(order, ['a', 'b', 'blk', 'c', 'b', 'a'], 'new c first, then b (due 920) before a (due 1110)');
  await s.close();
});

t.test('sync drops departed keys: aborts their measurement and forgets them', async (t) => {
  const clock = new FakeClock();
  const calls: Deferred[] = [];
  const { s, reports } = scheduler(clock, { intervalMs: 100 });
  s.sync(
    new Map([
      ['a', manual(clock, calls)],
      ['b', manual(clock, calls)],
    ]),
  );
  s.start();
  await clock.advance(0);
  calls[1]?.resolve({ bytes: 5, inodes: 5 });
  await clock.advance(100);
  t.equal(s.inFlight(), 2, 'a still running, b refreshing');
  t.same(s.get('b'), { bytes: 5, inodes: 5 });
  s.sync(new Map());
  t.ok(calls[0]?.signal.aborted, 'in-flight measurement aborted');
  t.equal((calls[0]?.signal.reason as Error).name, 'AbortError');
  t.ok(calls[2]?.signal.aborted);
  t.equal(s.inFlight(), 0);
  t.equal(s.get('a'), undefined);
  t.equal(s.get('b'), undefined, 'result forgotten');
  calls[0]?.resolve({ bytes: 1, inodes: 1 });
  calls[2]?.reject(new Error('late'));
  await clock.advance(1000);
  t.equal(s.get('a'), undefined, 'late result discarded');
  t.same(
    reports.map((r) => r.key),
    ['b'],
    'no reports for dropped keys',
  );
  t.equal(clock.pending(), 0, 'no timer with no keys');

  s.sync(new Map([['b', manual(clock, calls)]]));
  await clock.advance(0);
  t.equal(calls.length, 4, 'a returning key is new again');
  t.equal(s.get('b'), undefined);
  const closing = s.close(); // b's manual measure ignores its signal: close waits out its deadline
  await clock.advance(5000);
  await closing;
});

t.test('jitter stays within ±10%', async (t) => {
  t.equal(nextWaitMs(1000, 0, 20, 0), 900);
  t.equal(nextWaitMs(1000, 0, 20, 0.5), 1000);
  t.ok(nextWaitMs(1000, 0, 20, 0.999999) < 1100);
  t.equal(nextWaitMs(1000, 10, 20, 0.5), 20_000);

  const clock = new FakeClock();
  const { s } = scheduler(clock, { concurrency: 1000, intervalMs: 1000, random: Math.random });
  const starts = new Map<string, number[]>();
  const keys = new Map<string, Measure>();
  for (let i = 0; i < 300; i++) {
    const key = `k${i}`;
    starts.set(key, []);
    keys.set(key, async () => {
      starts.get(key)?.push(clock.t);
      return { bytes: 0, inodes: 0 };
    });
  }
  s.sync(keys);
  s.start();
  await clock.advance(0);
  await clock.advance(1100);
  const waits = [...starts.values()].map((v) => (v[1] ?? NaN) - (v[0] ?? NaN));
  t.ok(
    waits.every((w) => w >= 900 && w < 1100),
    'every refresh between 0.9× and 1.1× interval',
  );
  t.ok(Math.min(...waits) < 950 && Math.max(...waits) > 1050, 'and actually spread');
  await s.close();
});

t.test('a measure that throws, returns garbage, or a throwing onResult does not stop the loop', async (t) => {
  const clock = new FakeClock();
  const { s, reports } = scheduler(clock, { concurrency: 1 });
  s.sync(
    new Map<string, Measure>([
      [
        'sync-throw',
        () => {
          throw new Error('boom');
        },
      ],
      ['garbage', async () => ({ bytes: Number.NaN, inodes: 1 })],
      ['ok', async () => ({ bytes: 1, inodes: 2 })],
    ]),
  );
  s.start();
  await clock.advance(0);
  t.same(
    reports.map((r) => `${r.key}:${r.result}`),
    ['sync-throw:error', 'garbage:error', 'ok:ok'],
  );
  t.equal(s.get('garbage'), undefined);
  await s.close();

  const clock2 = new FakeClock();
  const s2 = new DiskScheduler({
    concurrency: 1,
    now: clock2.now,
    timers: clock2.timers,
    onResult: () => {
      throw new Error('metrics broke');
    },
  });
  s2.sync(
    new Map<string, Measure>([
      ['a', async () => ({ bytes: 1, inodes: 1 })],
      ['b', async () => ({ bytes: 2, inodes: 2 })],
    ]),
  );
  s2.start();
  await clock2.advance(0);
  t.same(s2.get('b'), { bytes: 2, inodes: 2 });
  await s2.close();
});

t.test('options are validated', async (t) => {
  t.throws(() => new DiskScheduler({ concurrency: 0 }), ConfigError);
  t.throws(() => new DiskScheduler({ concurrency: 1.5 }), ConfigError);
  t.throws(() => new DiskScheduler({ intervalMs: -1 }), ConfigError);
  t.throws(() => new DiskScheduler({ deadlineMs: Number.NaN }), ConfigError);
  t.doesNotThrow(() => new DiskScheduler());
});

t.test('close aborts in flight, waits for it (at most its deadline), leaves no timer', async (t) => {
  const clock = new FakeClock();
  const calls: Deferred[] = [];
  const honest: { at: number; signal: AbortSignal }[] = [];
  const { s } = scheduler(clock, { deadlineMs: 3000 });
  s.sync(
    new Map([
      ['ignores', manual(clock, calls)],
      ['honours', clock.measure(10_000, { bytes: 1, inodes: 1 }, honest)],
    ]),
  );
  s.start();
  await clock.advance(1000);
  let closed = false;
  const p = s.close().then(() => {
    closed = true;
  });
  t.ok(calls[0]?.signal.aborted);
  t.ok(honest[0]?.signal.aborted);
  await clock.advance(1999);
  t.notOk(closed, 'waits for the measure that ignores its signal');
  await clock.advance(1);
  t.ok(closed, '…until its deadline');
  await p;
  t.equal(clock.pending(), 0, 'no timers left');
  t.equal(s.inFlight(), 0);
  s.start();
  s.sync(new Map([['x', manual(clock, calls)]]));
  await clock.advance(10_000);
  t.equal(calls.length, 1, 'nothing runs after close');
  t.equal(clock.pending(), 0);
});

t.test('with real timers the process exits after close(), and without it too (unref)', async (t) => {
  const src = fileURLToPath(new URL('../../src/disk/scheduler.ts', import.meta.url));
  const pollTs = fileURLToPath(new URL('../support/poll.ts', import.meta.url));
  const script = `
    import { DiskScheduler } from ${JSON.stringify(src)};
    import { until } from ${JSON.stringify(pollTs)};
    const measure = (signal) => new Promise((resolve, reject) => {
      const h = setTimeout(() => resolve({ bytes: 1, inodes: 1 }), 30);
      signal.addEventListener('abort', () => { clearTimeout(h); reject(signal.reason); });
    });
    const keys = new Map(Array.from({ length: 10 }, (_, i) => ['k' + i, measure]));
    const closing = new DiskScheduler({ concurrency: 2, intervalMs: 20 });
    closing.sync(keys);
    closing.start();
    const count = () => [...keys.keys()].filter((k) => closing.get(k) !== undefined).length;
    await until('4 measurements by real timers', () => count() >= 4, { timeoutMs: 60_000 }).catch(() => undefined);
    const measured = count();
    await closing.close();
    const unclosed = new DiskScheduler({ concurrency: 2, intervalMs: 20 });
    unclosed.sync(new Map([['a', async () => ({ bytes: 1, inodes: 1 })]]));
    unclosed.start();
    await until('a measurement of a', () => unclosed.get('a') !== undefined, { timeoutMs: 60_000 }).catch(() => undefined);
    console.log(JSON.stringify({ measured, a: unclosed.get('a'), timers: process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length }));
  `;
  // The generous spawn timeout only bounds a process that would never exit; whether it exited on its own is r.error.
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.error, undefined, 'the process exited on its own (not killed by the spawn timeout)');
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { measured: number; a: unknown; timers: number };
  t.ok(out.measured >= 4, `real timers drove measurements (${out.measured})`);
  t.same(out.a, { bytes: 1, inodes: 1 });
  t.equal(out.timers, 0, 'no ref()’d timer: the loop’s own timer is unref()’d, the measures’ were cleared by close');
});

t.test('re-measurements stay within the CPU budget; first measurements are never held back', async (t) => {
  const clock = new FakeClock();
  // Each measurement takes 1 s; 1% of a core allows 1 s of measuring per 100 s, with 2 s banked at most.
  const { s, reports } = scheduler(clock, { intervalMs: 1000, deadlineMs: 10_000, cpuBudget: 0.01, budgetBurstMs: 2000 });
  const keys = ['a', 'b', 'c', 'd'];
  s.sync(new Map(keys.map((k) => [k, clock.measure(1000, { bytes: 1, inodes: 1 })])));
  s.start();
  await clock.advance(2_500);
  t.same(reports.map((r) => r.key).sort(), keys, 'all four first measurements ran at once (2 at a time), budget or not');
  t.equal(s.get('d')?.bytes, 1);

  // 4 s spent, 2 s banked: in debt by 2 s, repaid at 10 ms/s, so nothing may start for ~200 s.
  await clock.advance(150_000);
  t.equal(reports.length, 4, 'no re-measurement while the budget is in debt, though every key is due');
  t.ok(s.queueLength() > 0, 'the due keys wait in the queue');

  await clock.advance(10_000_000);
  const measuringMs = reports.reduce((sum, r) => sum + r.durationMs, 0) - 4000;
  const spanMs = clock.t - 4000;
  t.ok(measuringMs <= spanMs * 0.01 + 2000 + 2 * 1000, `re-measuring ${measuringMs} ms over ${spanMs} ms stays within 1% (+ burst and runs in flight)`);
  t.ok(measuringMs >= spanMs * 0.01 - 2000, `and the budget is used: ${measuringMs} ms`);

  // A new key is measured at once, even in debt.
  const before = reports.length;
  s.sync(new Map([...keys, 'e'].map((k) => [k, clock.measure(1000, { bytes: 2, inodes: 2 })])));
  await clock.advance(1_000);
  t.ok(
    reports.slice(before).some((r) => r.key === 'e'),
    'the new key e got its first measurement right away',
  );
  await s.close();
});

t.test('the CPU budget must be a share of one core', async (t) => {
  t.throws(() => new DiskScheduler({ cpuBudget: 0 }), ConfigError);
  t.throws(() => new DiskScheduler({ cpuBudget: 1.5 }), ConfigError);
});
