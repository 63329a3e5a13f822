import { removeCgroupDirs } from '../support/cgroups.js';
import t from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import { ContainerdClient } from '../../src/runtime/containerd/client.js';
import { decodeContainer, decodeEvent, parseSpec, readStringFields } from '../../src/runtime/containerd/decode.js';
import type { RuntimeEvent } from '../../src/runtime/types.js';
import { requireDaemon, removeCtrContainer, run } from '../support/daemons.js';
import { encodeFields, FakeContainerd } from './fixtures/fake-containerd.js';
import { socketPath } from '../support/socket-path.js';
import { poll, until } from '../support/poll.js';

const SANDBOX_ID = 'a'.repeat(64);
const APP_ID = 'b'.repeat(64);
const POD_UID = '0c3c3c8e-6a1e-4b8b-9d5e-2f1f1d1f1a01';

function criLabels(kind: 'sandbox' | 'container'): Record<string, string> {
  return {
    'io.cri-containerd.kind': kind,
    'io.kubernetes.pod.name': 'web-0',
    'io.kubernetes.pod.namespace': 'shop',
    'io.kubernetes.pod.uid': POD_UID,
    ...(kind === 'container' ? { 'io.kubernetes.container.name': 'app' } : {}),
  };
}

function ociSpec(cgroupsPath: string, env: string[], netnsPath?: string): object {
  return {
    ociVersion: '1.0.2',
    process: { args: ['sleep', '300'], env },
    linux: {
      cgroupsPath,
      namespaces: [{ type: 'pid' }, { type: 'network', ...(netnsPath !== undefined ? { path: netnsPath } : {}) }, { type: 'mount' }],
    },
  };
}

/** A fake with a CRI pod (running sandbox + app) in k8s.io and two plain containers in moby. */
async function podFake(): Promise<FakeContainerd> {
  const fake = await FakeContainerd.start();
  fake.containers.push(
    {
      namespace: 'k8s.io',
      id: SANDBOX_ID,
      labels: criLabels('sandbox'),
      image: 'registry.k8s.io/pause:3.9',
      spec: ociSpec(`/kubepods/besteffort/pod${POD_UID}/${SANDBOX_ID}`, ['PATH=/bin']),
      snapshotter: 'overlayfs',
      snapshotKey: SANDBOX_ID,
      createdAt: { seconds: 1_700_000_000, nanos: 500_000_000 },
    },
    {
      namespace: 'k8s.io',
      id: APP_ID,
      labels: criLabels('container'),
      image: 'docker.io/library/nginx:1.25',
      spec: ociSpec(`/kubepods/besteffort/pod${POD_UID}/${APP_ID}`, ['PATH=/usr/bin:/bin', 'NGINX_VERSION=1.25.3', 'EMPTY=', 'A=b=c'], '/proc/42/ns/net'),
      snapshotter: 'overlayfs',
      snapshotKey: APP_ID,
      createdAt: { seconds: 1_700_000_001, nanos: 0 },
    },
    { namespace: 'moby', id: 'joined', spec: ociSpec('/docker/joined', [], '/proc/7/ns/net') },
    { namespace: 'moby', id: 'own', spec: ociSpec('/docker/own', []) },
    { namespace: 'other', id: 'not-ours' },
  );
  fake.tasks.push(
    { namespace: 'k8s.io', containerId: SANDBOX_ID, pid: 4242, status: 'RUNNING' },
    { namespace: 'k8s.io', containerId: APP_ID, pid: 4343, status: 'STOPPED' },
    { namespace: 'moby', containerId: 'own', pid: 777, status: 'PAUSED' },
  );
  return fake;
}

function client(address: string, timeoutMs = 2_000, namespaces = ['k8s.io', 'moby']): ContainerdClient {
  return new ContainerdClient({ address, namespaces, timeoutMs });
}

const never = () => new AbortController().signal;

t.test('fake containerd', async (t) => {
  t.test('version: raw string, no api version, no namespace header', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    t.same(await c.version(never()), { version: '1.6.20~ds1', apiVersion: '' });
    t.same(fake.namespacesOf('Version'), [undefined]);
  });

  t.test('list maps a CRI pod and plain containers, one header per namespace', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const list = await c.list(never());
    t.same(
      list.map((x) => x.id),
      [SANDBOX_ID, APP_ID, 'joined', 'own'],
    );
    const [sandbox, app, joined, own] = list;
    t.strictSame(sandbox, {
      runtime: 'containerd',
      id: SANDBOX_ID,
      name: SANDBOX_ID,
      image: 'registry.k8s.io/pause:3.9',
      labels: criLabels('sandbox'),
      kind: 'sandbox',
      networkOwner: true,
      namespace: 'k8s.io',
      env: { PATH: '/bin' },
      cgroupsPath: `/kubepods/besteffort/pod${POD_UID}/${SANDBOX_ID}`,
      createdAt: 1_700_000_000.5,
      pid: 4242,
      snapshotter: 'overlayfs',
      snapshotKey: SANDBOX_ID,
    });
    t.match(app, {
      kind: 'container',
      networkOwner: false,
      image: 'docker.io/library/nginx:1.25',
      cgroupsPath: `/kubepods/besteffort/pod${POD_UID}/${APP_ID}`,
      env: { PATH: '/usr/bin:/bin', NGINX_VERSION: '1.25.3', EMPTY: '', A: 'b=c' },
      createdAt: 1_700_000_001,
    });
    t.equal(app?.pid, undefined, 'a STOPPED task has no pid');
    t.match(joined, { namespace: 'moby', kind: 'container', networkOwner: false, cgroupsPath: '/docker/joined', image: '' });
    t.equal(joined?.pid, undefined, 'no task, no pid');
    t.equal(joined?.snapshotter, undefined);
    t.match(own, { namespace: 'moby', networkOwner: true, pid: 777 }, 'a paused task keeps its pid');
    t.same(fake.namespacesOf('Containers/List').sort(), ['k8s.io', 'moby']);
    t.same(fake.namespacesOf('Tasks/List').sort(), ['k8s.io', 'moby']);
  });

  t.test('list reports each answered call to onProgress; socketMissing sees the socket', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    const prefixed = client(`unix://${fake.path}`);
    t.teardown(async () => {
      await c.close();
      await prefixed.close();
      await fake.stop();
    });
    let progress = 0;
    t.equal((await c.list(never(), undefined, () => progress++)).length, 4);
    t.equal(progress, 4, 'Containers/List and Tasks/List in each of 2 namespaces');
    t.equal(c.socketMissing(), false);
    t.equal(prefixed.socketMissing(), false, 'a unix:// address');
    await fake.stop();
    t.equal(c.socketMissing(), true, 'stopped: the socket file is gone');
    t.equal(prefixed.socketMissing(), true);
  });

  t.test('inspect: found in a later namespace, task NOT_FOUND, container NOT_FOUND', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const sb = await c.inspect(SANDBOX_ID, never());
    t.match(sb, { id: SANDBOX_ID, kind: 'sandbox', pid: 4242, namespace: 'k8s.io', cgroupsPath: `/kubepods/besteffort/pod${POD_UID}/${SANDBOX_ID}` });
    fake.calls.length = 0;
    const joined = await c.inspect('joined', never());
    t.match(joined, { id: 'joined', namespace: 'moby', networkOwner: false });
    t.equal(joined?.pid, undefined, 'Tasks/Get NOT_FOUND: no pid');
    t.same(fake.namespacesOf('Containers/Get'), ['k8s.io', 'moby'], 'NOT_FOUND in k8s.io, then moby');
    t.same(fake.namespacesOf('Tasks/Get'), ['moby']);
    t.equal(await c.inspect('not-ours', never()), undefined, 'outside our namespaces');
    t.equal(await c.inspect('missing', never()), undefined);
  });

  t.test('a malformed spec keeps the container without the spec-derived fields', async (t) => {
    const fake = await FakeContainerd.start();
    fake.containers.push(
      { namespace: 'k8s.io', id: 'bad', labels: criLabels('container'), image: 'x', spec: '{"linux": {"cgroupsPath": ' },
      { namespace: 'moby', id: 'badmoby', spec: '[1,2]' },
      { namespace: 'k8s.io', id: 'typed', spec: { linux: { cgroupsPath: 42, namespaces: 'no' }, process: { env: [1] } } },
    );
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const list = await c.list(never());
    const bad = list.find((x) => x.id === 'bad');
    t.ok(bad, 'still listed');
    t.equal(bad?.cgroupsPath, undefined);
    t.equal(bad?.env, undefined);
    t.equal(bad?.networkOwner, false, 'CRI container: kind decides');
    t.match(
      list.find((x) => x.id === 'badmoby'),
      { networkOwner: true },
      'plain container with unreadable spec counts as owner',
    );
    const typed = list.find((x) => x.id === 'typed');
    t.equal(typed?.cgroupsPath, undefined, 'non-string cgroupsPath ignored');
    t.equal(typed?.env, undefined, 'non-string env ignored');
  });

  t.test('snapshotUsage sends the namespace header', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    t.same(await c.snapshotUsage('k8s.io', 'overlayfs', APP_ID, never()), { size: 4096, inodes: 3 });
    t.same(fake.namespacesOf('Snapshots/Usage'), ['k8s.io']);
  });

  t.test('events: filters, decoding, exec exits and foreign namespaces ignored, resolves at stream end', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const got: RuntimeEvent[] = [];
    const done = c.events((e) => got.push(e), never());
    await fake.subscribed();
    t.same(fake.subscribeFilters[0], [
      'namespace=="k8s.io",topic~="^/containers/"',
      'namespace=="k8s.io",topic~="^/tasks/"',
      'namespace=="moby",topic~="^/containers/"',
      'namespace=="moby",topic~="^/tasks/"',
    ]);
    const E = 'containerd.events.';
    fake.emit(
      'k8s.io',
      '/containers/create',
      `${E}ContainerCreate`,
      encodeFields([
        [1, APP_ID],
        [2, 'nginx'],
      ]),
    );
    fake.emit(
      'k8s.io',
      '/tasks/create',
      `${E}TaskCreate`,
      encodeFields([
        [1, APP_ID],
        [6, 99],
      ]),
    );
    fake.emit(
      'k8s.io',
      '/tasks/start',
      `${E}TaskStart`,
      encodeFields([
        [1, APP_ID],
        [2, 99],
      ]),
    );
    fake.emit(
      'k8s.io',
      '/tasks/exit',
      `${E}TaskExit`,
      encodeFields([
        [1, APP_ID],
        [2, 'exec-1'],
        [3, 100],
        [4, 0],
      ]),
    );
    fake.emit('k8s.io', '/images/create', `${E}ImageCreate`, encodeFields([[1, 'nginx']]));
    fake.emit('default', '/containers/create', `${E}ContainerCreate`, encodeFields([[1, 'foreign']]));
    fake.emit(
      'moby',
      '/tasks/exit',
      `type.googleapis.com/${E}TaskExit`,
      encodeFields([
        [1, 'own'],
        [2, 'own'],
        [3, 777],
        [4, 137],
      ]),
    );
    fake.emit(
      'moby',
      '/tasks/delete',
      `${E}TaskDelete`,
      encodeFields([
        [1, 'own'],
        [2, 777],
        [3, 137],
      ]),
    );
    fake.emit('k8s.io', '/containers/update', `${E}ContainerUpdate`, encodeFields([[1, APP_ID]]));
    fake.emit('k8s.io', '/containers/delete', `${E}ContainerDelete`, encodeFields([[1, APP_ID]]));
    await until('the last event (destroy) to be delivered', () => got.some((e) => e.action === 'destroy'), { describe: () => JSON.stringify(got) });
    fake.endStreams();
    await done;
    t.same(got, [
      { id: APP_ID, action: 'create' },
      { id: APP_ID, action: 'start' },
      { id: 'own', action: 'die' },
      { id: 'own', action: 'die' },
      { id: APP_ID, action: 'update' },
      { id: APP_ID, action: 'destroy' },
    ]);
  });

  t.test('events: abort resolves, a server error rejects, a bad payload rejects', async (t) => {
    const fake = await podFake();
    const c = client(fake.path);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const ac = new AbortController();
    const p1 = c.events(() => {}, ac.signal);
    await fake.subscribed(1);
    ac.abort();
    await t.resolves(p1, 'abort ends the stream quietly');

    const p2 = c.events(() => {}, never());
    await fake.subscribed(2);
    fake.failStreams(13, 'boom');
    await t.rejects(p2, { name: 'ContainerdError', message: `containerd at ${fake.path}: Events/Subscribe: 13 INTERNAL: boom` });

    const p3 = c.events(() => {}, never());
    await fake.subscribed(3);
    fake.emit('k8s.io', '/tasks/start', 'containerd.events.TaskStart', Buffer.from([0x0a, 0x40, 0x61]));
    await t.rejects(p3, /Events\/Subscribe: containerd\.events\.TaskStart|event payload: truncated field/);
  });

  t.test('a server that never answers: the deadline rejects within timeoutMs', async (t) => {
    const fake = await podFake();
    fake.hang = true;
    const c = client(fake.path, 300);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    // The fake never answers: DEADLINE_EXCEEDED is the client's own 300 ms deadline at work.
    await t.rejects(c.list(never()), {
      name: 'ContainerdError',
      grpcCode: 4,
      message: new RegExp(`^containerd at ${fake.path}: (Containers|Tasks)/List in namespace (k8s\\.io|moby): 4 DEADLINE_EXCEEDED`),
    });
  });

  t.test('abort cancels the call', async (t) => {
    const fake = await podFake();
    fake.hang = true;
    const c = client(fake.path, 10_000);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('scrape deadline')), 100);
    // CANCELLED with the signal's reason, not the 10 s DEADLINE_EXCEEDED: the abort ended the call.
    await t.rejects(c.inspect(APP_ID, ac.signal), {
      grpcCode: 1,
      message: `containerd at ${fake.path}: Containers/Get in namespace k8s.io: aborted: scrape deadline`,
    });
    await t.rejects(c.version(ac.signal), /Version: aborted: scrape deadline/, 'an already aborted signal rejects at once');
  });

  t.test('no server: UNAVAILABLE in one sentence', async (t) => {
    const path = socketPath('nocd');
    const c = client(path);
    t.teardown(() => c.close());
    await t.rejects(c.version(never()), {
      name: 'ContainerdError',
      code: 'PODVISOR_RUNTIME_CONTAINERD',
      grpcCode: 14,
      message: new RegExp(
        `^containerd at ${path}: Version/Version: 14 UNAVAILABLE: No connection established\\. Last error: Error: connect ENOENT [^ ]+\\.sock\\.?$`,
      ),
    });
  });

  t.test('server restart: fails while down, answers again once back', async (t) => {
    const fake = await podFake();
    const c = client(fake.path, 1_000);
    t.teardown(async () => {
      await c.close();
      await fake.stop();
    });
    t.equal((await c.list(never())).length, 4);
    await fake.stop();
    await t.rejects(c.list(never()), { name: 'ContainerdError', message: / 14 UNAVAILABLE: / });
    await fake.listen();
    // grpc-js reconnects with its own backoff: the first calls after the restart may still fail.
    const n = await poll('a list() after the restart', async () => (await c.list(never())).length, { everyMs: 200, timeoutMs: 60_000 });
    t.equal(n, 4, 'the same client lists again after the restart');
  });
});

t.test('decoders', async (t) => {
  t.throws(() => decodeContainer({ id: 'x', labels: { a: 1 } }), { message: 'Container x: labels are not a string map' });
  t.throws(() => decodeContainer({ id: '' }), { message: 'Container: empty id' });
  t.throws(() => decodeContainer({ id: 'x', spec: { type_url: 'u', value: 'not bytes' } }), /spec: field value is not bytes/);
  t.same(parseSpec(Buffer.from('{"linux":{"namespaces":[{"type":"pid"}]}}')), { netns: 'host' });
  t.same(parseSpec(Buffer.from('{"linux":{"namespaces":[{"type":"network","path":""}]}}')), { netns: 'new' });
  t.equal(parseSpec(Buffer.from('null')), undefined);
  t.equal(parseSpec(Buffer.from([0xff, 0xfe])), undefined);
  t.same(
    readStringFields(
      encodeFields([
        [3, 7],
        [1, 'id'],
        [2, 'x'],
      ]),
      [1],
    ),
    new Map([[1, 'id']]),
  );
  t.throws(() => readStringFields(Buffer.from([0x08]), [1]), /truncated varint/);
  t.throws(() => readStringFields(Buffer.from([0x0b]), [1]), /unsupported wire type 3/);
  t.throws(() => decodeEvent({ typeUrl: 'containerd.events.TaskStart', value: encodeFields([[2, 5]]) }), /empty container id/);
  t.equal(decodeEvent({ typeUrl: 'containerd.events.TaskOOM', value: encodeFields([[1, 'x']]) }), undefined);
});

t.test('real containerd', async (t) => {
  if (!(await requireDaemon(t, 'containerd'))) return;
  const id = randomBytes(32).toString('hex');
  const uid = randomUUID();
  const cgroup = `/kubepods/besteffort/pod${uid}/${id}`;
  const c = client('/run/containerd/containerd.sock', 5_000, ['k8s.io']);
  const ac = new AbortController();
  // A container with no task, only there to produce events until one arrives (see below).
  const probe = `podvisor-t-containerd-client-probe-${process.pid}-${randomBytes(4).toString('hex')}`;
  t.teardown(async () => {
    ac.abort();
    await removeCtrContainer(probe);
    await removeCtrContainer(id);
    removeCgroupDirs(cgroup);
    removeCgroupDirs(`/kubepods/besteffort/pod${uid}`);
    await c.close();
  });

  const v = await c.version(never());
  t.match(v.version, /^v?\d+\.\d+/, `version ${v.version}`);
  t.equal(v.apiVersion, '');

  const events: RuntimeEvent[] = [];
  const probeEvents: RuntimeEvent[] = [];
  const eventsDone = c.events((e) => {
    if (e.id === id) events.push(e);
    if (e.id === probe) probeEvents.push(e);
  }, ac.signal);
  // The subscription has reached containerd once it delivers an event, and only then may the container start (its
  // create event is asserted below). Relabelling the probe container emits /containers/update; repeated until one
  // arrives, since one sent before the subscription is simply not delivered.
  await run('ctr', ['-n', 'k8s.io', 'containers', 'create', 'docker.io/library/podvisor-test:1', probe], { timeoutMs: 60_000 });
  let round = 0;
  await until(
    'the event stream to deliver an update of the probe container',
    async () => {
      await run('ctr', ['-n', 'k8s.io', 'containers', 'label', probe, `round=${round++}`]);
      return probeEvents.some((e) => e.action === 'update');
    },
    { everyMs: 200, timeoutMs: 60_000 },
  );
  await removeCtrContainer(probe);

  await run('ctr', [
    '-n',
    'k8s.io',
    'run',
    '-d',
    '--cgroup',
    cgroup,
    '--label',
    'io.kubernetes.pod.name=pv-test',
    '--label',
    'io.kubernetes.pod.namespace=podvisor',
    '--label',
    `io.kubernetes.pod.uid=${uid}`,
    '--label',
    'io.kubernetes.container.name=app',
    'docker.io/library/podvisor-test:1',
    id,
    'sleep',
    '300',
  ]);

  const waitFor = (what: string, ok: () => boolean): Promise<void> =>
    until(what, ok, { everyMs: 50, timeoutMs: 60_000, describe: () => JSON.stringify(events) });
  await waitFor('create and start events', () => events.some((e) => e.action === 'start'));

  const listed = (await c.list(never())).find((x) => x.id === id);
  const expected = {
    runtime: 'containerd',
    id,
    name: id,
    image: 'docker.io/library/podvisor-test:1',
    labels: {
      'io.kubernetes.pod.name': 'pv-test',
      'io.kubernetes.pod.namespace': 'podvisor',
      'io.kubernetes.pod.uid': uid,
      'io.kubernetes.container.name': 'app',
    },
    kind: 'container',
    networkOwner: true,
    namespace: 'k8s.io',
    cgroupsPath: cgroup,
    snapshotKey: id,
    pid: Number,
  };
  t.match(listed, expected, 'list');
  t.ok((listed?.pid ?? 0) > 1, `pid ${listed?.pid}`);
  t.ok((listed?.createdAt ?? 0) > Date.now() / 1000 - 120, 'createdAt is recent');
  t.match(listed?.env, { PATH: String });
  const inspected = await c.inspect(id, never());
  t.match(inspected, { ...expected, pid: listed?.pid }, 'inspect');
  t.equal(await c.inspect(randomBytes(32).toString('hex'), never()), undefined, 'inspect unknown id');

  await run('ctr', ['-n', 'k8s.io', 'task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor('die event', () => events.some((e) => e.action === 'die'));
  await run('ctr', ['-n', 'k8s.io', 'task', 'rm', '-f', id]);
  await run('ctr', ['-n', 'k8s.io', 'container', 'rm', id]);
  await waitFor('destroy event', () => events.some((e) => e.action === 'destroy'));
  t.same([...new Set(events.map((e) => e.action))], ['create', 'start', 'die', 'destroy'], 'actions in order');
  t.equal(await c.inspect(id, never()), undefined, 'gone after rm');
  ac.abort();
  await eventsDone;
});
