/**
 * The scrape service on a fake clock: a scrape whose gather misses its deadline is answered from the newest result
 * while that is young enough; a scraper that keeps a schedule is answered from a gather started just ahead of it; and
 * gathers never outnumber scrapes.
 */
import t from 'tap';
import { gunzipSync } from 'node:zlib';
import { ScrapeService, type Exposition, type ResourceRequest, type ScrapeRequest } from '../../src/scrape/service.js';
import { DeadlineError } from '../../src/errors.js';
import { encodeFamilies, FamilyWriter, type RenderedFamily } from '../../src/metrics/exposition.js';
import type { GatherEngine, GatherResult } from '../../src/scrape/engine.js';
import { silentLogger } from '../../src/log.js';
import { ProcessMetrics } from '../../src/metrics/process.js';
import { FakeClock } from '../support/fake-clock.js';

/** Gathers that take `durationMs` of the fake clock; each body carries its gather's number. */
class ClockedEngine implements GatherEngine {
  gathers = 0;
  readonly #clock: FakeClock;
  durationMs: number;
  /** How long the end of a gather holds the event loop (its synchronous encoding on a busy node). */
  blockMs = 0;
  /** When set, gathers fail with this message. */
  fail: string | undefined;
  constructor(clock: FakeClock, durationMs: number) {
    this.#clock = clock;
    this.durationMs = durationMs;
  }
  gather(): Promise<GatherResult> {
    const n = ++this.gathers;
    return new Promise((resolve, reject) => {
      this.#clock.setTimeout(() => {
        if (this.fail !== undefined) {
          reject(new Error(this.fail));
          return;
        }
        const w = new FamilyWriter('podvisor_test_gather', 'Which gather answered.', 'gauge');
        w.sample('', n);
        const r = new FamilyWriter('resource_test_gather', '[STABLE] Which gather answered /metrics/resource.', 'gauge');
        r.sample('', n);
        this.#clock.block(this.blockMs);
        resolve({
          timestampMs: 0,
          durationMs: this.durationMs,
          containers: 1,
          body: encodeFamilies([w.finish()]),
          resource: encodeFamilies([r.finish()]),
          runtimes: [],
        });
      }, this.durationMs);
    });
  }
  async close(): Promise<void> {}
}

/** Process metrics that take `ms` of the fake clock: building a body is not instant. */
class SlowProcessMetrics extends ProcessMetrics {
  readonly #clock: FakeClock;
  readonly #ms: number;
  constructor(clock: FakeClock, ms: number) {
    super();
    this.#clock = clock;
    this.#ms = ms;
  }
  override families(): Promise<RenderedFamily[]> {
    return new Promise((resolve) => this.#clock.setTimeout(() => resolve([]), this.#ms));
  }
}

function setup(durationMs: number, opts: { maxResultAgeMs?: number; gatherAhead?: boolean; bodyMs?: number } = {}) {
  const clock = new FakeClock(1_000_000);
  const engine = new ClockedEngine(clock, durationMs);
  const service = new ScrapeService(engine, silentLogger, {
    minGatherIntervalMs: 0,
    maxResultAgeMs: opts.maxResultAgeMs ?? 90_000,
    gatherAhead: opts.gatherAhead ?? true,
    clock,
    ...(opts.bodyMs === undefined ? {} : { processMetrics: new SlowProcessMetrics(clock, opts.bodyMs) }),
  });
  return { clock, engine, service };
}

function request(budgetMs: number, scraper?: string): ScrapeRequest {
  return { format: 'text', gzip: false, budgetMs, budgetText: `${budgetMs / 1000}s`, ...(scraper === undefined ? {} : { scraper }) };
}

/** Which gather a body came from, and a self-metric's value in it. */
function gatherOf(body: Buffer): number {
  return Number(/^podvisor_test_gather (\d+)$/m.exec(body.toString())?.[1]);
}
function sample(body: Buffer, line: string): number | undefined {
  const m = body
    .toString()
    .split('\n')
    .find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.split(' ').pop());
}

type Outcome = { ok: true; gather: number; age: number; body: Buffer } | { ok: false; error: unknown };

/** One scrape: starts it, moves the clock on 10 ms at a time until it is answered (at most `waitMs`), reports how it ended. */
function scrape(clock: FakeClock, service: ScrapeService, req: ScrapeRequest, waitMs: number): Promise<Outcome> {
  return answered(clock, () => service.exposition(req), gatherOf, waitMs);
}

/** Which gather a /metrics/resource body came from. */
function resourceGatherOf(body: Buffer): number {
  return Number(/^resource_test_gather (\d+)$/m.exec(body.toString())?.[1]);
}

function resourceRequest(budgetMs: number, scraper?: string): ResourceRequest {
  return { gzip: false, budgetMs, budgetText: `${budgetMs / 1000}s`, ...(scraper === undefined ? {} : { scraper }) };
}

/** One scrape of /metrics/resource, as scrape(). */
function scrapeResource(clock: FakeClock, service: ScrapeService, req: ResourceRequest, waitMs: number): Promise<Outcome> {
  return answered(clock, () => service.resourceExposition(req), resourceGatherOf, waitMs);
}

async function answered(clock: FakeClock, ask: () => Promise<Exposition>, which: (b: Buffer) => number, waitMs: number): Promise<Outcome> {
  let outcome: Outcome | undefined;
  const p = ask().then(
    (e) => (outcome = { ok: true, gather: which(e.body), age: e.ageSeconds, body: e.body }),
    (error: unknown) => (outcome = { ok: false, error }),
  );
  await clock.advance(0);
  for (let waited = 0; outcome === undefined && waited < waitMs; waited += 10) await clock.advance(10);
  await p;
  if (outcome === undefined) throw new Error('scrape did not end');
  return outcome;
}

for (const ahead of [false, true]) {
  t.test(
    `a deadline shorter than the gather: every scrape after the first answers, from the newest result (gather ahead ${ahead ? 'on' : 'off'})`,
    async (t) => {
      // Prometheus at scrape_interval 1s: a 0.5 s budget; the gather takes 0.8 s.
      const { clock, engine, service } = setup(800, { gatherAhead: ahead });
      t.teardown(() => service.close());
      const start = clock.now();
      const outcomes: Outcome[] = [];
      for (let i = 0; i < 12; i++) {
        await clock.advanceTo(start + i * 1000);
        outcomes.push(await scrape(clock, service, request(500, 'prometheus'), 500));
      }
      const first = outcomes[0];
      t.ok(first !== undefined && !first.ok && first.error instanceof DeadlineError, 'the first scrape has nothing to fall back on: 503');
      const rest = outcomes.slice(1);
      t.same(
        rest.map((o) => o.ok),
        rest.map(() => true),
        'every later scrape answered 200',
      );
      const gathers = rest.map((o) => (o.ok ? o.gather : 0));
      t.ok(
        gathers.every((g, i) => g >= 1 && g >= (gathers[i - 1] ?? 0)),
        `each from a real gather, never an older one than the scrape before: ${gathers.join(',')}`,
      );
      t.ok(engine.gathers <= outcomes.length, `gathers (${engine.gathers}) do not exceed scrapes (${outcomes.length})`);
      const last = rest[rest.length - 1];
      t.ok(
        last?.ok === true &&
          (sample(last.body, 'podvisor_scrapes_total{result="stale"}') ?? 0) + (sample(last.body, 'podvisor_scrapes_total{result="ahead"}') ?? 0) >= 1,
        'counted',
      );
      t.ok(last?.ok === true && sample(last.body, 'podvisor_scrapes_total{result="deadline_exceeded"}') === 1, 'the one 503 counted');
    },
  );
}

t.test('a late gather leaves time to build the body of an older result in a format not built yet', async (t) => {
  // Found by a real Prometheus on a loaded node: the gather was awaited to the end of the budget, so the older result
  // had no time left to be encoded in the scraper's format, and the scrape got a 503 though a result was at hand.
  const { clock, engine, service } = setup(300, { gatherAhead: false, bodyMs: 40 });
  t.teardown(() => service.close());
  const first = await scrape(clock, service, request(1_000), 1_000);
  t.ok(first.ok && first.gather === 1, 'the first scrape: a fresh text body');
  engine.durationMs = 5_000;
  await clock.advance(2_000);
  const budgetMs = 500;
  const start = clock.now();
  const late = await scrape(clock, service, { ...request(budgetMs), format: 'openmetrics' }, 1_000);
  t.ok(late.ok && late.gather === 1, `answered from the older result, its OpenMetrics body built in time: ${late.ok ? 'ok' : String(late.error)}`);
  t.ok(clock.now() - start <= budgetMs, `within the ${budgetMs} ms budget (${clock.now() - start} ms)`);
  // That build (40 ms) is remembered: the next late scrape in that format waits for the gather until 80 ms before its
  // deadline, and the body is at hand.
  engine.durationMs = 10_000;
  const again = await scrape(clock, service, { ...request(budgetMs), format: 'openmetrics' }, 1_000);
  t.ok(again.ok && again.gather === 1, 'the next late scrape too');
  // With no older result, the gather is waited for to the end of the budget, not to the reserve.
  const fresh = setup(480, { gatherAhead: false, bodyMs: 40 });
  t.teardown(() => fresh.service.close());
  const whole = await scrape(fresh.clock, fresh.service, request(budgetMs), 1_000);
  t.ok(!whole.ok && whole.error instanceof DeadlineError, 'a 480 ms gather plus a 40 ms body in 500 ms: no, a 503 (nothing older)');
  const fits = setup(400, { gatherAhead: false, bodyMs: 40 });
  t.teardown(() => fits.service.close());
  const within = await scrape(fits.clock, fits.service, request(budgetMs), 1_000);
  t.ok(within.ok && within.gather === 1, 'a 400 ms gather, past the 250 ms reserve, is still waited for and answers');
});

t.test('a gather that ends past its share of the budget: the older built body answers, not a 503', async (t) => {
  // Found by a real Prometheus on a loaded node: the gather's end held the event loop past the timer that would have
  // given up on it, so it won the race with too little time left to encode its body.
  const { clock, engine, service } = setup(300, { gatherAhead: false, bodyMs: 40 });
  t.teardown(() => service.close());
  const first = await scrape(clock, service, request(1_000), 1_000);
  t.ok(first.ok && first.gather === 1, 'the first scrape: a fresh body, built in 40 ms (an 80 ms reserve from now on)');
  engine.durationMs = 400;
  engine.blockMs = 90;
  await clock.advance(2_000);
  const start = clock.now();
  const late = await scrape(clock, service, request(500), 1_000);
  t.ok(
    late.ok && late.gather === 1,
    `the gather ended 10 ms before the deadline: answered from the first result (${late.ok ? late.gather : String(late.error)})`,
  );
  t.ok(clock.now() - start <= 500, `within the 500 ms budget (${clock.now() - start} ms)`);
  engine.blockMs = 0;
  await clock.advance(1_000);
  const next = await scrape(clock, service, request(500), 1_000);
  t.ok(next.ok && next.gather >= 2, `the late gather's body was built for the next scrape (gather ${next.ok ? next.gather : '-'})`);
});

t.test('a result older than --max-result-age does not answer: 503', async (t) => {
  const { clock, service } = setup(800, { maxResultAgeMs: 1_000, gatherAhead: false });
  t.teardown(() => service.close());
  const first = await scrape(clock, service, request(900), 900);
  t.equal(first.ok, true, 'the first gather fits its deadline');
  await clock.advance(5_000);
  const late = await scrape(clock, service, request(500), 500);
  t.ok(!late.ok && late.error instanceof DeadlineError, 'the newest result is 5 s old, the limit 1 s');
});

t.test('a scraper on a schedule is answered from a gather started just ahead of it', async (t) => {
  const { clock, engine, service } = setup(300);
  t.teardown(() => service.close());
  const start = clock.now();
  const key = '10.0.0.7|Prometheus/2.53.0|/metrics|10';
  // Learning: three scrapes at a 5 s interval, each waits for its own gather.
  for (let i = 0; i < 3; i++) {
    await clock.advanceTo(start + i * 5_000);
    const o = await scrape(clock, service, request(9_500, key), 9_500);
    t.equal(o.ok && o.gather, i + 1, `learning scrape ${i + 1} gathered`);
  }
  t.equal(engine.gathers, 3);
  // Just before the next scrape a gather starts by itself...
  await clock.advanceTo(start + 15_000 - 1);
  t.equal(engine.gathers, 4, 'a gather was started ahead of the expected scrape');
  await clock.advanceTo(start + 15_000);
  const e = await service.exposition(request(9_500, key));
  t.equal(gatherOf(e.body), 4, 'answered from it, without moving the clock (no wait for a gather)');
  t.ok(e.ageSeconds > 0.3 && e.ageSeconds < 1, `data ${e.ageSeconds}s old: the gather time plus a margin`);
  // Another scraper without a schedule gathers as before.
  const other = await scrape(clock, service, request(9_500, 'curl'), 9_500);
  t.equal(other.ok && other.gather, 5, 'an unscheduled scrape gathers');
  // Three more on schedule: each answered ahead, one gather each.
  for (let i = 4; i < 7; i++) {
    await clock.advanceTo(start + i * 5_000);
    const o = await scrape(clock, service, request(9_500, key), 0);
    t.ok(o.ok && o.age < 1, `scheduled scrape ${i} answered at once with young data`);
  }
  t.equal(engine.gathers, 8, 'one gather per scrape');
  const final = await scrape(clock, service, request(9_500, 'curl'), 9_500);
  t.ok(final.ok && (sample(final.body, 'podvisor_scrapes_total{result="ahead"}') ?? 0) === 4, 'four scrapes answered ahead');
  t.ok(final.ok && sample(final.body, 'podvisor_gathers_ahead_total') === 4);
  t.ok(final.ok && (sample(final.body, 'podvisor_scrape_result_age_seconds_bucket{le="1"}') ?? 0) >= 4);
  t.ok(final.ok && sample(final.body, 'podvisor_scrape_schedules{state="predicted"}') === 1);
});

t.test('a scraper that stops: one gather ahead at most is wasted, then predictions stop', async (t) => {
  const { clock, engine, service } = setup(300);
  t.teardown(() => service.close());
  const start = clock.now();
  for (let i = 0; i < 3; i++) {
    await clock.advanceTo(start + i * 5_000);
    await scrape(clock, service, request(9_500, 'p'), 9_500);
  }
  await clock.advanceTo(start + 600_000);
  t.equal(engine.gathers, 4, 'the gather for the scrape that never came, and none after');
  const o = await scrape(clock, service, request(9_500, 'curl'), 9_500);
  t.ok(o.ok && sample(o.body, 'podvisor_gather_ahead_misses_total') === 1, 'the miss is counted');
  t.ok(o.ok && sample(o.body, 'podvisor_scrape_schedules{state="predicted"}') === 0);
});

t.test('two scrapers expected close together share one gather', async (t) => {
  const { clock, engine, service } = setup(300);
  t.teardown(() => service.close());
  const start = clock.now();
  for (let i = 0; i < 3; i++) {
    await clock.advanceTo(start + i * 10_000);
    await scrape(clock, service, request(9_500, 'a'), 9_500);
    await clock.advanceTo(start + i * 10_000 + 100);
    await scrape(clock, service, request(9_500, 'b'), 9_500);
  }
  const before = engine.gathers;
  await clock.advanceTo(start + 30_000);
  const a = await scrape(clock, service, request(9_500, 'a'), 0);
  await clock.advanceTo(start + 30_100);
  const b = await scrape(clock, service, request(9_500, 'b'), 0);
  t.equal(engine.gathers - before, 1, 'one gather for both');
  t.ok(a.ok && b.ok && a.gather === b.gather, 'both answered from it');
});

t.test('--gather-ahead=false: no gather without a scrape', async (t) => {
  const { clock, engine, service } = setup(300, { gatherAhead: false });
  t.teardown(() => service.close());
  const start = clock.now();
  for (let i = 0; i < 5; i++) {
    await clock.advanceTo(start + i * 5_000);
    await scrape(clock, service, request(9_500, 'p'), 9_500);
  }
  await clock.advanceTo(start + 60_000);
  t.equal(engine.gathers, 5, 'one gather per scrape, none ahead');
  t.equal(clock.pending, 0, 'no timer left behind');
});

t.test('/metrics/resource: the same single-flight gather as /metrics, its own families only, text 0.0.4', async (t) => {
  const { clock, engine, service } = setup(300, { gatherAhead: false });
  t.teardown(() => service.close());
  const [metrics, resource, gzipped] = await Promise.all([
    scrape(clock, service, request(1_000), 1_000),
    scrapeResource(clock, service, resourceRequest(1_000), 1_000),
    service.resourceExposition({ ...resourceRequest(1_000), gzip: true }),
  ]);
  t.equal(engine.gathers, 1, 'one gather for the three scrapes');
  t.ok(metrics.ok && metrics.gather === 1 && resource.ok && resource.gather === 1, 'both bodies from it');
  t.ok(metrics.ok && metrics.body.toString().includes('podvisor_scrapes_total'), "/metrics carries podvisor's self-metrics");
  t.equal(
    resource.ok ? resource.body.toString() : '',
    '# HELP resource_test_gather [STABLE] Which gather answered /metrics/resource.\n# TYPE resource_test_gather gauge\nresource_test_gather 1\n',
    '/metrics/resource: its families and nothing else (no podvisor_*, no process metrics)',
  );
  t.equal(gzipped.contentType, 'text/plain; version=0.0.4; charset=utf-8', 'text 0.0.4, as the kubelet serves it');
  t.equal(gzipped.gzipped, true);
  t.equal(gunzipSync(gzipped.body).toString(), resource.ok ? resource.body.toString() : 'no body', 'gzipped when asked: the same body');
});

t.test('/metrics/resource: a late gather is answered from the newest result while it is young, else a 503', async (t) => {
  const { clock, engine, service } = setup(300, { gatherAhead: false, maxResultAgeMs: 10_000 });
  t.teardown(() => service.close());
  const slow = setup(800, { gatherAhead: false });
  t.teardown(() => slow.service.close());
  const none = await scrapeResource(slow.clock, slow.service, resourceRequest(500), 1_000);
  t.ok(!none.ok && none.error instanceof DeadlineError, 'nothing older to answer with: a DeadlineError');
  const first = await scrapeResource(clock, service, resourceRequest(1_000), 1_000);
  t.ok(first.ok && first.gather === 1, 'the first scrape waits for its gather');
  engine.durationMs = 5_000;
  await clock.advance(2_000);
  const late = await scrapeResource(clock, service, resourceRequest(500), 1_000);
  t.ok(late.ok && late.gather === 1 && late.age >= 2, `answered from the first result, ${late.ok ? late.age : '-'}s old`);
  await clock.advance(20_000);
  const next = await scrapeResource(clock, service, resourceRequest(5_500), 6_000);
  t.ok(next.ok && next.gather === 3, `once the result is too old, a fresh gather answers (gather ${next.ok ? next.gather : '-'})`);
  const m = await scrape(clock, service, request(5_500), 6_000);
  t.ok(m.ok && (sample(m.body, 'podvisor_scrapes_total{result="stale"}') ?? 0) === 1, 'the stale answer is counted with the others');
});

t.test('/metrics/resource: a failed gather is an error, not a body', async (t) => {
  const { clock, engine, service } = setup(300, { gatherAhead: false });
  t.teardown(() => service.close());
  engine.fail = 'cgroup root unreadable';
  const failed = await scrapeResource(clock, service, resourceRequest(1_000), 1_000);
  t.ok(!failed.ok && failed.error instanceof Error && /cgroup root unreadable/.test(failed.error.message), 'the gather error itself');
});

t.test('/metrics/resource: a scraper on a schedule is answered from a gather started ahead of it', async (t) => {
  const { clock, engine, service } = setup(300);
  t.teardown(() => service.close());
  const start = clock.now();
  const key = '10.0.0.9|metrics-server/v0.9.0|/metrics/resource|';
  for (let i = 0; i < 3; i++) {
    await clock.advanceTo(start + i * 15_000);
    const o = await scrapeResource(clock, service, resourceRequest(9_500, key), 9_500);
    t.equal(o.ok && o.gather, i + 1, `learning scrape ${i + 1} gathered`);
  }
  await clock.advanceTo(start + 45_000 - 1);
  t.equal(engine.gathers, 4, 'a gather was started ahead of the expected scrape');
  await clock.advanceTo(start + 45_000);
  const e = await service.resourceExposition(resourceRequest(9_500, key));
  t.equal(resourceGatherOf(e.body), 4, 'answered from it at once, with the resource body');
});
