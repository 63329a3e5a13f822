import t, { type Test } from 'tap';
import { CrioClient, createdSeconds } from '../../src/runtime/crio/client.js';
import type { RuntimeContainer } from '../../src/model/runtime.js';
import { FakeCrio } from './fixtures/fake-crio.js';
import { socketPath } from '../support/socket-path.js';

const CTR = 'c0ffee'.padEnd(64, '1');
const INFRA = 'beef'.padEnd(64, '2');
const UID = '0b4f3a52-9c1d-4e8f-a6b7-1c2d3e4f5a6b';
const LAYER = 'f1e2d3c4'.padEnd(64, '3');

const podLabels = {
  'io.kubernetes.pod.name': 'web-7d9c',
  'io.kubernetes.pod.namespace': 'default',
  'io.kubernetes.pod.uid': UID,
};

/** GET /containers/<id> of a workload container, as CRI-O 1.28 writes it (every field, Go's order). */
const CONTAINER_BODY = {
  name: `k8s_nginx_web-7d9c_default_${UID}_0`,
  pid: 4242,
  image: 'docker.io/library/nginx:1.25',
  image_ref: 'docker.io/library/nginx@sha256:' + 'a'.repeat(64),
  // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
  created_time: 1700000000123456789,
  labels: { ...podLabels, 'io.kubernetes.container.name': 'nginx' },
  annotations: {
    'io.kubernetes.container.hash': '1a2b3c4d',
    'io.kubernetes.container.restartCount': '0',
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.SandboxID': INFRA,
  },
  crio_annotations: null,
  log_path: `/var/log/pods/default_web-7d9c_${UID}/nginx/0.log`,
  root: `/var/lib/containers/storage/overlay/${LAYER}/merged`,
  sandbox: INFRA,
  ip_addresses: ['10.85.0.12'],
  host_network: false,
};

/** The pod's infra (pause) container. */
const INFRA_BODY = {
  name: `k8s_POD_web-7d9c_default_${UID}_0`,
  pid: 4100,
  image: 'registry.k8s.io/pause:3.9',
  image_ref: 'registry.k8s.io/pause@sha256:' + 'b'.repeat(64),
  created_time: 1699999990000000000,
  labels: { ...podLabels, 'io.kubernetes.container.name': 'POD', app: 'web' },
  annotations: { 'io.kubernetes.cri-o.ContainerType': 'sandbox', 'io.kubernetes.cri-o.HostNetwork': 'false' },
  crio_annotations: null,
  log_path: `/var/log/pods/default_web-7d9c_${UID}/${INFRA}.log`,
  root: `/var/lib/containers/storage/overlay/${'9'.repeat(64)}/merged`,
  sandbox: INFRA,
  ip_addresses: ['10.85.0.12'],
  host_network: false,
};

const never = (): AbortSignal => new AbortController().signal;

async function setup(t: Test, timeoutMs = 2000): Promise<{ fake: FakeCrio; client: CrioClient }> {
  const fake = await new FakeCrio().start();
  fake.containers.set(CTR, CONTAINER_BODY);
  fake.containers.set(INFRA, INFRA_BODY);
  const client = new CrioClient({ endpoint: fake.socketPath, timeoutMs });
  t.teardown(async () => {
    await client.close();
    await fake.stop();
  });
  return { fake, client };
}

t.test('constructor checks the endpoint and the timeout', async (t) => {
  const long = '/run/' + 'x'.repeat(103); // 108 bytes
  t.throws(() => new CrioClient({ endpoint: long, timeoutMs: 1000 }), {
    name: 'CrioError',
    message: `CRI-O socket path ${long} is 108 bytes long; unix socket paths are limited to 107`,
  });
  t.throws(() => new CrioClient({ endpoint: `unix://${long}`, timeoutMs: 1000 }), /108 bytes long/, 'after unix://');
  t.throws(() => new CrioClient({ endpoint: '/run/' + 'é'.repeat(52), timeoutMs: 1000 }), /109 bytes/, 'bytes, not characters');
  const ok = new CrioClient({ endpoint: '/run/' + 'x'.repeat(102), timeoutMs: 1000 }); // 107 bytes
  t.equal(ok.runtime, 'crio');
  await ok.close();
  t.throws(() => new CrioClient({ endpoint: '', timeoutMs: 1000 }), /empty/);
  for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => new CrioClient({ endpoint: '/var/run/crio/crio.sock', timeoutMs }), /timeout must be a positive/);
  }
});

t.test('version: GET /info with Host: crio; no version in the inspect API', async (t) => {
  const { fake, client } = await setup(t);
  t.strictSame(await client.version(never()), { version: '', apiVersion: '' });
  t.strictSame(fake.requests, [{ method: 'GET', url: '/info', host: 'crio' }]);

  const viaScheme = new CrioClient({ endpoint: `unix://${fake.socketPath}`, timeoutMs: 1000 });
  t.strictSame(await viaScheme.version(never()), { version: '', apiVersion: '' }, 'unix:// prefix');
  await viaScheme.close();
});

t.test('version rejects what is not CRI-O', async (t) => {
  const { fake, client } = await setup(t);
  fake.info = { storage_driver: 'overlay', storage_root: '/var/lib/containers/storage' };
  await t.rejects(client.version(never()), { name: 'CrioError', message: /without string storage_driver, storage_root and cgroup_driver/ });
  fake.info = ['overlay'];
  await t.rejects(client.version(never()), /without string storage_driver/);
  fake.overrides.set('/info', { status: 200, body: '<html>hello' });
  await t.rejects(client.version(never()), { name: 'CrioError', message: 'CRI-O GET /info answered invalid JSON: <html>hello' });
  fake.overrides.set('/info', { status: 200, body: '' });
  await t.rejects(client.version(never()), /invalid JSON: \(empty body\)/);
  fake.overrides.set('/info', { status: 500, body: 'storage is broken\nstack trace…\n', contentType: 'text/plain' });
  await t.rejects(client.version(never()), {
    name: 'CrioError',
    message: 'CRI-O GET /info answered HTTP 500: storage is broken',
    httpStatus: 500,
  });
  fake.overrides.set('/info', { status: 404, body: '' });
  await t.rejects(client.version(never()), { message: 'CRI-O GET /info answered HTTP 404', httpStatus: 404 });
});

t.test('list: the inspect API has none, the cache fills through inspect', async (t) => {
  const { fake, client } = await setup(t);
  t.strictSame(await client.list(never()), []);
  t.equal(fake.requests.length, 0, 'no request');
});

t.test('inspect a workload container', async (t) => {
  const { fake, client } = await setup(t);
  const want: RuntimeContainer = {
    runtime: 'crio',
    id: CTR,
    name: `k8s_nginx_web-7d9c_default_${UID}_0`,
    image: 'docker.io/library/nginx:1.25',
    labels: { ...podLabels, 'io.kubernetes.container.name': 'nginx' },
    kind: 'container',
    networkOwner: false,
    pid: 4242,
    createdAt: 1700000000,
    logDir: `/var/log/pods/default_web-7d9c_${UID}/nginx`,
    upperDir: `/var/lib/containers/storage/overlay/${LAYER}/diff`,
  };
  t.strictSame(await client.inspect(CTR, never()), want);
  t.strictSame(fake.requests, [{ method: 'GET', url: `/containers/${CTR}`, host: 'crio' }]);
});

t.test('inspect the infra (POD) container: a sandbox that owns the network', async (t) => {
  const { client } = await setup(t);
  const c = await client.inspect(INFRA, never());
  t.match(c, {
    id: INFRA,
    name: `k8s_POD_web-7d9c_default_${UID}_0`,
    image: 'registry.k8s.io/pause:3.9',
    kind: 'sandbox',
    networkOwner: true,
    pid: 4100,
    createdAt: 1699999990,
    logDir: `/var/log/pods/default_web-7d9c_${UID}`,
    upperDir: `/var/lib/containers/storage/overlay/${'9'.repeat(64)}/diff`,
  });
  t.equal(c?.labels['io.kubernetes.container.name'], 'POD');
});

t.test('either marker makes a sandbox', async (t) => {
  const { fake, client } = await setup(t);
  fake.containers.set('a', { ...INFRA_BODY, labels: podLabels }); // annotation only
  fake.containers.set('b', { ...INFRA_BODY, annotations: null }); // label only
  fake.containers.set('c', { ...CONTAINER_BODY, annotations: { 'io.kubernetes.cri-o.ContainerType': 'container' } });
  t.match(await client.inspect('a', never()), { kind: 'sandbox', networkOwner: true });
  t.match(await client.inspect('b', never()), { kind: 'sandbox', networkOwner: true });
  t.match(await client.inspect('c', never()), { kind: 'container', networkOwner: false });
});

t.test('nil maps, a stopped container, no root or log path, an older CRI-O without name', async (t) => {
  const { fake, client } = await setup(t);
  fake.containers.set('stopped', { ...CONTAINER_BODY, pid: 0, created_time: 0, labels: null, annotations: null, log_path: '', root: '' });
  t.strictSame(await client.inspect('stopped', never()), {
    runtime: 'crio',
    id: 'stopped',
    name: CONTAINER_BODY.name,
    image: 'docker.io/library/nginx:1.25',
    labels: {},
    kind: 'container',
    networkOwner: false,
  });
  fake.containers.set('old', { pid: 7, image: 'busybox', created_time: 1500000000000000000, labels: {}, annotations: {} });
  t.match(await client.inspect('old', never()), { name: '', image: 'busybox', pid: 7, createdAt: 1500000000 });
  fake.containers.set('vfs', { ...CONTAINER_BODY, root: '/var/lib/containers/storage/vfs/dir/' + LAYER });
  t.match(await client.inspect('vfs', never()), { upperDir: `/var/lib/containers/storage/vfs/dir/${LAYER}` }, 'not overlay: the rootfs dir');
});

t.test('created_time keeps its exact seconds although int64 ns exceed 2^53', async (t) => {
  const { fake, client } = await setup(t);
  const ns = '1700000000999999999';
  t.equal(Math.floor(Number(ns) / 1e9), 1700000001, 'JSON.parse alone would round into the next second');
  fake.containers.set('edge', JSON.stringify({ ...CONTAINER_BODY, created_time: 0 }).replace('"created_time":0', `"created_time":${ns}`));
  t.equal((await client.inspect('edge', never()))?.createdAt, 1700000000);

  // createdSeconds on its own: a look-alike inside a string is not the literal that was parsed.
  // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
  const decoy = JSON.stringify({ name: '"created_time":5', created_time: 1700000000123456789 });
  // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
  t.equal(createdSeconds(1700000000123456789, decoy), 1700000000);
  t.equal(createdSeconds(5e18, '{"created_time":4999999999999999999}'), 4999999999, 'the digits, not the rounded number');
  // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
  t.equal(createdSeconds(1700000000123456789, '{"created_time":5}'), 1700000000, 'digits that are not the parsed literal: the number');
  t.equal(createdSeconds(undefined, '{}'), undefined);
  t.equal(createdSeconds(-6795364578871345152, '{}'), undefined, "Go's zero time");
});

t.test('inspect: unknown id is undefined; the id is escaped', async (t) => {
  const { fake, client } = await setup(t);
  t.equal(await client.inspect('f'.repeat(64), never()), undefined);
  t.equal(await client.inspect('../info', never()), undefined);
  t.equal(fake.requests[1]?.url, '/containers/..%2Finfo', 'cannot reach another endpoint');
});

t.test('inspect: other statuses and bodies reject with the reason', async (t) => {
  const { fake, client } = await setup(t);
  fake.overrides.set(`/containers/${CTR}`, { status: 500, body: `container ${CTR} state is nil\nmore\n`, contentType: 'text/plain' });
  await t.rejects(client.inspect(CTR, never()), {
    name: 'CrioError',
    code: 'PODVISOR_RUNTIME_CRIO',
    httpStatus: 500,
    message: `CRI-O GET /containers/${CTR} answered HTTP 500: container ${CTR} state is nil`,
  });
  fake.overrides.set(`/containers/${CTR}`, { status: 502, body: 'x'.repeat(500) });
  await t.rejects(client.inspect(CTR, never()), { message: new RegExp(`HTTP 502: x{200}…$`) }, 'long lines are cut');
  fake.overrides.set(`/containers/${CTR}`, { status: 200, body: '{"name": "k8s_x", "pid": 12' });
  await t.rejects(client.inspect(CTR, never()), { name: 'CrioError', message: /answered invalid JSON: \{"name": "k8s_x"/ });

  const bad: Array<[unknown, RegExp]> = [
    [[CONTAINER_BODY], /not a JSON object/],
    ['just a string', /not a JSON object/],
    [null, /not a JSON object/],
    [{ ...CONTAINER_BODY, name: 42 }, /"name" is not a string/],
    [{ ...CONTAINER_BODY, pid: '4242' }, /"pid" is not an integer/],
    [{ ...CONTAINER_BODY, pid: 1.5 }, /"pid" is not an integer/],
    [{ ...CONTAINER_BODY, created_time: '1700000000123456789' }, /"created_time" is not an integer/],
    [{ ...CONTAINER_BODY, labels: { a: 1 } }, /"labels" is not a map of strings/],
    [{ ...CONTAINER_BODY, annotations: ['x'] }, /"annotations" is not a map of strings/],
    [{ ...CONTAINER_BODY, root: null }, /"root" is not a string/],
  ];
  for (const [body, message] of bad) {
    fake.overrides.set(`/containers/${CTR}`, { status: 200, body: JSON.stringify(body) });
    await t.rejects(client.inspect(CTR, never()), { name: 'CrioError', message }, JSON.stringify(body).slice(0, 60));
  }
});

t.test('a connection dropped mid-answer and an oversized answer reject', async (t) => {
  const { fake, client } = await setup(t);
  fake.overrides.set(`/containers/${CTR}`, 'truncate');
  await t.rejects(client.inspect(CTR, never()), {
    name: 'CrioError',
    message: new RegExp(`^CRI-O GET /containers/${CTR} on .* failed: the connection closed before the whole answer arrived$`),
  });
  fake.overrides.set(`/containers/${CTR}`, { status: 200, body: `{"name":"${'x'.repeat(5 * 1024 * 1024)}"}` });
  await t.rejects(client.inspect(CTR, never()), { name: 'CrioError', message: /answered more than 4194304 bytes/ });
  fake.overrides.clear();
  t.match(await client.inspect(CTR, never()), { id: CTR }, 'and the next call works');
});

t.test('a hung socket rejects within the timeout', async (t) => {
  const { fake, client } = await setup(t, 150);
  fake.overrides.set('/info', 'hang');
  fake.overrides.set(`/containers/${CTR}`, 'hang');
  const calls: Array<() => Promise<unknown>> = [() => client.version(never()), () => client.inspect(CTR, never())];
  // The fake never answers: the only way to this rejection is the client's own 150 ms timeout, which it names.
  for (const call of calls) await t.rejects(call(), { name: 'CrioError', message: /did not answer within 150 ms/ });
  fake.overrides.clear();
  t.strictSame(await client.version(never()), { version: '', apiVersion: '' }, 'and the next call works');
});

t.test("the caller's signal aborts a call", async (t) => {
  const { fake, client } = await setup(t, 10_000);
  fake.overrides.set('/info', 'hang');
  const ac = new AbortController();
  const pending = client.version(ac.signal);
  setTimeout(() => ac.abort(new Error('scrape deadline')), 50);
  // "was aborted", not "did not answer within 10000 ms": the signal ended it, not the client's timeout.
  await t.rejects(pending, { name: 'CrioError', message: /GET \/info .* was aborted$/ });

  const aborted = AbortSignal.abort(new Error('already'));
  await t.rejects(client.version(aborted), /already/, 'an aborted signal rejects before any request');
  await t.rejects(client.list(aborted), /already/);
  await t.rejects(client.inspect(CTR, aborted), /already/);
});

t.test('socketMissing: whether the socket file exists', async (t) => {
  const { fake, client } = await setup(t);
  t.equal(client.socketMissing(), false);
  await fake.stop();
  t.equal(client.socketMissing(), true, 'stopped: the socket file is gone');
  const prefixed = new CrioClient({ endpoint: `unix://${socketPath('nocrio')}`, timeoutMs: 1000 });
  t.equal(prefixed.socketMissing(), true, 'a unix:// endpoint that was never created');
  await prefixed.close();
});

t.test('no CRI-O: a clear rejection', async (t) => {
  const client = new CrioClient({ endpoint: socketPath('nocrio'), timeoutMs: 1000 });
  t.teardown(() => client.close());
  await t.rejects(client.version(never()), { name: 'CrioError', message: /^CRI-O is not listening on .* \(ENOENT\)$/ });
  await t.rejects(client.inspect(CTR, never()), /not listening/);
});

t.test('CRI-O restarts', async (t) => {
  const { fake, client } = await setup(t);
  t.ok(await client.inspect(CTR, never()));
  await fake.stop();
  await t.rejects(client.inspect(CTR, never()), /not listening/, 'while it is down');
  await fake.start();
  t.match(await client.inspect(CTR, never()), { id: CTR }, 'back up');

  await fake.stop();
  await fake.start();
  t.match(await client.inspect(CTR, never()), { id: CTR }, 'restarted between two calls');
});

t.test('a kept-alive connection dropped before the answer is retried once on a new one', async (t) => {
  const { fake, client } = await setup(t);
  t.ok(await client.inspect(CTR, never()));
  fake.dropNextReusedConnection = true;
  t.match(await client.inspect(INFRA, never()), { id: INFRA });
  t.equal(fake.dropNextReusedConnection, false, 'the drop happened');
  t.strictSame(
    fake.requests.map((r) => r.url),
    [`/containers/${CTR}`, `/containers/${INFRA}`],
  );
});

t.test('close: later calls reject', async (t) => {
  const { client } = await setup(t);
  t.ok(await client.inspect(CTR, never()));
  await client.close();
  await t.rejects(client.inspect(CTR, never()), { name: 'CrioError', message: 'CRI-O client is closed' });
  await t.rejects(client.version(never()), /closed/);
  await t.rejects(client.list(never()), /closed/);
});
