import t from 'tap';
import { gunzipSync } from 'node:zlib';
import { buildApp } from '../../src/http/app.js';
import { ScrapeService } from '../../src/scrape/service.js';
import { encodeFamilies, FamilyWriter } from '../../src/metrics/exposition.js';
import type { GatherEngine, GatherResult } from '../../src/scrape/engine.js';
import { silentLogger } from '../../src/log.js';
import { until } from '../support/poll.js';

/**
 * A gather engine whose gathers take `delayMs` (asynchronously), or last while the test holds them, and are counted:
 * `gathers` started, `finished` done. Holding orders events without a clock, which a loaded machine cannot reorder.
 */
class FakeEngine implements GatherEngine {
  gathers = 0;
  finished = 0;
  delayMs: number;
  fail: string | undefined;
  #held: Promise<void> | undefined;
  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }
  /**
   * Until the returned function is called, no gather (running or new) finishes; at the latest after `boundMs`, so that
   * a scrape that (wrongly) waits for the gather fails the test's assertions (`finished` is 1 by then) instead of
   * hanging it.
   */
  hold(boundMs = 30_000): () => void {
    let resolve = (): void => {};
    this.#held = new Promise<void>((r) => (resolve = r));
    const release = (): void => {
      clearTimeout(bound);
      this.#held = undefined;
      resolve();
    };
    const bound = setTimeout(release, boundMs);
    return release;
  }
  async gather(): Promise<GatherResult> {
    const n = ++this.gathers;
    await new Promise((r) => setTimeout(r, this.delayMs));
    while (this.#held !== undefined) await this.#held;
    this.finished++;
    if (this.fail !== undefined) throw new Error(this.fail);
    const w = new FamilyWriter('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed in seconds.', 'counter');
    w.sample('id="/",name="",image="",container="",pod="",namespace="",cpu="total"', n);
    return { timestampMs: Date.now(), durationMs: this.delayMs, containers: 1, body: encodeFamilies([w.finish()]), resource: encodeFamilies([]), runtimes: [] };
  }
  async close(): Promise<void> {}
}

function setup(delayMs: number, minGatherIntervalMs = 0) {
  const engine = new FakeEngine(delayMs);
  const service = new ScrapeService(engine, silentLogger, { minGatherIntervalMs, maxResultAgeMs: 0, gatherAhead: false });
  const app = buildApp({ service, log: silentLogger, defaultScrapeTimeoutMs: 10_000, scrapeTimeoutOffsetMs: 500 });
  return { engine, service, app };
}

/** Counts the scrapes that have reached the service (and so joined or started a gather) from now on. */
function countExpositions(service: ScrapeService): () => number {
  let n = 0;
  const exposition = service.exposition.bind(service);
  service.exposition = (...args) => {
    n++;
    return exposition(...args);
  };
  return () => n;
}

function metricValue(body: string, name: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

t.test('20 concurrent scrapes share one gather and one body', async (t) => {
  const { engine, service, app } = setup(0);
  t.teardown(() => app.close());
  const release = engine.hold();
  const scrapes = countExpositions(service);
  const pending = Promise.all(Array.from({ length: 20 }, (_, i) => app.inject({ url: i % 2 === 0 ? '/metrics' : '/metrics/cadvisor' })));
  await until('all 20 scrapes to reach the service while the gather is held', () => scrapes() === 20, { describe: () => `${scrapes()} scrapes` });
  release();
  const replies = await pending;
  t.equal(engine.gathers, 1);
  for (const r of replies) {
    t.equal(r.statusCode, 200);
    t.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  }
  t.equal(new Set(replies.map((r) => r.body)).size, 1, 'every scrape got the same bytes');
  const next = await app.inject({ url: '/metrics' });
  t.equal(engine.gathers, 2, 'the next scrape after completion gathers anew');
  t.equal(metricValue(next.body, 'podvisor_scrapes_coalesced_total'), 19);
  t.equal(metricValue(next.body, 'podvisor_gathers_total{result="success"}'), 2, 'self-metrics as of assembly time, this gather included');
  t.match(next.body, /container_cpu_usage_seconds_total\{id="\/",name="",image="",container="",pod="",namespace="",cpu="total"\} 2\n/);
  t.match(next.body, /\nprocess_resident_memory_bytes \d+/, 'Node.js process metrics are served too');
  t.match(next.body, /\npodvisor_build_info\{version="[^"]+",nodejs_version="v\d+/);
});

t.test('--min-gather-interval reuses a young result', async (t) => {
  const { engine, app } = setup(10, 60_000);
  t.teardown(() => app.close());
  await app.inject({ url: '/metrics' });
  await app.inject({ url: '/metrics' });
  t.equal(engine.gathers, 1);
});

t.test('/healthz never waits for a gather; /readyz turns ready after the first one', async (t) => {
  const { engine, app } = setup(0);
  t.teardown(() => app.close());
  const release = engine.hold();
  const ready0 = await app.inject({ url: '/readyz' });
  t.equal(ready0.statusCode, 503);
  t.match(ready0.json(), { ready: false });
  let scrapeDone = false;
  const scrape = app.inject({ url: '/metrics' }).then((r) => {
    scrapeDone = true;
    return r;
  });
  await until('a gather in flight', () => engine.gathers === 1);
  const h = await app.inject({ url: '/healthz' });
  t.equal(h.statusCode, 200);
  t.equal(h.body, 'ok\n');
  t.equal(scrapeDone, false, '/healthz answered while the gather was still running');
  t.equal(engine.finished, 0, 'and the gather had not finished');
  release();
  t.equal((await scrape).statusCode, 200);
  const ready1 = await app.inject({ url: '/readyz' });
  t.equal(ready1.statusCode, 200);
  t.match(ready1.json(), { ready: true, lastContainers: 1 });
});

t.test('X-Prometheus-Scrape-Timeout-Seconds is honoured with a clear 503', async (t) => {
  const { engine, service, app } = setup(0);
  t.teardown(() => app.close());
  const release = engine.hold();
  const scrapes = countExpositions(service);
  const r = await app.inject({ url: '/metrics', headers: { 'x-prometheus-scrape-timeout-seconds': '1' } });
  t.equal(r.statusCode, 503);
  t.match(r.body, /did not finish within the scrape deadline \(0\.5s of X-Prometheus-Scrape-Timeout-Seconds=1\)/);
  t.equal(engine.finished, 0, 'answered while the gather was still running: its deadline ended the scrape, not the gather');
  // The gather went on; a scrape with a longer deadline joins it and sees the deadline counted.
  const late = app.inject({ url: '/metrics', headers: { 'x-prometheus-scrape-timeout-seconds': '10' } });
  await until('the second scrape to join the gather in flight', () => scrapes() === 2);
  release();
  const ok = await late;
  t.equal(ok.statusCode, 200);
  t.equal(engine.gathers, 1, 'the late gather was not thrown away');
  t.equal(metricValue(ok.body, 'podvisor_scrape_deadline_exceeded_total'), 1);
});

t.test('with --max-result-age, a late gather is answered from the newest result, and says how old it is', async (t) => {
  const engine = new FakeEngine(0);
  const service = new ScrapeService(engine, silentLogger, { minGatherIntervalMs: 0, maxResultAgeMs: 60_000, gatherAhead: false });
  const app = buildApp({ service, log: silentLogger, defaultScrapeTimeoutMs: 10_000, scrapeTimeoutOffsetMs: 500 });
  t.teardown(() => app.close());
  const first = await app.inject({ url: '/metrics' });
  t.equal(first.statusCode, 200);
  t.match(first.headers['x-podvisor-result-age'], /^\d+\.\d{3}$/, 'the age of the data, in seconds');
  const release = engine.hold();
  t.teardown(release);
  const r = await app.inject({ url: '/metrics', headers: { 'x-prometheus-scrape-timeout-seconds': '1' } });
  t.equal(r.statusCode, 200, 'not a 503: the first result is young enough');
  t.equal(engine.finished, 1, 'answered while the second gather was still running');
  t.match(r.body, /container_cpu_usage_seconds_total\{[^}]*\} 1\n/, 'from the first gather');
  // The first result was there before this scrape was sent; the scrape waited for the second gather until the end of
  // its 0.5 s budget less the share kept for building the body (at most half the budget: BODY_RESERVE) before falling
  // back on it. Timers fire late, never early: the answer is at least 0.25 s old, however loaded the machine.
  const age = Number(r.headers['x-podvisor-result-age']);
  t.ok(age >= 0.249, `at least as old as the scrape waited: ${age} s >= 0.25 s`);
  release();
  const after = await app.inject({ url: '/metrics' });
  t.equal(metricValue(after.body, 'podvisor_scrapes_total{result="stale"}'), 1, 'counted as stale');
  t.equal(metricValue(after.body, 'podvisor_scrape_deadline_exceeded_total'), 0, 'and not as a 503');
});

t.test('gzip and OpenMetrics', async (t) => {
  const { app } = setup(1);
  t.teardown(() => app.close());
  const gz = await app.inject({ url: '/metrics', headers: { 'accept-encoding': 'gzip' } });
  t.equal(gz.headers['content-encoding'], 'gzip');
  const text = gunzipSync(gz.rawPayload).toString('utf8');
  t.match(text, /^# HELP container_cpu_usage_seconds_total /);
  const om = await app.inject({
    url: '/metrics',
    headers: { accept: 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2' },
  });
  t.equal(om.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  t.match(om.body, /# TYPE container_cpu_usage_seconds counter\ncontainer_cpu_usage_seconds_total\{/);
  t.ok(om.body.endsWith('# EOF\n'));
  t.equal(om.body.match(/# EOF/g)?.length, 1, 'one EOF, at the end');
  t.notMatch(text, /# EOF/);
});

t.test('a failed gather is a clear 500 and visible in /readyz', async (t) => {
  const { engine, app } = setup(1);
  t.teardown(() => app.close());
  engine.fail = 'cgroup hierarchy vanished';
  const r = await app.inject({ url: '/metrics' });
  t.equal(r.statusCode, 500);
  t.equal(r.body, 'podvisor: cgroup hierarchy vanished\n');
  const ready = await app.inject({ url: '/readyz' });
  t.equal(ready.statusCode, 503);
  t.match(ready.json(), { lastError: 'cgroup hierarchy vanished' });
  engine.fail = undefined;
  const ok = await app.inject({ url: '/metrics' });
  t.equal(ok.statusCode, 200, 'the next scrape retries');
  t.equal(metricValue(ok.body, 'podvisor_gathers_total{result="error"}'), 1);
});
