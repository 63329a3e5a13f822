/**
 * DockerClient against a fake Engine API on a unix socket (wire format, faults, timeouts) and against the real
 * Docker Engine (mapping of a Kubernetes-shaped container, list, events).
 */
import { removeCgroupDirs } from '../support/cgroups.js';
import t from 'tap';
import type { Test } from 'tap';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DockerClient, INSPECT_CONCURRENCY } from '../../src/runtime/docker/client.js';
import { DockerError } from '../../src/errors.js';
import { parseDockerEndpoint } from '../../src/runtime/docker/endpoint.js';
import { JsonLineDecoder, MAX_LINE_CHARS } from '../../src/runtime/docker/json-lines.js';
import { containerFromInspect, eventFromMessage, rfc3339ToUnix } from '../../src/runtime/docker/map.js';
import type { RuntimeEvent } from '../../src/runtime/types.js';
import { requireDaemon, run } from '../support/daemons.js';
import { FAKE_ID, FakeDocker, SANDBOX_ID, inspectBody, sendJson, sendText, startHungSocket } from './fixtures/fake-docker.js';
import { socketPath } from '../support/socket-path.js';
import { until } from '../support/poll.js';

/** The timeout under test (hung daemons); other fake-daemon clients get SLACK so a loaded machine cannot flake them. */
const TIMEOUT = 300;
const SLACK = 5000;
const never = (): AbortSignal => new AbortController().signal;

async function fake(t: Test, timeoutMs = SLACK): Promise<{ docker: FakeDocker; client: DockerClient }> {
  const docker = await new FakeDocker().start();
  const client = new DockerClient({ endpoint: docker.endpoint, timeoutMs });
  t.teardown(async () => {
    await client.close();
    await docker.stop();
  });
  return { docker, client };
}

t.test('version', async (t) => {
  t.test('answers the raw version, even "dev" and ""', async (t) => {
    const { docker, client } = await fake(t);
    t.same(await client.version(never()), { version: '24.0.7', apiVersion: '1.43' });
    docker.versionBody = { Version: 'dev', ApiVersion: '1.45' };
    t.same(await client.version(never()), { version: 'dev', apiVersion: '1.45' });
    docker.versionBody = { Version: '', ApiVersion: '' };
    t.same(await client.version(never()), { version: '', apiVersion: '' });
    docker.versionBody = { Os: 'linux' };
    t.same(await client.version(never()), { version: '', apiVersion: '' }, 'missing fields are empty');
    t.same(docker.requests, ['/version', '/version', '/version', '/version'], 'unversioned path');
  });

  t.test('a body that is not JSON rejects clearly', async (t) => {
    const { docker, client } = await fake(t);
    docker.routes.set('/version', (_req, res) => sendText(res, 200, '{"Version": "24.0.7", oops'));
    await t.rejects(client.version(never()), {
      name: 'DockerError',
      message: `docker at ${docker.endpoint} returned an unexpected body for /version: not JSON: {"Version": "24.0.7", oops`,
    });
    docker.routes.set('/version', (_req, res) => sendText(res, 200, ''));
    await t.rejects(client.version(never()), { message: /unexpected body for \/version: not JSON: \(empty\)$/ });
  });

  t.test('JSON of the wrong shape rejects clearly', async (t) => {
    const { docker, client } = await fake(t);
    docker.versionBody = ['24.0.7'];
    await t.rejects(client.version(never()), { message: /unexpected body for \/version: body is an array, not an object$/ });
    docker.versionBody = { Version: 24, ApiVersion: '1.43' };
    await t.rejects(client.version(never()), { message: /unexpected body for \/version: Version is a number, not a string$/ });
  });

  t.test('HTTP 500 rejects with the status and the daemon message', async (t) => {
    const { docker, client } = await fake(t);
    docker.routes.set('/version', (_req, res) => sendJson(res, 500, { message: 'daemon is  shutting\ndown' }));
    const err = await client.version(never()).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, DockerError);
    t.match(err, {
      code: 'PODVISOR_RUNTIME_DOCKER',
      httpStatus: 500,
      message: `docker at ${docker.endpoint} answered HTTP 500 for GET /version: daemon is shutting down`,
    });
    docker.routes.set('/version', (_req, res) => sendText(res, 500, 'plain text panic', 'text/plain'));
    await t.rejects(client.version(never()), { message: /answered HTTP 500 for GET \/version: plain text panic$/ });
  });

  t.test('no daemon: connect error in one sentence', async (t) => {
    const endpoint = `unix://${socketPath('none')}`;
    const client = new DockerClient({ endpoint, timeoutMs: SLACK });
    t.teardown(() => client.close());
    await t.rejects(client.version(never()), { message: new RegExp(`^docker at ${endpoint}: connect ENOENT .* \\(GET /version\\)$`) });
  });

  t.test('a hung daemon rejects within the timeout', async (t) => {
    const hung = await startHungSocket();
    const client = new DockerClient({ endpoint: hung.endpoint, timeoutMs: TIMEOUT });
    t.teardown(async () => {
      await client.close();
      await hung.close();
    });
    const calls: Array<() => Promise<unknown>> = [() => client.version(never()), () => client.list(never()), () => client.inspect(FAKE_ID, never())];
    // The socket never answers: the only way to this rejection is the client's own timeout, which it names.
    for (const call of calls) await t.rejects(call(), { message: /: GET \/\S+ timed out after 300 ms$/ });
  });

  t.test("the caller's signal aborts a hung call", async (t) => {
    const hung = await startHungSocket();
    const client = new DockerClient({ endpoint: hung.endpoint, timeoutMs: 10_000 });
    t.teardown(async () => {
      await client.close();
      await hung.close();
    });
    // "was aborted", not "timed out after 10000 ms": the caller's signal ended it, not the client's timeout.
    await t.rejects(client.version(AbortSignal.timeout(100)), { message: /GET \/version was aborted$/ });
    const ctl = new AbortController();
    ctl.abort();
    await t.rejects(client.version(ctl.signal), { message: /was aborted/ }, 'already aborted');
  });

  t.test('a daemon that restarts: the call while down rejects, the next one succeeds', async (t) => {
    const { docker, client } = await fake(t);
    t.same((await client.version(never())).version, '24.0.7');
    await docker.stop();
    await t.rejects(client.version(never()), { message: /connect (ENOENT|ECONNREFUSED)/ });
    docker.versionBody = { Version: '25.0.0', ApiVersion: '1.44' };
    await docker.start();
    t.same(await client.version(never()), { version: '25.0.0', apiVersion: '1.44' });
  });

  t.test('over tcp://', async (t) => {
    const server = http.createServer((_req, res) => sendJson(res, 200, { Version: '26.1.0', ApiVersion: '1.45' }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const client = new DockerClient({ endpoint: `tcp://127.0.0.1:${port}`, timeoutMs: SLACK });
    t.teardown(async () => {
      await client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    t.same(await client.version(never()), { version: '26.1.0', apiVersion: '1.45' });
  });
});

t.test('endpoints', async (t) => {
  t.same(parseDockerEndpoint('unix:///var/run/docker.sock'), { kind: 'unix', socketPath: '/var/run/docker.sock' });
  t.same(parseDockerEndpoint('tcp://10.0.0.1:2376'), { kind: 'tcp', host: '10.0.0.1', port: 2376 });
  t.same(parseDockerEndpoint('tcp://[::1]:2375'), { kind: 'tcp', host: '::1', port: 2375 });
  t.same(parseDockerEndpoint('tcp://docker'), { kind: 'tcp', host: 'docker', port: 2375 });
  t.throws(() => parseDockerEndpoint('/var/run/docker.sock'), { code: 'PODVISOR_CONFIG', message: /expected unix:\/\/\/path or tcp:\/\/host:port/ });
  t.throws(() => parseDockerEndpoint('unix://relative.sock'), { message: /absolute socket path/ });
  t.throws(() => parseDockerEndpoint(`unix:///${'x'.repeat(120)}`), { message: /longer than 107 bytes/ });
  t.throws(() => parseDockerEndpoint('tcp://host:2375/path'), { message: /expected tcp:\/\/host:port/ });
  t.throws(() => new DockerClient({ endpoint: 'npipe:////./pipe/docker_engine', timeoutMs: 1 }), { code: 'PODVISOR_CONFIG' });
});

t.test('socketMissing: a unix socket that does not exist; never for tcp://', async (t) => {
  const { docker, client } = await fake(t);
  t.equal(client.socketMissing(), false, 'the fake daemon listens there');
  await docker.stop();
  t.equal(client.socketMissing(), true, 'stopped: its socket file is gone');
  const none = new DockerClient({ endpoint: `unix://${socketPath('none')}`, timeoutMs: SLACK });
  t.equal(none.socketMissing(), true, 'never created');
  await none.close();
  const tcp = new DockerClient({ endpoint: 'tcp://127.0.0.1:1', timeoutMs: SLACK });
  t.equal(tcp.socketMissing(), false);
  await tcp.close();
});

t.test('inspect', async (t) => {
  t.test('maps a container', async (t) => {
    const { docker, client } = await fake(t);
    t.same(await client.inspect(FAKE_ID, never()), {
      runtime: 'docker',
      id: FAKE_ID,
      name: 'web',
      image: 'nginx:1.25',
      labels: { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.container.name': 'web' },
      env: { path: '/usr/bin', app_mode: 'prod', empty: '' },
      pid: 4242,
      createdAt: Date.UTC(2024, 4, 1, 10, 0, 0) / 1000,
      startedAt: Date.UTC(2024, 4, 1, 10, 0, 1) / 1000,
      kind: 'container',
      networkOwner: true,
      upperDir: '/var/lib/docker/overlay2/x1/diff',
      logDir: `/var/lib/docker/containers/${FAKE_ID}`,
    });
    t.same(docker.requests, [`/containers/${FAKE_ID}/json`]);
  });

  t.test('404 is undefined; the id is escaped', async (t) => {
    const { docker, client } = await fake(t);
    t.equal(await client.inspect('f'.repeat(64), never()), undefined);
    t.equal(await client.inspect('../version', never()), undefined);
    t.same(docker.requests, [`/containers/${'f'.repeat(64)}/json`, '/containers/..%2Fversion/json']);
  });

  t.test('a malformed body rejects naming the field', async (t) => {
    const { docker, client } = await fake(t);
    docker.containers.set(FAKE_ID, inspectBody(FAKE_ID, { Config: { Image: 'x', Labels: { a: 1 } } }));
    await t.rejects(client.inspect(FAKE_ID, never()), {
      message: `docker at ${docker.endpoint} returned an unexpected body for /containers/${FAKE_ID}/json: Config.Labels.a is a number, not a string`,
    });
    docker.containers.set(FAKE_ID, { Name: '/x' });
    await t.rejects(client.inspect(FAKE_ID, never()), { message: /\/json: Id is missing$/ });
    docker.containers.set(FAKE_ID, 'a string');
    await t.rejects(client.inspect(FAKE_ID, never()), { message: /\/json: body is a string, not an object$/ });
    docker.containers.set(FAKE_ID, inspectBody(FAKE_ID, { State: { Pid: '12' } }));
    await t.rejects(client.inspect(FAKE_ID, never()), { message: /State\.Pid is a string, not a number$/ });
    docker.containers.set(FAKE_ID, inspectBody(FAKE_ID, { Config: { Image: 'x', Env: 'A=1' } }));
    await t.rejects(client.inspect(FAKE_ID, never()), { message: /Config\.Env is a string, not an array$/ });
  });

  t.test('HTTP 500 on inspect rejects', async (t) => {
    const { docker, client } = await fake(t);
    docker.routes.set(`/containers/${FAKE_ID}/json`, (_req, res) => sendJson(res, 500, { message: 'boom' }));
    await t.rejects(client.inspect(FAKE_ID, never()), { httpStatus: 500, message: /answered HTTP 500 for GET \/containers\/a+\/json: boom$/ });
  });
});

t.test('containerFromInspect edge cases', async (t) => {
  const base = { Id: FAKE_ID, Name: '/x' };
  t.same(
    containerFromInspect({ ...base, Config: { Image: 'i', Labels: null, Env: null }, State: { Pid: 0, StartedAt: '0001-01-01T00:00:00Z' } }),
    {
      runtime: 'docker',
      id: FAKE_ID,
      name: 'x',
      image: 'i',
      labels: {},
      env: {},
      kind: 'container',
      networkOwner: true,
    },
    'null labels/env, never started, not running, no GraphDriver/LogPath',
  );
  t.same(
    containerFromInspect({ ...base, LogPath: '', GraphDriver: { Name: 'overlayfs', Data: null } }),
    {
      runtime: 'docker',
      id: FAKE_ID,
      name: 'x',
      image: '',
      labels: {},
      env: {},
      kind: 'container',
      networkOwner: true,
    },
    'containerd image store: no dirs',
  );
  const kind = (labels: Record<string, string>, NetworkMode: string): unknown => {
    const c = containerFromInspect({ ...base, Config: { Labels: labels }, HostConfig: { NetworkMode } });
    return { kind: c.kind, networkOwner: c.networkOwner };
  };
  t.same(kind({ 'io.kubernetes.docker.type': 'podsandbox' }, 'default'), { kind: 'sandbox', networkOwner: true });
  t.same(kind({ 'io.kubernetes.container.name': 'POD' }, 'none'), { kind: 'sandbox', networkOwner: true });
  t.same(kind({ 'io.kubernetes.docker.type': 'container' }, `container:${SANDBOX_ID}`), { kind: 'container', networkOwner: false });
  t.same(kind({}, 'host'), { kind: 'container', networkOwner: false });
  t.same(kind({}, 'my-net'), { kind: 'container', networkOwner: true });
  t.equal(rfc3339ToUnix('2024-05-01T12:00:00.999999999+02:00'), Date.UTC(2024, 4, 1, 10, 0, 0) / 1000);
  t.equal(rfc3339ToUnix('2024-05-01 12:00:00'), undefined);
  t.notOk('createdAt' in containerFromInspect({ ...base, Created: 'yesterday' }), 'unparsable Created is absent');
});

t.test('list', async (t) => {
  t.test('lists all containers and inspects each, skipping ones removed meanwhile', async (t) => {
    const { docker, client } = await fake(t);
    docker.containers.set(
      SANDBOX_ID,
      inspectBody(SANDBOX_ID, { Name: '/k8s_POD_web-0', Config: { Image: 'pause:3.9', Labels: { 'io.kubernetes.docker.type': 'podsandbox' } } }),
    );
    const gone = 'd'.repeat(64);
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, [{ Id: FAKE_ID }, { Id: gone }, { Id: SANDBOX_ID }]));
    const list = await client.list(never());
    t.same(
      list.map((c) => [c.id, c.name, c.kind]),
      [
        [FAKE_ID, 'web', 'container'],
        [SANDBOX_ID, 'k8s_POD_web-0', 'sandbox'],
      ],
    );
    t.equal(docker.requests[0], '/containers/json?all=true');
    t.same(docker.requests.slice(1).sort(), [FAKE_ID, SANDBOX_ID, gone].map((id) => `/containers/${id}/json`).sort());
  });

  t.test('onProgress: after the list request and after each inspect, not for known containers', async (t) => {
    const { docker, client } = await fake(t);
    docker.containers.set(SANDBOX_ID, inspectBody(SANDBOX_ID));
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, [{ Id: FAKE_ID }, { Id: SANDBOX_ID }]));
    const seen: number[] = [];
    const first = await client.list(never(), undefined, () => seen.push(docker.requests.length));
    t.equal(seen.length, 3, 'one call per answered request: the list and 2 inspects');
    t.equal(seen[0], 1, 'the first as soon as the list answered, before any inspect');
    seen.length = 0;
    const cached = first.find((c) => c.id === FAKE_ID);
    await client.list(
      never(),
      (id) => (id === FAKE_ID ? cached : undefined),
      () => seen.push(0),
    );
    t.equal(seen.length, 2, 'the list and the one inspect');
    seen.length = 0;
    docker.routes.set(`/containers/${SANDBOX_ID}/json`, (_req, res) => sendJson(res, 500, { message: 'boom' }));
    await t.rejects(
      client.list(never(), undefined, () => seen.push(0)),
      /HTTP 500/,
    );
    t.equal(seen.length, 2, 'a failed inspect is no progress');
  });

  t.test('containers `known` returns are not inspected again', async (t) => {
    const { docker, client } = await fake(t);
    docker.containers.set(
      SANDBOX_ID,
      inspectBody(SANDBOX_ID, { Name: '/k8s_POD_web-0', Config: { Image: 'pause:3.9', Labels: { 'io.kubernetes.docker.type': 'podsandbox' } } }),
    );
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, [{ Id: FAKE_ID }, { Id: SANDBOX_ID }]));
    const first = await client.list(never());
    const cached = first.find((c) => c.id === FAKE_ID);
    docker.requests.length = 0;
    const again = await client.list(never(), (id) => (id === FAKE_ID ? cached : undefined));
    t.same(docker.requests, ['/containers/json?all=true', `/containers/${SANDBOX_ID}/json`], 'only the unknown one is inspected');
    t.equal(
      again.find((c) => c.id === FAKE_ID),
      cached,
      'the known entry is returned as it was',
    );
    t.same(
      again.map((c) => c.id),
      [FAKE_ID, SANDBOX_ID],
    );
  });

  t.test(`inspects at most ${INSPECT_CONCURRENCY} at once`, async (t) => {
    const { docker, client } = await fake(t);
    const ids = Array.from({ length: 13 }, (_, i) => i.toString(16).padStart(64, '0'));
    for (const id of ids) docker.containers.set(id, inspectBody(id));
    let inFlight = 0;
    let peak = 0;
    for (const id of ids) {
      docker.routes.set(`/containers/${id}/json`, (_req, res) => {
        peak = Math.max(peak, ++inFlight);
        setTimeout(() => {
          inFlight--;
          sendJson(res, 200, inspectBody(id));
        }, 10);
      });
    }
    const list = await client.list(never());
    t.equal(list.length, 14);
    t.equal(peak, INSPECT_CONCURRENCY);
  });

  t.test('malformed list body, and a failing inspect, reject', async (t) => {
    const { docker, client } = await fake(t);
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, { Id: FAKE_ID }));
    await t.rejects(client.list(never()), { message: /unexpected body for \/containers\/json\?all=true: body is an object, not an array$/ });
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, [{ Names: ['/x'] }]));
    await t.rejects(client.list(never()), { message: /: \[0\]\.Id is missing$/ });
    docker.routes.set('/containers/json', (_req, res) => sendJson(res, 200, [{ Id: FAKE_ID }]));
    docker.routes.set(`/containers/${FAKE_ID}/json`, (_req, res) => sendJson(res, 500, { message: 'boom' }));
    await t.rejects(client.list(never()), { httpStatus: 500, message: /answered HTTP 500 for GET \/containers\/a+\/json: boom$/ });
  });
});

t.test('events', async (t) => {
  const ev = (action: string, id: string, type = 'container'): string =>
    JSON.stringify({
      status: action,
      id,
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: { name: 'web', image: 'nginx' } },
      scope: 'local',
      time: 1714557600,
      // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
      timeNano: 1714557600123456789,
    });

  t.test('decodes events split across chunks, skips garbage, resolves when the daemon ends the stream', async (t) => {
    const { docker, client } = await fake(t);
    const got: RuntimeEvent[] = [];
    const done = client.events((e) => got.push(e), never());
    await docker.waitForEventStreams();
    t.same(docker.requests, ['/events?filters=' + encodeURIComponent('{"type":["container"]}')]);
    const first = ev('start', FAKE_ID);
    const second = ev('exec_start: sh -c echo hi', FAKE_ID);
    const third = ev('destroy', SANDBOX_ID);
    // The pauses only make separate chunks likely; chunks that arrive merged decode the same, so the machine's load
    // cannot fail this. The stream's end (stop, then done) is what guarantees everything was delivered.
    docker.pushEvents(first.slice(0, 25));
    await new Promise((r) => setTimeout(r, 20));
    docker.pushEvents(first.slice(25) + '\n' + 'this is not json\n' + '[1,2]\n' + second + '\n' + ev('attach', FAKE_ID) + '\n');
    await new Promise((r) => setTimeout(r, 20));
    docker.pushEvents(third.slice(0, 10));
    await new Promise((r) => setTimeout(r, 20));
    docker.pushEvents(third.slice(10) + '\n{"Type":"container","Action":"die"');
    await new Promise((r) => setTimeout(r, 20));
    await docker.stop();
    await done;
    t.same(got, [
      { id: FAKE_ID, action: 'start' },
      { id: SANDBOX_ID, action: 'destroy' },
    ]);
  });

  t.test('aborting the signal resolves; close() ends open streams', async (t) => {
    const { docker, client } = await fake(t);
    const ctl = new AbortController();
    const a = client.events(() => undefined, ctl.signal);
    const b = client.events(() => undefined, never());
    await docker.waitForEventStreams(2);
    ctl.abort();
    await a;
    t.pass('aborted stream resolved');
    await client.close();
    await b;
    t.pass('closed stream resolved');
    const ended = new AbortController();
    ended.abort();
    await client.events(() => undefined, ended.signal);
    t.pass('already aborted resolves at once');
  });

  t.test('a stream that breaks, a daemon that is down or hung, rejects', async (t) => {
    const { docker, client } = await fake(t);
    const broken = client.events(() => undefined, never());
    await docker.waitForEventStreams();
    await docker.crash();
    await t.rejects(broken, { message: /^docker at unix:\S+: the event stream \/events\S+ broke: / });
    await t.rejects(
      client.events(() => undefined, never()),
      { message: /connect (ENOENT|ECONNREFUSED)/ },
    );

    const hung = await startHungSocket();
    const hungClient = new DockerClient({ endpoint: hung.endpoint, timeoutMs: TIMEOUT });
    t.teardown(async () => {
      await hungClient.close();
      await hung.close();
    });
    await t.rejects(
      hungClient.events(() => undefined, never()),
      { message: /GET \/events\S+ timed out after 300 ms$/ },
      'the timeout (named in the message) ends a connection that never answers',
    );
  });

  t.test('an idle stream outlives the timeout; HTTP 500 and a throwing listener reject', async (t) => {
    const { docker, client } = await fake(t, TIMEOUT);
    const got: RuntimeEvent[] = [];
    const done = client.events((e) => got.push(e), never());
    await docker.waitForEventStreams();
    // Time for the 300 ms timeout to fire if it (wrongly) applied to an open stream: a wait for something that must
    // not happen, which a slow machine only makes longer.
    await new Promise((r) => setTimeout(r, 2 * TIMEOUT));
    docker.pushEvents(ev('die', FAKE_ID) + '\n');
    await until('the die event', () => got.length > 0);
    t.same(got, [{ id: FAKE_ID, action: 'die' }]);
    await docker.stop();
    await done;

    await docker.start();
    const boom = new Error('listener bug');
    const failing = client.events(() => {
      throw boom;
    }, never());
    await docker.waitForEventStreams();
    docker.pushEvents(ev('create', FAKE_ID) + '\n');
    await t.rejects(failing, boom);

    docker.routes.set('/events', (_req, res) => sendJson(res, 500, { message: 'no events today' }));
    await t.rejects(
      client.events(() => undefined, never()),
      { httpStatus: 500, message: /answered HTTP 500 for GET \/events\S*: no events today$/ },
    );
  });

  t.test('eventFromMessage', async (t) => {
    t.same(eventFromMessage({ Type: 'container', Action: 'rename', Actor: { ID: 'x' } }), { id: 'x', action: 'rename' });
    t.same(eventFromMessage({ status: 'update', id: 'y' }), { id: 'y', action: 'update' }, 'legacy fields');
    t.same(eventFromMessage({ Type: 'container', Action: 'health_status: healthy', Actor: { ID: 'x' } }), undefined);
    t.same(eventFromMessage({ Type: 'network', Action: 'create', Actor: { ID: 'n' } }), undefined);
    t.same(eventFromMessage({ Type: 'container', Action: 'start', Actor: { ID: '' } }), undefined);
    t.same(eventFromMessage({ Type: 'container', Action: 7, Actor: { ID: 'x' } }), undefined);
  });
});

t.test('JsonLineDecoder', async (t) => {
  const d = new JsonLineDecoder();
  const euro = Buffer.from('{"n":"€"}\n');
  t.same(d.push(euro.subarray(0, 7)), []);
  t.same(d.push(euro.subarray(7)), [{ n: '€' }], 'a UTF-8 character split across chunks');
  t.same(d.push('{"a":1}\n\n  \n{"b":2}\nnull\n"s"\n{"c":'), [{ a: 1 }, { b: 2 }]);
  t.same(d.end(), [], 'an unfinished object at the end is skipped');
  t.equal(d.skipped, 3);
  t.same(d.push('{"d":4}'), []);
  t.same(d.end(), [{ d: 4 }], 'a last line without newline');
  const big = new JsonLineDecoder();
  t.same(big.push('{"x":"' + 'y'.repeat(MAX_LINE_CHARS)), []);
  t.same(big.push('more"}\n{"ok":true}\n'), [{ ok: true }], 'an overlong line is dropped, the next one decoded');
  t.equal(big.skipped, 1);
});

t.test('real Docker Engine', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const client = new DockerClient({ endpoint: 'unix:///var/run/docker.sock', timeoutMs: 5000 });
  const names: string[] = [];
  t.teardown(async () => {
    await client.close();
    if (names.length > 0) await run('docker', ['rm', '-f', ...names], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(`/kubepods/burstable/pod${uid}`);
  });
  const uid = crypto.randomUUID();
  const start = async (name: string): Promise<string> => {
    names.push(name);
    const { stdout } = await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        name,
        '--cgroup-parent',
        `/kubepods/burstable/pod${uid}`,
        '--label',
        `io.kubernetes.pod.name=${name}`,
        '--label',
        'io.kubernetes.pod.namespace=podvisor-test',
        '--label',
        `io.kubernetes.pod.uid=${uid}`,
        '--label',
        'io.kubernetes.container.name=app',
        'podvisor-test:1',
        'sleep',
        '300',
      ],
      { timeoutMs: 60_000 },
    );
    return stdout.trim();
  };

  const v = await client.version(never());
  t.match(v, { version: /./, apiVersion: /^\d+\.\d+$/ }, `docker ${v.version}, API ${v.apiVersion}`);

  const suffix = uid.slice(0, 8);
  const name = `podvisor-dc-${suffix}`;
  const id = await start(name);
  const c = await client.inspect(id, never());
  t.ok(c, 'inspect finds it');
  if (!c) return;
  t.match(c, {
    runtime: 'docker',
    id,
    name,
    image: 'podvisor-test:1',
    kind: 'container',
    networkOwner: true,
    labels: {
      'io.kubernetes.pod.name': name,
      'io.kubernetes.pod.namespace': 'podvisor-test',
      'io.kubernetes.pod.uid': uid,
      'io.kubernetes.container.name': 'app',
    },
  });
  t.ok(c.pid !== undefined && c.pid > 1, `pid ${String(c.pid)}`);
  const now = Date.now() / 1000;
  t.ok(c.startedAt !== undefined && c.startedAt > now - 120 && c.startedAt <= now + 1, 'startedAt is recent');
  t.ok(c.createdAt !== undefined && c.startedAt !== undefined && c.createdAt <= c.startedAt, 'created before started');
  t.ok(c.env && typeof c.env['path'] === 'string', 'env keys are lowercased');
  const { stdout: pidOut } = await run('docker', ['inspect', '-f', '{{.State.Pid}}', id]);
  t.equal(c.pid, Number(pidOut.trim()), 'pid matches docker inspect');

  const listed = await client.list(never());
  t.ok(
    listed.some((x) => x.id === id && x.name === name),
    'list contains it',
  );
  t.equal(await client.inspect('0'.repeat(64), never()), undefined, 'unknown id is undefined');

  const seen: RuntimeEvent[] = [];
  const ctl = new AbortController();
  const stream = client.events((e) => seen.push(e), ctl.signal);
  const waitFor = (pred: (e: RuntimeEvent) => boolean, what: string): Promise<void> =>
    until(`a ${what} event`, () => seen.some(pred), { everyMs: 50, timeoutMs: 60_000, describe: () => JSON.stringify(seen.slice(-5)) });
  // The subscription has reached the daemon once it delivers an event: `docker update` on the first container emits
  // an `update` for it. Repeated until one arrives (an update made before the subscription is simply not delivered).
  let shares = 512;
  await until(
    'the event stream to deliver an update of the first container',
    async () => {
      await run('docker', ['update', '--cpu-shares', String(shares++), id], { timeoutMs: 60_000 });
      return seen.some((e) => e.id === id && e.action === 'update');
    },
    { everyMs: 200, timeoutMs: 60_000 },
  );
  const id2 = await start(`podvisor-dc2-${suffix}`);
  await waitFor((e) => e.id === id2 && e.action === 'start', 'start');
  await run('docker', ['rm', '-f', id2], { timeoutMs: 60_000 });
  await waitFor((e) => e.id === id2 && e.action === 'destroy', 'destroy');
  const actions = seen.filter((e) => e.id === id2).map((e) => e.action);
  t.same(
    actions.filter((a) => a === 'create' || a === 'start' || a === 'die' || a === 'destroy'),
    ['create', 'start', 'die', 'destroy'],
  );
  ctl.abort();
  await stream;
  t.pass('aborted stream resolves');
});
