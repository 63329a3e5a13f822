import t from 'tap';
import { isWorkerInit } from '../../src/scrape/worker-protocol.js';

const engine = { layout: { mode: 'v1', v1: new Map() }, rootfs: '/', allowPrefixes: [], machineInfoIntervalMs: 1000 };

t.test('the worker init carries the metric kinds and --runtime-containers-only, checked', async (t) => {
  t.ok(isWorkerInit({ engine, logLevel: 'info' }), 'no kinds: every kind');
  t.ok(isWorkerInit({ engine: { ...engine, kinds: ['cpu', 'percpu'], runtimeContainersOnly: true }, logLevel: 'info' }));
  t.notOk(isWorkerInit({ engine: { ...engine, kinds: ['cpu', 'cpuLoad'] }, logLevel: 'info' }), 'a kind podvisor does not know');
  t.notOk(isWorkerInit({ engine: { ...engine, kinds: 'cpu' }, logLevel: 'info' }), 'not a list');
  t.notOk(isWorkerInit({ engine: { ...engine, runtimeContainersOnly: 'yes' }, logLevel: 'info' }), 'not a boolean');
});
