/**
 * A golden /metrics from the fixture hosts (test/fixtures/hosts/*), and the whole HTTP body linted by
 * `promtool check metrics`. Regenerate the golden files after an intended change with
 * `PODVISOR_UPDATE_GOLDEN=1 npx tap test/e2e/golden.test.ts` and review the diff.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { assemble, familySamples } from '../../src/metrics/exposition.js';
import { buildApp } from '../../src/http/app.js';
import { ScrapeService } from '../../src/scrape/service.js';
import { silentLogger } from '../../src/log.js';
import { requireDaemon } from '../support/daemons.js';
import { copyFixtureHost, fixtureEngine, FIXTURE_HOSTS } from '../support/fixture-host.js';

const GOLDEN_DIR = path.resolve(FIXTURE_HOSTS, '../golden');
const hosts = fs
  .readdirSync(FIXTURE_HOSTS, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name);

for (const host of hosts) {
  t.test(`golden /metrics for ${host}`, async (t) => {
    const root = copyFixtureHost(host);
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const engine = fixtureEngine(root);
    const result = await engine.gather();
    const text = assemble([result.body], 'text').toString('utf8');
    const golden = path.join(GOLDEN_DIR, `${host}.txt`);
    if (process.env.PODVISOR_UPDATE_GOLDEN === '1') fs.writeFileSync(golden, text);
    t.equal(text, fs.readFileSync(golden, 'utf8'), `matches ${path.relative(process.cwd(), golden)}`);

    // Every series carries the six kubelet labels, in every family.
    const series = text.split('\n').filter((l) => l.startsWith('container_'));
    t.ok(series.length > 100, `${series.length} container series`);
    for (const l of series) t.match(l, /^\w+\{id="[^"]*",name="",image="",container="",pod="",namespace=""[,}]/);
    t.match(familySamples(result.body, 'podvisor_collector_errors_total') ?? '', /collector="cpu"\} 0\n/, 'the fixture trees read without errors');
  });

  t.test(`promtool check metrics on the whole /metrics body of ${host}`, async (t) => {
    if (!(await requireDaemon(t, 'promtool'))) return;
    const root = copyFixtureHost(host);
    const service = new ScrapeService(fixtureEngine(root), silentLogger, { minGatherIntervalMs: 0, maxResultAgeMs: 0, gatherAhead: false });
    const app = buildApp({ service, log: silentLogger, defaultScrapeTimeoutMs: 10_000, scrapeTimeoutOffsetMs: 500 });
    t.teardown(async () => {
      await app.close();
      fs.rmSync(root, { recursive: true, force: true });
    });
    for (const path of ['/metrics', '/metrics/cadvisor']) {
      const r = await app.inject({ url: path });
      t.equal(r.statusCode, 200);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
      t.equal(lint.status, 0, `promtool exit status for ${path}`);
      t.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'no lint findings');
    }
  });
}
