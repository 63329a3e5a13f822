/**
 * A scrape deadline shorter than a gather does not lock the target out (issue 12): the real exporter, on a copy of a
 * fixture host grown to 400 extra container cgroups and scraped with X-Prometheus-Scrape-Timeout-Seconds=0.1 (a 50 ms
 * budget), answers every scrape after the first with 200 and data, from the newest result the late gathers left
 * behind; and it never runs more gathers than it got scrapes. Runtimes are off: this is about the scrape path only.
 * Whether the gathers here are slower than 50 ms is detected (from podvisor_gather_duration_seconds), not assumed.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startExporter } from '../support/exporter.js';
import { copyFixtureHost } from '../support/fixture-host.js';
import { poll } from '../support/poll.js';

const EXTRA_CGROUPS = 400;
const BUDGET_MS = 50;

/** The fixture host, with EXTRA_CGROUPS copies of one of its container cgroups next to it. */
function bigHost(): string {
  const root = copyFixtureHost('v2-systemd');
  const cgroups = path.join(root, 'sys/fs/cgroup');
  const scope = fs.readdirSync(cgroups, { recursive: true, encoding: 'utf8' }).find((p) => /cri-containerd-[0-9a-f]{64}\.scope$/.test(p));
  if (scope === undefined) throw new Error('the fixture host has no container cgroup');
  for (let i = 0; i < EXTRA_CGROUPS; i++) {
    const copy = path.join(path.dirname(scope), `cri-containerd-${crypto.randomBytes(32).toString('hex')}.scope`);
    fs.cpSync(path.join(cgroups, scope), path.join(cgroups, copy), { recursive: true });
  }
  return root;
}

const SCRAPES = 8;

function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

async function lastSuccess(url: string): Promise<string | undefined> {
  const r = await fetch(`${url}/readyz`);
  const body: unknown = await r.json();
  return typeof body === 'object' && body !== null && 'lastSuccessAt' in body && typeof body.lastSuccessAt === 'string' ? body.lastSuccessAt : undefined;
}

t.test('with a deadline shorter than the gather, every scrape after the first answers 200 from the newest result', async (t) => {
  const root = bigHost();
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const exporter = await startExporter([
    `--rootfs=${root}`,
    '--gather-ahead=false',
    '--disk-usage=false',
    '--docker-endpoint=',
    '--containerd-address=',
    '--crio-endpoint=',
  ]);
  t.teardown(() => exporter.stop());
  // The warm-up gather podvisor starts at once: wait for it, so the first scrape below starts a gather of its own.
  let previous = await poll('the first gather', () => lastSuccess(exporter.url), { timeoutMs: 60_000, everyMs: 50 });
  const statuses: number[] = [];
  let last = '';
  for (let i = 0; i < SCRAPES; i++) {
    const r = await fetch(`${exporter.url}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': String((2 * BUDGET_MS) / 1000) } });
    statuses.push(r.status);
    const body = await r.text();
    if (r.status === 200) last = body;
    // The gather this scrape started outlives it: wait for it to end, so the next scrape has a newer result at hand.
    const before = previous;
    previous = await poll(
      'the late gather to finish',
      async () => {
        const at = await lastSuccess(exporter.url);
        return at !== undefined && at !== before ? at : undefined;
      },
      { timeoutMs: 60_000, everyMs: 20 },
    );
  }
  t.same(statuses.slice(1), Array(SCRAPES - 1).fill(200), `every scrape after the first answered 200 (all: ${statuses.join(',')})`);
  t.match(last, /\ncontainer_cpu_usage_seconds_total\{id="\/"/, 'with data');
  const r = await fetch(`${exporter.url}/metrics`);
  const final = await r.text();
  const seconds = (value(final, 'podvisor_gather_duration_seconds_sum') ?? 0) / (value(final, 'podvisor_gather_duration_seconds_count') ?? 1);
  const stale = value(final, 'podvisor_scrapes_total{result="stale"}') ?? 0;
  if (seconds * 1000 > 2 * BUDGET_MS) {
    t.ok(stale >= SCRAPES - 1, `gathers took ${seconds.toFixed(3)} s, over the ${BUDGET_MS} ms budget: scrapes answered from older results (${stale})`);
  } else {
    t.comment(`gathers took ${seconds.toFixed(3)} s here, not clearly over the ${BUDGET_MS} ms budget: answered fresh or stale (${stale} stale)`);
  }
  const gathers = (value(final, 'podvisor_gathers_total{result="success"}') ?? 0) + (value(final, 'podvisor_gathers_total{result="error"}') ?? 0);
  // One gather at startup, one per scrape at most (the final scrape's own included).
  t.ok(gathers <= SCRAPES + 2, `gathers (${gathers}) do not exceed scrapes (${SCRAPES + 1}) plus the startup gather`);
  t.equal(value(final, 'podvisor_scrapes_total{result="deadline_exceeded"}'), statuses.filter((s) => s === 503).length, 'each 503 counted');
});
