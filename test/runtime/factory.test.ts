import t, { type Test } from 'tap';
import type { Fields, Logger } from '../../src/log.js';
import { RuntimeFactory, type FactoryOptions } from '../../src/runtime/factory.js';
import { formatDelay } from '../../src/runtime/signals.js';
import { deferred } from '../support/deferred.js';
import { container, FakeClient, hexId } from './fixtures/fake-client.js';
import { until } from '../support/poll.js';
import { setTimeout as sleep } from 'node:timers/promises';

interface Line {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Fields | undefined;
}

function recorder(): { log: Logger; lines: Line[]; at: (level: Line['level']) => string[] } {
  const lines: Line[] = [];
  const rec =
    (level: Line['level']) =>
    (msg: string, fields?: Fields): void => {
      lines.push({ level, msg, fields });
    };
  return {
    log: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') },
    lines,
    at: (level) => lines.filter((l) => l.level === level).map((l) => l.msg),
  };
}

type Opts = Partial<FactoryOptions>;

/** A started factory over `client` with small timings; closed when the test ends. */
function setup(t: Test, client: FakeClient, opts: Opts = {}) {
  const rec = recorder();
  const f = new RuntimeFactory(client, { callTimeoutMs: 500, retryMinMs: 10, retryMaxMs: 200, resyncMs: 60_000, log: rec.log, ...opts });
  t.teardown(() => f.close());
  f.start();
  return { f, ...rec };
}

const POD_UID = '5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
const podLabels = (name: string, uid = POD_UID) => ({
  'io.kubernetes.pod.uid': uid,
  'io.kubernetes.pod.name': name,
  'io.kubernetes.pod.namespace': 'default',
});

t.test('resyncs while events flow reuse cached entries; the registration list and every 10th resync inspect all', async (t) => {
  const client = new FakeClient();
  client.add(container(hexId(1)), container(hexId(2)));
  const { f } = setup(t, client, { resyncMs: 5 });
  await until('12 lists', () => client.listWithKnown.length >= 12);
  t.same(client.listWithKnown.slice(0, 12), [false, true, true, true, true, true, true, true, true, true, false, true]);
  t.equal(f.status().containers, 2, 'the cache is kept across known-entry resyncs');
});

t.test('helpers', async (t) => {
  t.equal(formatDelay(10), '10ms');
  t.equal(formatDelay(2000), '2s');
  t.equal(formatDelay(1500), '1.5s');
});

t.test("registers with version 'dev': an odd version never stops registration", async (t) => {
  const client = new FakeClient({ version: { version: 'dev', apiVersion: '1.45' } });
  client.add(container(hexId(1)), container(hexId(2)));
  const { f, lines } = setup(t, client);
  t.equal(f.runtime, 'docker');
  t.equal(f.status().up, false, 'not up before version() and list() answered');
  await until('registered', () => f.status().up && client.streaming);
  t.same(f.status(), { runtime: 'docker', up: true, version: 'dev', apiVersion: '1.45', parsedVersion: 'unknown', containers: 2 });
  t.equal(f.get(hexId(1))?.name, `c-${hexId(1).slice(0, 6)}`);
  t.equal(client.versionCalls.length, 1);
  t.equal(client.listCalls, 1);
  t.equal(client.subscriptions, 1);
  t.same(lines, [
    { level: 'info', msg: 'docker runtime registered', fields: { version: 'dev', api_version: '1.45', parsed_version: 'unknown', containers: 2 } },
  ]);
});

t.test('a real version is parsed', async (t) => {
  const client = new FakeClient({ runtime: 'containerd', version: { version: 'v1.7.20', apiVersion: '' } });
  const { f } = setup(t, client);
  await until('registered', () => f.status().up);
  t.match(f.status(), { runtime: 'containerd', version: 'v1.7.20', apiVersion: '', parsedVersion: '1.7.20', containers: 0 });
});

t.test('retries with growing backoff and registers when the runtime comes up', async (t) => {
  const client = new FakeClient();
  client.failVersion = 3;
  const { f, at } = setup(t, client, { retryMinMs: 20, retryMaxMs: 1000 });
  await until('registered after 3 failures', () => f.status().up);
  t.equal(client.versionCalls.length, 4);
  // The waits the factory chose are in its log lines (20, 40, 80 below): asserted there, not with a stopwatch, which a
  // loaded machine (or a timer armed late in a long loop turn) can make read anything.
  const s = f.status();
  t.equal(s.lastError, 'connect ENOENT /var/run/docker.sock', 'the last failure is kept after registering');
  t.match(s.lastErrorAt, /^\d{4}-\d\d-\d\dT/);
  t.same(at('warn'), ['docker runtime not available, retrying in 20ms: connect ENOENT /var/run/docker.sock'], 'one warn for the streak');
  t.same(at('debug'), [
    'docker runtime not available, retrying in 40ms: connect ENOENT /var/run/docker.sock',
    'docker runtime not available, retrying in 80ms: connect ENOENT /var/run/docker.sock',
  ]);
  t.same(at('info'), ['docker runtime registered']);
});

t.test('backoff is capped at retryMaxMs', async (t) => {
  const client = new FakeClient();
  client.failVersion = 6;
  const { f, lines } = setup(t, client, { retryMinMs: 10, retryMaxMs: 20 });
  await until('registered', () => f.status().up);
  t.equal(client.versionCalls.length, 7, '6 failures, then the attempt that registers');
  // The wait before each retry, as the factory announces it (one warn, then debug lines).
  const waits = lines.map((l) => /retrying in (\S+):/.exec(l.msg)?.[1]).filter((w) => w !== undefined);
  t.same(waits, ['10ms', '20ms', '20ms', '20ms', '20ms', '20ms'], 'waits: 10 ms, then capped at 20 ms (uncapped: 20, 40, 80, 160, 320 ms)');
});

t.test('a list() failure after version() is a registration failure too', async (t) => {
  const client = new FakeClient();
  client.failList = 1;
  client.failMessage = 'list: 500 Internal Server Error';
  const { f, at } = setup(t, client);
  await until('registered', () => f.status().up);
  t.equal(client.versionCalls.length, 2);
  t.equal(client.listCalls, 2);
  t.same(at('warn'), ['docker runtime not available, retrying in 10ms: list: 500 Internal Server Error']);
});

t.test('while it keeps failing, the warn repeats at most once per 5 minutes', async (t) => {
  let now = 1_700_000_000_000;
  const client = new FakeClient();
  client.failVersion = Infinity;
  const { f, at } = setup(t, client, { retryMinMs: 5, retryMaxMs: 5, now: () => now });
  await until('4 attempts', () => client.versionCalls.length >= 4);
  t.equal(at('warn').length, 1);
  t.ok(at('debug').length >= 2);
  t.equal(f.status().lastErrorAt, new Date(now).toISOString());
  now += 5 * 60_000;
  const seen = client.versionCalls.length;
  await until('two more attempts', () => client.versionCalls.length >= seen + 2);
  t.equal(at('warn').length, 2, 'a second warn after 5 minutes, and only one');
  t.equal(f.status().up, false);
});

t.test('a hung version() is cut by callTimeoutMs and retried', async (t) => {
  const client = new FakeClient();
  client.hangVersion = true;
  const { f, at } = setup(t, client, { callTimeoutMs: 50 });
  await until('first failure', () => f.status().lastError !== undefined);
  // The call never settles on its own, so the only way to this error is the factory's timeout.
  t.equal(f.status().lastError, 'version() timed out after 50 ms');
  t.same(at('warn'), ['docker runtime not available, retrying in 10ms: version() timed out after 50 ms']);
  await until('retried', () => client.versionCalls.length >= 2);
  t.ok(client.signals[0]?.aborted, "the hung call's signal was aborted");
  client.hangVersion = false;
  await until('registered once it answers', () => f.status().up);
});

t.test('lookup: a miss schedules exactly one inspect, and the next lookup hits', async (t) => {
  const client = new FakeClient();
  const { f } = setup(t, client);
  await until('registered', () => f.status().up);
  const id = hexId(7);
  client.add(container(id, { labels: podLabels('web-0') }));
  client.inspectGate = deferred();
  t.equal(f.lookup(id), undefined, 'a miss answers undefined at once');
  t.equal(f.lookup(id), undefined);
  t.equal(f.lookup(id), undefined);
  t.same(client.inspectCalls, [id], 'deduped while in flight');
  client.inspectGate.resolve();
  client.inspectGate = undefined;
  await until('inspect applied', () => f.get(id) !== undefined);
  t.equal(f.lookup(id)?.id, id, 'the next lookup hits');
  t.equal(f.status().containers, 1);
  t.same(f.pod(POD_UID), { pod: 'web-0', namespace: 'default' }, 'the pod index learns from inspected containers');
  t.same(client.inspectCalls, [id]);

  t.equal(f.lookup('kubepods.slice'), undefined);
  t.equal(f.lookup('abc123'), undefined);
  t.same(client.inspectCalls, [id], 'ids that are not container ids are never inspected');
});

t.test('lookup: at most 4 inspects in flight, the rest queue', async (t) => {
  const client = new FakeClient();
  const { f } = setup(t, client);
  await until('registered', () => f.status().up);
  const ids = Array.from({ length: 10 }, (_, i) => hexId(100 + i));
  for (const id of ids) client.add(container(id));
  client.inspectGate = deferred();
  for (const id of ids) f.lookup(id);
  await until('4 in flight', () => client.inspectsInFlight === 4);
  t.equal(client.inspectCalls.length, 4);
  client.inspectGate.resolve();
  client.inspectGate = undefined;
  await until('all inspected', () => ids.every((id) => f.get(id) !== undefined));
  t.equal(client.maxInspectsInFlight, 4);
  t.same([...client.inspectCalls].sort(), ids, 'each id inspected once');
});

t.test('lookup: negative results are remembered for 30 s', async (t) => {
  let now = 1_700_000_000_000;
  const client = new FakeClient();
  const { f } = setup(t, client, { now: () => now });
  await until('registered', () => f.status().up);
  const raw = hexId(0xdead);
  f.lookup(raw);
  await until('inspected', () => client.inspectsInFlight === 0 && client.inspectCalls.length === 1);
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i++) t.equal(f.lookup(raw), undefined);
  t.equal(client.inspectCalls.length, 1, 'an unknown id is not re-inspected every gather');
  now += 29_999;
  f.lookup(raw);
  t.equal(client.inspectCalls.length, 1);
  now += 1;
  f.lookup(raw);
  t.equal(client.inspectCalls.length, 2, 'asked again after 30 s');

  // A failed inspect is remembered too, so a struggling runtime is not hammered.
  client.failInspect = true;
  const other = hexId(0xbeef);
  f.lookup(other);
  await until('failed inspect', () => client.inspectsInFlight === 0 && client.inspectCalls.length === 3);
  await new Promise((r) => setImmediate(r));
  f.lookup(other);
  t.equal(client.inspectCalls.length, 3);
});

t.test('lookup does nothing while the runtime is not up', async (t) => {
  const client = new FakeClient();
  client.failVersion = Infinity;
  const { f } = setup(t, client);
  await until('failing', () => client.versionCalls.length >= 2);
  t.equal(f.lookup(hexId(1)), undefined);
  t.same(client.inspectCalls, []);
});

t.test('events keep the cache and the pod index in step', async (t) => {
  const client = new FakeClient();
  const sandbox = container(hexId(1), { kind: 'sandbox', labels: podLabels('web-0') });
  client.add(sandbox);
  const { f } = setup(t, client);
  await until('registered', () => f.status().up && client.streaming);
  t.same(f.pod(POD_UID), { pod: 'web-0', namespace: 'default' });

  const app = container(hexId(2), { labels: podLabels('web-0'), pid: 4242 });
  client.add(app);
  client.push({ id: app.id, action: 'create' });
  await until('created', () => f.get(app.id) !== undefined);
  t.equal(f.get(app.id)?.pid, 4242);
  t.equal(f.status().containers, 2);

  client.add({ ...app, pid: undefined });
  client.push({ id: app.id, action: 'die' });
  await until('die re-inspected: pid gone', () => f.get(app.id)?.pid === undefined);

  client.add({ ...app, name: 'renamed' });
  client.push({ id: app.id, action: 'rename' });
  await until('renamed', () => f.get(app.id)?.name === 'renamed');

  client.containers.delete(sandbox.id);
  client.push({ id: sandbox.id, action: 'destroy' });
  t.equal(f.get(sandbox.id), undefined, 'destroy deletes at once');
  t.same(f.pod(POD_UID), { pod: 'web-0', namespace: 'default' }, 'the pod is still known through its other container');

  client.containers.delete(app.id);
  client.push({ id: app.id, action: 'destroy' });
  t.equal(f.get(app.id), undefined);
  t.equal(f.pod(POD_UID), undefined, 'the pod index drops a pod with no cached containers');
  t.equal(f.status().containers, 0);

  // A start event for a container the runtime no longer knows deletes nothing it should keep and caches nothing.
  client.push({ id: hexId(3), action: 'start' });
  await until('inspected', () => client.inspectCalls.includes(hexId(3)) && client.inspectsInFlight === 0);
  t.equal(f.get(hexId(3)), undefined);
});

t.test('an update changing pod labels moves the container in the pod index', async (t) => {
  const client = new FakeClient();
  const c = container(hexId(5), { labels: podLabels('old', 'uid-a') });
  client.add(c);
  const { f } = setup(t, client);
  await until('registered', () => f.status().up && client.streaming);
  t.same(f.pod('uid-a'), { pod: 'old', namespace: 'default' });
  client.add({ ...c, labels: podLabels('new', 'uid-b') });
  client.push({ id: c.id, action: 'update' });
  await until('updated', () => f.pod('uid-b') !== undefined);
  t.equal(f.pod('uid-a'), undefined);
  t.same(f.pod('uid-b'), { pod: 'new', namespace: 'default' });
});

t.test('an event during an in-flight inspect re-inspects: a stale answer is never cached', async (t) => {
  const client = new FakeClient();
  const { f } = setup(t, client);
  await until('registered', () => f.status().up && client.streaming);
  const id = hexId(9);
  client.add(container(id, { pid: 1 }));
  client.inspectGate = deferred();
  f.lookup(id);
  t.equal(client.inspectCalls.length, 1);
  client.add(container(id, { pid: 2 }));
  client.push({ id, action: 'die' });
  t.equal(client.inspectCalls.length, 1, 'not a second concurrent inspect of the same id');
  client.inspectGate.resolve();
  client.inspectGate = undefined;
  await until('re-inspected', () => client.inspectCalls.length === 2 && f.get(id) !== undefined);
  t.equal(f.get(id)?.pid, 2);

  // The same for destroy: the in-flight answer (container present) must not resurrect it.
  const gone = hexId(10);
  client.add(container(gone));
  client.inspectGate = deferred();
  f.lookup(gone);
  client.containers.delete(gone);
  client.push({ id: gone, action: 'destroy' });
  client.inspectGate.resolve();
  client.inspectGate = undefined;
  await until('re-inspected', () => client.inspectCalls.length === 4 && client.inspectsInFlight === 0);
  await new Promise((r) => setImmediate(r));
  t.equal(f.get(gone), undefined);
});

t.test('a daemon restart: the stream ends, the cache is kept while down, re-registration refreshes it', async (t) => {
  const client = new FakeClient();
  const a = container(hexId(0xa), { labels: podLabels('a-0', 'uid-a') });
  const b = container(hexId(0xb));
  client.add(a, b);
  const { f, at } = setup(t, client);
  await until('registered', () => f.status().up && client.streaming);

  client.containers.delete(a.id);
  client.add(container(hexId(0xc)));
  client.failVersion = 2;
  client.failMessage = 'connect ECONNREFUSED /var/run/docker.sock';
  client.endStream();
  // 'down' lasts only until the first retry (10 ms away): poll every 1 ms, so the check's timer is always due before
  // the factory's retry timer, whatever the machine's load.
  await until('down', () => !f.status().up, { everyMs: 1 });
  t.equal(f.status().containers, 2, 'the cache is kept while re-registering');
  t.ok(f.get(a.id));
  t.ok(f.pod('uid-a'));

  await until('re-registered', () => f.status().up && client.subscriptions === 2);
  t.equal(client.versionCalls.length, 4, '1 + 2 failures + 1');
  t.equal(client.listCalls, 2);
  t.equal(f.get(a.id), undefined, 'refreshed from list()');
  t.equal(f.pod('uid-a'), undefined);
  t.ok(f.get(hexId(0xb)));
  t.ok(f.get(hexId(0xc)));
  t.equal(f.status().containers, 2);
  t.same(at('warn'), ['docker runtime went away, retrying in 20ms: connect ECONNREFUSED /var/run/docker.sock'], 'warned once');
  t.same(at('info'), ['docker runtime registered', 'docker events stream ended, re-registering in 10ms', 'docker runtime registered']);

  // A failing stream is survived the same way, with the cause kept.
  client.failStream('socket hang up');
  await until('re-subscribed', () => client.subscriptions === 3);
  t.equal(f.status().lastError, 'events stream failed: socket hang up');
  t.equal(f.status().up, true);
});

t.test('without events(), the cache is kept fresh by periodic resyncs; a failed resync re-registers', async (t) => {
  const client = new FakeClient({ noEvents: true });
  const { f } = setup(t, client, { resyncMs: 20 });
  await until('registered', () => f.status().up);
  t.equal(client.events, undefined);
  client.add(container(hexId(1)));
  await until('resynced', () => f.get(hexId(1)) !== undefined);
  const versions = client.versionCalls.length;
  client.failList = 1;
  client.failMessage = 'list: connection reset';
  await until('re-registered', () => client.versionCalls.length > versions && f.status().up);
  t.equal(f.status().lastError, 'resync failed: list: connection reset');
  t.ok(f.get(hexId(1)), 'the cache survived');
});

t.test('close() stops everything: no timers left, signals aborted, client closed, no calls after', async (t) => {
  // Track every timer made through the global setTimeout while the factory lives.
  const live = new Set<ReturnType<typeof setTimeout>>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const trackedSet = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = realSet(
      (...a: unknown[]) => {
        live.delete(h);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.add(h);
    return h;
  };
  globalThis.setTimeout = trackedSet as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((h: ReturnType<typeof setTimeout> | undefined) => {
    if (h !== undefined) live.delete(h);
    realClear(h);
  }) as typeof clearTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  });

  const client = new FakeClient();
  client.add(container(hexId(1)));
  const rec = recorder();
  const f = new RuntimeFactory(client, { callTimeoutMs: 10_000, retryMinMs: 10, resyncMs: 50, log: rec.log });
  f.start();
  f.start();
  await until('registered', () => f.status().up && client.streaming);
  client.add(container(hexId(2)));
  client.inspectGate = deferred(); // this inspect hangs (ignoring its signal) until close
  f.lookup(hexId(2));
  t.equal(client.inspectsInFlight, 1);

  const closing = f.close();
  t.equal(f.close(), closing, 'idempotent');
  await closing;
  t.equal(client.closed, 1, 'the client is closed once');
  t.ok(
    client.signals.every((s) => s.aborted),
    'every signal handed to the client (stream, calls) is aborted',
  );
  t.equal(live.size, 0, 'no timers left');
  t.equal(f.status().up, false);
  t.equal(f.lookup(hexId(3)), undefined);
  f.start();

  const calls = [client.versionCalls.length, client.listCalls, client.inspectCalls.length, client.subscriptions];
  // A wait for something that must NOT happen: however long the machine takes, it cannot make a call appear.
  await new Promise((r) => realSet(r, 120));
  t.same([client.versionCalls.length, client.listCalls, client.inspectCalls.length, client.subscriptions], calls, 'no calls after close()');
  client.inspectGate.resolve();
  t.same(rec.at('warn'), []);
});

t.test('close() before start() and while registration is failing', async (t) => {
  const idle = new FakeClient();
  const f1 = new RuntimeFactory(idle, { callTimeoutMs: 100, log: recorder().log });
  await f1.close();
  f1.start();
  t.equal(idle.versionCalls.length, 0);
  t.equal(idle.closed, 1);

  const down = new FakeClient();
  down.failVersion = Infinity;
  const f2 = new RuntimeFactory(down, { callTimeoutMs: 100, retryMinMs: 600_000, log: recorder().log });
  f2.start();
  await until('first attempt', () => down.versionCalls.length === 1);
  // The backoff is 10 minutes: a close() that waited it out would still be pending after a generous minute, which
  // nothing else in close() can take.
  const bound = new AbortController();
  const outcome = await Promise.race([
    f2.close().then(() => 'closed'),
    sleep(60_000, 'still pending after 60 s', { signal: bound.signal }).catch(() => 'bound aborted'),
  ]);
  bound.abort();
  t.equal(outcome, 'closed', 'close() does not wait out the backoff');
  t.equal(down.versionCalls.length, 1, 'and no retry comes after it');
});
