/**
 * No container of an answering runtime is ever reported without its labels: the first gather waits for the runtimes'
 * first lists (within the startup grace), and a cgroup whose container is still being looked up is held back for at
 * most --label-hold. A runtime that is down degrades to empty labels at once.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { Gatherer } from '../../src/gather/gatherer.js';
import { LabelHold } from '../../src/gather/label-hold.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { silentLogger } from '../../src/log.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';
import { container, FakeClient } from '../runtime/fixtures/fake-client.js';
import { deferred } from '../support/deferred.js';
import { until } from '../support/poll.js';

const UID = '8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';
const POD = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`;
const APP_ID = '3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4';
const APP = `${POD}/cri-containerd-${APP_ID}.scope`;
const NEW_ID = 'a'.repeat(64);
const NEW = `${POD}/cri-containerd-${NEW_ID}.scope`;
const LABELS = {
  'io.kubernetes.pod.name': 'web-0',
  'io.kubernetes.pod.namespace': 'shop',
  'io.kubernetes.pod.uid': UID,
  'io.kubernetes.container.name': 'app',
};

t.test('LabelHold: holds for the limit, then lets the cgroup through once and counts it', async (t) => {
  let now = 0;
  const hold = new LabelHold(10_000, () => now);
  hold.begin();
  t.equal(hold.hold('/a'), true, 'first seen: held');
  now = 9_999;
  hold.begin();
  t.equal(hold.hold('/a'), true, 'still within the limit');
  t.same(hold.counts(), { held: 1, expired: 0 }, 'held counts the current gather only');
  now = 10_000;
  hold.begin();
  t.equal(hold.hold('/a'), false, 'the limit ran out: exposed');
  t.equal(hold.hold('/a'), false, 'and stays exposed');
  t.same(hold.counts(), { held: 0, expired: 1 }, 'counted once');
  hold.release('/a');
  t.equal(hold.hold('/a'), true, 'a cgroup released (labelled) and looked up again is held afresh');
  hold.keepOnly(new Set());
  now = 30_000;
  t.equal(hold.hold('/a'), true, 'a cgroup that went away and came back starts a new hold');
});

function fixture(t: Test): string {
  const root = copyFixtureHost('v2-systemd');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.cpSync(path.join(root, 'sys/fs/cgroup', APP), path.join(root, 'sys/fs/cgroup', NEW), { recursive: true });
  return root;
}

/** Adds every container of the fixture (all but NEW) to what the runtime knows, as it would after its first list. */
function knowFixture(root: string, client: FakeClient): void {
  const found = fs.readdirSync(path.join(root, 'sys/fs/cgroup'), { recursive: true, encoding: 'utf8' });
  for (const p of found) {
    const id = /cri-containerd-([0-9a-f]{64})\.scope$/.exec(p)?.[1];
    if (id !== undefined && id !== NEW_ID && !client.containers.has(id)) client.add(container(id, { runtime: 'containerd', name: id }));
  }
}

function gatherer(root: string, factory: RuntimeFactory, now: () => number, extra: { startupGraceMs?: number } = {}): Gatherer {
  return new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    runtimes: [factory],
    labelHoldMs: 10_000,
    now,
    ...extra,
  });
}

function startFactory(t: Test, client: FakeClient): RuntimeFactory {
  const factory = new RuntimeFactory(client, { callTimeoutMs: 60_000, log: silentLogger, retryMinMs: 60_000 });
  t.teardown(() => factory.close());
  factory.start();
  return factory;
}

t.test('the first gather waits for the runtime to finish its first list', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd' });
  client.add(container(APP_ID, { runtime: 'containerd', name: 'app', labels: LABELS }));
  const gate = deferred<void>();
  client.listGate = gate;
  const factory = startFactory(t, client);
  const g = gatherer(root, factory, () => 0);
  const gathering = g.gather();
  await until('the first list() call', () => client.listCalls === 1);
  // The runtime answers only now: a gather that had not waited would have found an empty cache.
  gate.resolve();
  const snap = await gathering;
  t.equal(snap.containers.find((c) => c.id === APP)?.labels.pod, 'web-0', 'the first gather already has the labels');
  t.same(
    snap.runtimes?.map((r) => [r.runtime, r.up]),
    [['containerd', true]],
  );
});

t.test('a runtime that gives no answer within the startup grace is given up on: its containers go unlabelled', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd' });
  client.hangVersion = true;
  const factory = startFactory(t, client);
  // The grace timer is unref'd (it must not keep an exporter alive); this keeps the test process up meanwhile.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(alive));
  const snap = await gatherer(root, factory, () => 0, { startupGraceMs: 50 }).gather();
  t.equal(snap.containers.find((c) => c.id === APP)?.labels.name, '', 'reported, with empty labels (degraded)');
  t.equal(snap.containers.find((c) => c.id === NEW)?.labels.name, '', 'not held: nobody is looking it up');
  t.same(snap.labelHold, { held: 0, expired: 0 });
  t.same(
    snap.runtimes?.map((r) => [r.runtime, r.up]),
    [['containerd', false]],
  );
});

t.test('a container the runtime is still looking up is held back, then labelled', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd' });
  client.add(container(APP_ID, { runtime: 'containerd', name: 'app', labels: LABELS }));
  knowFixture(root, client);
  const factory = startFactory(t, client);
  await until('registration', () => factory.status().up);
  // The new container appears in the cgroups before its lookup answers.
  client.add(container(NEW_ID, { runtime: 'containerd', name: 'new', labels: { ...LABELS, 'io.kubernetes.container.name': 'new' } }));
  const gate = deferred<void>();
  client.inspectGate = gate;
  const g = gatherer(root, factory, () => 0);
  const first = await g.gather();
  t.equal(
    first.containers.find((c) => c.id === NEW),
    undefined,
    'left out while its lookup is in flight',
  );
  t.equal(first.containers.find((c) => c.id === APP)?.labels.container, 'app', 'the known container is reported');
  t.same(first.labelHold, { held: 1, expired: 0 });
  gate.resolve();
  client.inspectGate = undefined;
  await until('the lookup', () => factory.get(NEW_ID) !== undefined);
  const second = await g.gather();
  t.same(
    second.containers.find((c) => c.id === NEW)?.labels,
    { name: 'new', image: 'nginx:1.25', container: 'new', pod: 'web-0', namespace: 'shop' },
    'its first appearance carries its labels',
  );
  t.same(second.labelHold, { held: 0, expired: 0 });
});

t.test('past --label-hold a container whose lookup never answers is exposed with empty labels, and counted', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd' });
  knowFixture(root, client);
  const factory = startFactory(t, client);
  await until('registration', () => factory.status().up);
  client.add(container(NEW_ID, { runtime: 'containerd', name: 'new', labels: LABELS }));
  const gate = deferred<void>();
  client.inspectGate = gate;
  t.teardown(() => gate.resolve());
  let now = 1_000_000;
  const g = gatherer(root, factory, () => now);
  t.equal(
    (await g.gather()).containers.find((c) => c.id === NEW),
    undefined,
    'held',
  );
  now += 9_000;
  t.equal(
    (await g.gather()).containers.find((c) => c.id === NEW),
    undefined,
    'still held within the limit',
  );
  now += 1_000;
  const late = await g.gather();
  t.equal(late.containers.find((c) => c.id === NEW)?.labels.name, '', 'exposed, unlabelled, once the hold ran out');
  t.same(late.labelHold, { held: 0, expired: 1 });
});

t.test('a runtime that is down holds nothing back', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd', socket: true });
  client.socketIsMissing = true;
  client.failVersion = 1_000;
  const factory = startFactory(t, client);
  const snap = await gatherer(root, factory, () => 0, { startupGraceMs: 3_600_000 }).gather();
  t.equal(snap.containers.find((c) => c.id === NEW)?.labels.name, '', 'no socket: not waited for, exposed with empty labels');
  t.same(snap.labelHold, { held: 0, expired: 0 });
});
