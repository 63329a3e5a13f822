import t from 'tap';
import fs from 'node:fs';
import { FIRST_GATHER_ALLOWANCE_MS, WorkerEngine } from '../../src/scrape/worker-engine.js';
import type { RuntimeConfig } from '../../src/runtime/index.js';
import { LocalEngine } from '../../src/scrape/engine.js';
import type { GatherOptions } from '../../src/gather/setup.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { silentLogger, createLogger } from '../../src/log.js';
import { familySamples } from '../../src/metrics/exposition.js';
import { copyFixtureHost } from '../support/fixture-host.js';

const ENTRY = new URL('../support/ts-worker.mjs', import.meta.url);

function options(rootfs: string): GatherOptions {
  return { layout: loadLayout(rootfs), rootfs, allowPrefixes: [], machineInfoIntervalMs: 300_000 };
}

t.test('a gather on the worker thread renders the same series as one in-process', async (t) => {
  const root = copyFixtureHost('v2-systemd');
  const worker = new WorkerEngine(options(root), silentLogger, 'error', 30_000, ENTRY);
  t.teardown(async () => {
    await worker.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const local = await new LocalEngine(options(root), silentLogger).gather();
  const remote = await worker.gather();
  t.equal(remote.containers, local.containers);
  t.ok(remote.containers > 5);
  // Values that depend on the clock or the live machine aside, the container families are identical.
  const stable = (r: typeof local) =>
    r.body.families.filter((f) => f.name.startsWith('container_') && f.name !== 'container_last_seen').map((f) => [f.name, familySamples(r.body, f.name)]);
  t.same(stable(remote), stable(local));
  // The /metrics/resource families cross too (their own buffer, transferred): the same lines, timestamps aside.
  const resource = (r: typeof local) => r.resource.families.map((f) => [f.name, familySamples(r.resource, f.name)?.replace(/ \d+$/gm, '')]);
  t.same(resource(remote), resource(local));
  t.ok(
    remote.resource.families.some((f) => f.name === 'node_cpu_usage_seconds_total'),
    `the node's series among them (${remote.resource.families.map((f) => f.name).join(', ')})`,
  );
  const again = await worker.gather();
  t.ok(again.timestampMs >= remote.timestampMs, 'the worker serves repeated gathers');
});

t.test('a worker that dies fails its gathers with a clear error, and the next gather gets a new worker', async (t) => {
  const root = copyFixtureHost('v2-systemd');
  const lines: string[] = [];
  const opts = options(root);
  const worker = new WorkerEngine(
    opts,
    createLogger('error', (l) => lines.push(l)),
    'error',
    30_000,
    ENTRY,
  );
  t.teardown(async () => {
    await worker.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  // Break the options the worker validates at startup: it throws before it can answer.
  const layout = opts.layout as unknown as { v1: unknown };
  const v1 = layout.v1;
  layout.v1 = 'not a map';
  await t.rejects(worker.gather(), /gather worker (crashed|exited)/);
  t.match(lines.join(''), /gather worker/);
  layout.v1 = v1;
  const ok = await worker.gather();
  t.ok(ok.containers > 5, 'a fresh worker answers');
});

t.test('a gather that outlives --gather-timeout is abandoned with a clear error', async (t) => {
  const root = copyFixtureHost('v2-systemd');
  const worker = new WorkerEngine(options(root), silentLogger, 'error', 1, ENTRY);
  t.teardown(async () => {
    await worker.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await t.rejects(worker.gather(), /gather did not finish within 0\.001s; restarting the gather worker/);
});

t.test("a worker's first gather may also wait for the runtimes' first lists: --gather-timeout bounds the gathers after it", async (t) => {
  const root = copyFixtureHost('v2-systemd');
  // Runtimes configured, all turned off (empty endpoints): nothing to wait for, but the first gather's bound is the same.
  const runtimes: RuntimeConfig = {
    dockerEndpoint: '',
    containerdAddress: '',
    containerdNamespaces: [],
    crioEndpoint: '',
    timeoutMs: 1000,
    startupGraceMs: 1000,
    labelHoldMs: 1000,
    extraLabels: { storeContainerLabels: false, whitelistedContainerLabels: [], envMetadataWhitelist: [] },
  };
  const worker = new WorkerEngine({ ...options(root), runtimes }, silentLogger, 'error', 1, ENTRY);
  t.teardown(async () => {
    await worker.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const first = await worker.gather();
  t.ok(first.containers > 5, `the first gather is not held to the 1 ms --gather-timeout (${FIRST_GATHER_ALLOWANCE_MS / 60_000} min more)`);
  await t.rejects(worker.gather(), /gather did not finish within 0\.001s/, 'the next one is');
});
