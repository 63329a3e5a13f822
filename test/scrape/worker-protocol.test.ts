import t from 'tap';
import { isWorkerInit, isWorkerReply } from '../../src/scrape/worker-protocol.js';
import { encodeFamilies, FamilyWriter } from '../../src/metrics/exposition.js';

const engine = { layout: { mode: 'v1', v1: new Map() }, rootfs: '/', allowPrefixes: [], machineInfoIntervalMs: 1000 };

t.test('the worker init carries the metric kinds and --runtime-containers-only, checked', async (t) => {
  t.ok(isWorkerInit({ engine, logLevel: 'info' }), 'no kinds: every kind');
  t.ok(isWorkerInit({ engine: { ...engine, kinds: ['cpu', 'percpu'], runtimeContainersOnly: true }, logLevel: 'info' }));
  t.notOk(isWorkerInit({ engine: { ...engine, kinds: ['cpu', 'cpuLoad'] }, logLevel: 'info' }), 'a kind podvisor does not know');
  t.notOk(isWorkerInit({ engine: { ...engine, kinds: 'cpu' }, logLevel: 'info' }), 'not a list');
  t.notOk(isWorkerInit({ engine: { ...engine, runtimeContainersOnly: 'yes' }, logLevel: 'info' }), 'not a boolean');
});

t.test('a gather reply carries both bodies, each family inside its own bytes', async (t) => {
  const family = (name: string) => {
    const w = new FamilyWriter(name, 'help', 'gauge');
    w.sample('', 1);
    return encodeFamilies([w.finish()]);
  };
  const result = { timestampMs: 1, durationMs: 1, containers: 1, body: family('container_x'), resource: family('resource_scrape_error'), runtimes: [] };
  t.ok(isWorkerReply({ type: 'result', id: 1, result }), 'both bodies');
  const { resource: _, ...noResource } = result;
  t.notOk(isWorkerReply({ type: 'result', id: 1, result: noResource }), 'no /metrics/resource body');
  t.notOk(isWorkerReply({ type: 'result', id: 1, result: { ...result, resource: { bytes: 'x', families: [] } } }), 'resource bytes not bytes');
  const beyond = family('resource_scrape_error');
  const f = beyond.families[0];
  if (f !== undefined) f.end = beyond.bytes.byteLength + 1;
  t.notOk(isWorkerReply({ type: 'result', id: 1, result: { ...result, resource: beyond } }), 'a resource family past the end of its bytes');
});
