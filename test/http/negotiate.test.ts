import t from 'tap';
import { acceptsGzip, chooseFormat, scrapeBudget, scraperKey } from '../../src/http/negotiate.js';

t.test('chooseFormat', async (t) => {
  // Prometheus 3's default Accept header (docs/instrumenting/content_negotiation.md).
  const prom3 =
    'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1';
  t.equal(chooseFormat(prom3), 'openmetrics');
  // Prometheus 2.x with OpenMetrics
  t.equal(
    chooseFormat('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'),
    'openmetrics',
  );
  // Prometheus configured for text only, metrics-server (no Accept), curl
  t.equal(chooseFormat('text/plain;version=0.0.4;q=1,*/*;q=0.1'), 'text');
  t.equal(chooseFormat(undefined), 'text');
  t.equal(chooseFormat(''), 'text');
  t.equal(chooseFormat('*/*'), 'text');
  t.equal(chooseFormat('application/json'), 'text', 'unknown types fall back to text rather than a 406');
  t.equal(chooseFormat('application/openmetrics-text; q=0'), 'text', 'q=0 means not acceptable');
  t.equal(chooseFormat('text/plain;q=0.9, application/openmetrics-text'), 'openmetrics');
});

t.test('acceptsGzip', async (t) => {
  t.equal(acceptsGzip('gzip'), true);
  t.equal(acceptsGzip('deflate, gzip;q=1.0, *;q=0.5'), true);
  t.equal(acceptsGzip('identity'), false);
  t.equal(acceptsGzip('gzip;q=0'), false);
  t.equal(acceptsGzip(undefined), false);
});

t.test('scrapeBudget', async (t) => {
  t.same(scrapeBudget('10', 10_000, 500).ms, 9_500, 'header minus the offset');
  t.same(scrapeBudget('0.5', 10_000, 500).ms, 250, 'never less than half the timeout');
  t.same(scrapeBudget(undefined, 7_000, 500).ms, 7_000, 'default without a header');
  t.same(scrapeBudget('garbage', 7_000, 500).ms, 7_000);
  t.same(scrapeBudget('-3', 7_000, 500).ms, 7_000);
  t.match(scrapeBudget('10', 10_000, 500).text, /9\.5s of X-Prometheus-Scrape-Timeout-Seconds=10/);
});

t.test('scraperKey tells replicas and jobs apart', async (t) => {
  const a = scraperKey('10.0.0.7', 'Prometheus/2.53.0', '/metrics/cadvisor', '10');
  t.not(a, scraperKey('10.0.0.8', 'Prometheus/2.53.0', '/metrics/cadvisor', '10'), 'another replica');
  t.not(a, scraperKey('10.0.0.7', 'Prometheus/2.53.0', '/metrics', '10'), 'another path (job)');
  t.not(a, scraperKey('10.0.0.7', 'Prometheus/2.53.0', '/metrics/cadvisor', '5'), 'another timeout (job)');
  t.not(a, scraperKey('10.0.0.7', 'curl/8.0', '/metrics/cadvisor', '10'), 'another client');
  t.equal(a, scraperKey('10.0.0.7', 'Prometheus/2.53.0', '/metrics/cadvisor', '10'), 'the same scraper');
});
