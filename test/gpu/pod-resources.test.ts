import t, { type Test } from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { PodResourcesError, ResponseShapeError } from '../../src/errors.js';
import { decodeListResponse, loadPodResourcesProtos, lookupMethod, PodResourcesClient, type DeviceAssignment } from '../../src/gpu/pod-resources/client.js';
import { DEFAULT_MAX_AGE_MS, LOG_REPEAT_MS, MAX_BACKOFF_MS, PodResourcesSource } from '../../src/gpu/pod-resources/source.js';
import type { Fields, Logger } from '../../src/log.js';
import { encodeMessage, FakePodResources, type FakePod, type WireField } from '../support/fake-pod-resources.js';
import { FakeClock } from '../support/fake-clock.js';
import { poll, until } from '../support/poll.js';
import { socketPath } from '../support/socket-path.js';

const GPU_A = 'GPU-03f69c50-207a-4d7c-9f1a-000000000001';
const GPU_B = 'GPU-03f69c50-207a-4d7c-9f1a-000000000002';
const GPU_C = 'GPU-03f69c50-207a-4d7c-9f1a-000000000003';
const MIG_1 = 'MIG-9d5e2f1f-1d1f-5a01-8b4b-000000000011';
const MIG_2 = 'MIG-9d5e2f1f-1d1f-5a01-8b4b-000000000012';

/** Several pods: whole GPUs, MIG devices, time-slicing replicas, a non-GPU resource, containers without devices. */
const PODS: FakePod[] = [
  {
    namespace: 'ml',
    name: 'train-0',
    containers: [{ name: 'trainer', devices: [{ resourceName: 'nvidia.com/gpu', ids: [GPU_A, GPU_B] }] }, { name: 'log-shipper' }],
  },
  {
    namespace: 'ml',
    name: 'infer-1',
    containers: [
      {
        name: 'server',
        devices: [
          { resourceName: 'nvidia.com/mig-1g.10gb', ids: [MIG_1] },
          { resourceName: 'example.com/fpga', ids: ['fpga0'] },
        ],
      },
      { name: 'shared', devices: [{ resourceName: 'nvidia.com/gpu.shared', ids: [`${GPU_C}::0`, `${GPU_C}::3`] }] },
      { name: 'empty-resource', devices: [{ resourceName: 'nvidia.com/gpu', ids: [] }] },
    ],
  },
  { namespace: 'kube-system', name: 'coredns-5d78c9869d-abcde', containers: [{ name: 'coredns' }] },
  { namespace: 'default', name: 'no-containers', containers: [] },
  { namespace: 'batch', name: 'mig-single', containers: [{ name: 'job', devices: [{ resourceName: 'nvidia.com/gpu', ids: [MIG_2] }] }] },
];

const EXPECTED: DeviceAssignment[] = [
  { namespace: 'ml', pod: 'train-0', container: 'trainer', resourceName: 'nvidia.com/gpu', deviceIds: [GPU_A, GPU_B] },
  { namespace: 'ml', pod: 'infer-1', container: 'server', resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [MIG_1] },
  { namespace: 'ml', pod: 'infer-1', container: 'server', resourceName: 'example.com/fpga', deviceIds: ['fpga0'] },
  { namespace: 'ml', pod: 'infer-1', container: 'shared', resourceName: 'nvidia.com/gpu.shared', deviceIds: [`${GPU_C}::0`, `${GPU_C}::3`] },
  { namespace: 'batch', pod: 'mig-single', container: 'job', resourceName: 'nvidia.com/gpu', deviceIds: [MIG_2] },
];

const OTHER_PODS: FakePod[] = [
  { namespace: 'ml', name: 'train-1', containers: [{ name: 'trainer', devices: [{ resourceName: 'nvidia.com/gpu', ids: [GPU_C] }] }] },
];
const OTHER_EXPECTED: DeviceAssignment[] = [{ namespace: 'ml', pod: 'train-1', container: 'trainer', resourceName: 'nvidia.com/gpu', deviceIds: [GPU_C] }];

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Fields;
}

function captureLog(): { log: Logger; lines: LogLine[]; at: (level: LogLine['level']) => LogLine[] } {
  const lines: LogLine[] = [];
  const add =
    (level: LogLine['level']) =>
    (msg: string, fields: Fields = {}): void => {
      lines.push({ level, msg, fields });
    };
  return {
    log: { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') },
    lines,
    at: (level) => lines.filter((l) => l.level === level),
  };
}

async function fake(t: Test, pods: FakePod[] = PODS): Promise<FakePodResources> {
  const f = await FakePodResources.start(undefined, pods);
  t.teardown(() => f.stop());
  return f;
}

function client(t: Test, socket: string, timeoutMs = 5_000): PodResourcesClient {
  const c = new PodResourcesClient({ socket, timeoutMs });
  t.teardown(() => c.close());
  return c;
}

/** A source driven by a fake clock; `start()` and `advance(ms)` return once the poll they set off has ended (its next timer is armed). */
function clockedSource(
  t: Test,
  opts: { socket: string; intervalMs?: number; timeoutMs?: number; maxAgeMs?: number; client?: ConstructorParameters<typeof PodResourcesSource>[0]['client'] },
) {
  const clock = new FakeClock(1_000_000);
  const logs = captureLog();
  const source = new PodResourcesSource({
    socket: opts.socket,
    timeoutMs: opts.timeoutMs ?? 5_000,
    intervalMs: opts.intervalMs ?? 1_000,
    ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {}),
    log: logs.log,
    now: () => clock.now(),
    timers: clock,
    ...(opts.client !== undefined ? { client: opts.client } : {}),
  });
  t.teardown(() => source.close());
  /** Waits until the poll in flight has ended: its next timer is armed. */
  const settled = async (): Promise<void> =>
    until('the poll to end (next timer armed)', () => clock.pending === 1, { describe: () => `${clock.pending} timers` });
  const start = async (): Promise<void> => {
    source.start();
    await settled();
  };
  /** Advances the clock by `ms`; when that fires the poll timer, waits for that poll to end. */
  const advance = async (ms: number): Promise<void> => {
    await clock.advance(ms);
    await settled();
  };
  return { clock, logs, source, start, advance };
}

t.test('proto: the service, its method paths, and Get / GetAllocatableResources served from it', async (t) => {
  const def = loadPodResourcesProtos();
  t.equal(lookupMethod(def, 'List').path, '/v1.PodResourcesLister/List');
  t.equal(lookupMethod(def, 'GetAllocatableResources').path, '/v1.PodResourcesLister/GetAllocatableResources');
  t.equal(lookupMethod(def, 'Get').path, '/v1.PodResourcesLister/Get');
  for (const name of ['DynamicResource', 'ClaimResource', 'CDIDevice', 'NUMANode', 'ContainerMemory']) t.ok(def[`v1.${name}`], `v1.${name} is declared`);

  const f = await fake(t);
  f.allocatable = [{ resourceName: 'nvidia.com/gpu', ids: [GPU_A, GPU_B] }];
  const raw = new grpc.Client(`unix://${f.path}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const call = (name: 'Get' | 'GetAllocatableResources', req: object): Promise<unknown> => {
    const m = lookupMethod(def, name);
    return new Promise((resolve, reject) =>
      raw.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, (err, res) => (err ? reject(err) : resolve(res))),
    );
  };
  t.match(await call('Get', { pod_name: 'train-0', pod_namespace: 'ml' }), {
    pod_resources: {
      name: 'train-0',
      namespace: 'ml',
      containers: [{ name: 'trainer', devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [GPU_A, GPU_B] }] }, { name: 'log-shipper' }],
    },
  });
  await t.rejects(call('Get', { pod_name: 'nope', pod_namespace: 'ml' }), { code: grpc.status.NOT_FOUND });
  t.match(await call('GetAllocatableResources', {}), {
    devices: [{ resource_name: 'nvidia.com/gpu', device_ids: [GPU_A, GPU_B], topology: { nodes: [{ ID: 0 }] } }],
    cpu_ids: [0, 1, 2, 3],
  });
  t.same(f.calls, ['Get', 'Get', 'GetAllocatableResources']);

  // The DRA messages round-trip (share_id is proto3 `optional`).
  const get = lookupMethod(def, 'Get');
  const claim = {
    claim_name: 'gpu-claim',
    claim_namespace: 'ml',
    claim_resources: [
      { cdi_devices: [{ name: 'nvidia.com/gpu=0' }], driver_name: 'gpu.nvidia.com', pool_name: 'node-1', device_name: 'gpu-0', share_id: 's1' },
    ],
  };
  const bytes = get.responseSerialize({ pod_resources: { name: 'p', namespace: 'n', containers: [{ name: 'c', dynamic_resources: [claim] }] } });
  t.match(get.responseDeserialize(bytes), { pod_resources: { containers: [{ dynamic_resources: [claim] }] } });
});

t.test('client', async (t) => {
  t.test('happy path: whole GPUs, MIG ids, replicas kept as-is, containers without devices left out', async (t) => {
    const f = await fake(t);
    const c = client(t, f.path);
    t.strictSame(await c.list(), EXPECTED);
    t.strictSame(await client(t, `unix://${f.path}`).list(), EXPECTED, 'a unix:// socket address');
    t.same(f.calls, ['List', 'List']);
    f.pods = [];
    t.strictSame(await c.list(), [], 'no pods: an empty list, not an error');
  });

  t.test('unknown fields are ignored; the documented field numbers are the ones read', async (t) => {
    const f = await fake(t);
    const unknown: WireField[] = [
      [99, 'a string from a newer kubelet'],
      [98, 12345],
      [97, { fixed32: 7 }],
      [96, { fixed64: 1n << 60n }],
      [95, [[1, 'nested']]],
    ];
    const topology: WireField = [3, [[1, [[1, 1]]]]]; // TopologyInfo { nodes: [{ ID: 1 }] }
    const memory: WireField = [4, [[1, 'memory'], [2, 1 << 30], topology]]; // ContainerMemory, its topology also field 3
    const devices = (resource: string, ids: string[]): WireField => [2, [[1, resource], ...ids.map((id): WireField => [2, id]), topology, ...unknown]];
    const container = (name: string, devs: WireField[]): WireField => [
      3,
      [
        [1, name],
        ...devs,
        [3, Buffer.from([0x02, 0x03])],
        memory,
        [
          5,
          [
            [2, 'claim'],
            [3, 'ml'],
            [
              4,
              [
                [1, [[1, 'nvidia.com/gpu=0']]],
                [2, 'gpu.nvidia.com'],
                [5, 'share'],
              ],
            ],
          ],
        ],
        ...unknown,
      ],
    ];
    const pod = (ns: string, name: string, containers: WireField[]): WireField => [
      1,
      [[1, name], [2, ns], ...containers, [4, Buffer.from([0x01])], ...unknown],
    ];
    f.mode = {
      kind: 'raw',
      bytes: encodeMessage([
        ...unknown,
        pod('ml', 'train-0', [container('trainer', [devices('nvidia.com/gpu', [GPU_A, `${GPU_B}::2`])]), container('idle', [])]),
        pod('ml', 'infer-1', [container('server', [devices('nvidia.com/mig-1g.10gb', [MIG_1])])]),
        [100, 'trailing unknown'],
      ]),
    };
    t.strictSame(await client(t, f.path).list(), [
      { namespace: 'ml', pod: 'train-0', container: 'trainer', resourceName: 'nvidia.com/gpu', deviceIds: [GPU_A, `${GPU_B}::2`] },
      { namespace: 'ml', pod: 'infer-1', container: 'server', resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [MIG_1] },
    ]);
  });

  t.test('a slow server: the deadline fires, the next call on a fresh channel answers', async (t) => {
    const f = await fake(t);
    const c = client(t, f.path, 300);
    f.mode = { kind: 'delay', ms: 60_000 };
    const err = await c.list().then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof PodResourcesError, 'a PodResourcesError');
    t.match(err, {
      grpcCode: grpc.status.DEADLINE_EXCEEDED,
      code: 'PODVISOR_POD_RESOURCES',
      message: `pod-resources at ${f.path}: List: 4 DEADLINE_EXCEEDED: deadline of 300 ms exceeded`,
    });
    f.mode = { kind: 'hang' };
    await t.rejects(c.list(), { name: 'PodResourcesError', grpcCode: grpc.status.DEADLINE_EXCEEDED }, 'a server that never answers');
    f.mode = { kind: 'normal' };
    t.strictSame(await c.list(), EXPECTED);
  });

  t.test('socket missing, then the server appears on that path', async (t) => {
    const path = socketPath('podres');
    t.teardown(() => rmSync(path, { force: true }));
    const c = client(t, path);
    await t.rejects(c.list(), {
      name: 'PodResourcesError',
      grpcCode: grpc.status.UNAVAILABLE,
      message: new RegExp(`^pod-resources at ${path}: List: 14 UNAVAILABLE: `),
    });
    const err = await c.list().then(
      () => undefined,
      (e: unknown) => e,
    );
    t.notMatch(err, { message: /\d{4}-\d\d-\d\dT/ }, 'no grpc-js timestamp in the message: one condition reads the same every time');
    t.notMatch(err, { message: /Resolution note/ });
    const f = await FakePodResources.start(path, PODS);
    t.teardown(() => f.stop());
    t.strictSame(await c.list(), EXPECTED, 'the first call after the server appeared answers');
  });

  t.test('server restart on the same path (a new socket file)', async (t) => {
    const f = await fake(t);
    const c = client(t, f.path);
    t.strictSame(await c.list(), EXPECTED);
    await f.stop();
    f.pods = OTHER_PODS;
    await f.listen();
    t.strictSame(await c.list(), OTHER_EXPECTED, 'no call in between: the new socket file is noticed, the first call answers');
    await f.stop();
    await t.rejects(c.list(), { name: 'PodResourcesError', grpcCode: grpc.status.UNAVAILABLE }, 'down');
    f.pods = PODS;
    await f.listen();
    t.strictSame(await c.list(), EXPECTED, 'after a failed call: the first call after the restart answers');
  });

  t.test('garbage bytes: a clear decode error, never a crash', async (t) => {
    const f = await fake(t);
    const c = client(t, f.path);
    f.mode = { kind: 'garbage' };
    await t.rejects(c.list(), {
      name: 'PodResourcesError',
      grpcCode: grpc.status.INTERNAL,
      message: /^pod-resources at .*: List: 13 INTERNAL: Response message parsing error: invalid wire type/,
    });
    f.mode = { kind: 'raw', bytes: Buffer.from([0x0a, 0x05, 0x01]) };
    await t.rejects(c.list(), { grpcCode: grpc.status.INTERNAL, message: /parsing error: index out of range/ }, 'a truncated message');
    f.mode = { kind: 'normal' };
    t.strictSame(await c.list(), EXPECTED, 'recovers');
  });

  t.test('status codes are passed on: RESOURCE_EXHAUSTED, UNAVAILABLE', async (t) => {
    const f = await fake(t);
    const c = client(t, f.path);
    f.mode = { kind: 'error', code: grpc.status.RESOURCE_EXHAUSTED };
    await t.rejects(c.list(), {
      grpcCode: grpc.status.RESOURCE_EXHAUSTED,
      message: `pod-resources at ${f.path}: List: 8 RESOURCE_EXHAUSTED: rejected by rate limit`,
    });
    f.mode = { kind: 'error', code: grpc.status.UNAVAILABLE, details: 'kubelet is shutting down' };
    await t.rejects(c.list(), { grpcCode: grpc.status.UNAVAILABLE, message: /: 14 UNAVAILABLE: kubelet is shutting down$/ });
  });

  t.test('close cancels the call in flight and refuses later calls', async (t) => {
    const f = await fake(t);
    const c = new PodResourcesClient({ socket: f.path, timeoutMs: 600_000 });
    f.mode = { kind: 'hang' };
    const pending = c.list();
    await until('the call reached the server', () => f.count('List') === 1);
    c.close();
    await t.rejects(pending, { name: 'PodResourcesError', grpcCode: grpc.status.CANCELLED }, 'rejected long before its 10-minute deadline');
    await t.rejects(c.list(), { grpcCode: grpc.status.CANCELLED, message: /the client is closed/ });
    t.equal(f.count('List'), 1, 'no call after close');
  });
});

t.test('decodeListResponse validates every field it reads', async (t) => {
  t.strictSame(decodeListResponse({}), [], 'absent fields are their defaults');
  t.strictSame(decodeListResponse({ pod_resources: null }), []);
  t.strictSame(
    decodeListResponse({
      pod_resources: [
        {
          name: 'p',
          namespace: 'n',
          cpu_ids: 'not read',
          containers: [
            {
              name: 'c',
              devices: [
                { resource_name: 'r', device_ids: ['', 'GPU-1'], topology: null },
                { resource_name: 'r2', device_ids: null },
              ],
            },
          ],
        },
      ],
    }),
    [{ namespace: 'n', pod: 'p', container: 'c', resourceName: 'r', deviceIds: ['GPU-1'] }],
    'empty ids dropped; fields not read are not checked',
  );
  const bad: Array<[unknown, RegExp]> = [
    [null, /^ListPodResourcesResponse: not a message$/],
    [[], /^ListPodResourcesResponse: not a message$/],
    [{ pod_resources: {} }, /^ListPodResourcesResponse: field pod_resources is not a list$/],
    [{ pod_resources: ['x'] }, /^ListPodResourcesResponse\.pod_resources\[0\]: not a message$/],
    [{ pod_resources: [{ name: 1 }] }, /pod_resources\[0\]: field name is not a string$/],
    [{ pod_resources: [{ name: 'p', namespace: ['n'] }] }, /pod_resources\[0\]: field namespace is not a string$/],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: 'c' }] }, /^pod n\/p: field containers is not a list$/],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: [7] }] }, /^pod n\/p containers\[0\]: not a message$/],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: false }] }] }, /^pod n\/p containers\[0\]: field name is not a string$/],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: {} }] }] }, /^pod n\/p container c: field devices is not a list$/],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [null] }] }] }, /^pod n\/p container c devices\[0\]: not a message$/],
    [
      { pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [{ resource_name: 5 }] }] }] },
      /devices\[0\]: field resource_name is not a string$/,
    ],
    [
      { pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [{ resource_name: 'r', device_ids: 'GPU-1' }] }] }] },
      /devices\[0\]: field device_ids is not a list of strings$/,
    ],
    [
      { pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [{ resource_name: 'r', device_ids: [1] }] }] }] },
      /field device_ids is not a list of strings$/,
    ],
    [{ pod_resources: [{ name: 'p', namespace: 'n', containers: [{ name: 'c', devices: [new (class Device {})()] }] }] }, /devices\[0\]: not a message$/],
  ];
  for (const [v, message] of bad) {
    t.throws(() => decodeListResponse(v), { name: 'ResponseShapeError', code: 'PODVISOR_RESPONSE_SHAPE', message }, message.source);
  }
  const err = (() => {
    try {
      decodeListResponse({ pod_resources: 1 });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof ResponseShapeError, 'an instance of ResponseShapeError');
});

t.test('source', async (t) => {
  t.test('happy path with real timers: polls in the background, current() and status()', async (t) => {
    const f = await fake(t);
    const logs = captureLog();
    const source = new PodResourcesSource({ socket: f.path, timeoutMs: 5_000, intervalMs: 20, log: logs.log });
    t.teardown(() => source.close());
    t.equal(source.current(), undefined, 'nothing before the first answer');
    t.strictSame(source.status(), { up: false, socketPresent: false, polls: 0, errors: 0 });
    const before = Date.now();
    source.start();
    source.start(); // idempotent
    await until('3 polls', () => f.count('List') >= 3);
    t.strictSame(source.current(), EXPECTED);
    const s = source.status();
    t.match(s, { up: true, socketPresent: true, errors: 0 });
    t.equal(s.lastError, undefined);
    t.ok(s.polls >= 3, `${s.polls} polls`);
    t.ok(s.lastSuccessMs !== undefined && s.lastSuccessMs >= before, 'lastSuccessMs from Date.now');
    f.pods = OTHER_PODS;
    await poll('the new answer', () => (source.current()?.[0]?.pod === 'train-1' ? source.current() : undefined));
    t.strictSame(source.current(), OTHER_EXPECTED);
    t.same(logs.lines, [], 'nothing logged');
  });

  t.test('socket missing: no call, socketPresent=false, logged once; the socket appearing and disappearing', async (t) => {
    const path = socketPath('podres');
    t.teardown(() => rmSync(path, { force: true }));
    const real = client(t, path);
    let calls = 0;
    const counting = {
      list: () => {
        calls++;
        return real.list();
      },
      close: () => real.close(),
    };
    const { source, logs, start, advance } = clockedSource(t, { socket: path, client: counting });
    await start();
    t.strictSame(source.status(), { up: false, socketPresent: false, polls: 0, errors: 0 });
    for (let i = 0; i < 3; i++) await advance(1_000);
    t.equal(calls, 0, 'no call while the socket is missing');
    t.equal(source.status().polls, 0);
    t.equal(source.current(), undefined);
    t.match(logs.lines, [{ level: 'info', msg: /socket not found/, fields: { socket: path } }], 'one info line for four polls');
    t.equal(logs.lines.length, 1);

    const f = await FakePodResources.start(path, PODS);
    t.teardown(() => f.stop());
    await advance(1_000);
    t.equal(calls, 1);
    t.match(source.status(), { up: true, socketPresent: true, polls: 1, errors: 0 });
    t.strictSame(source.current(), EXPECTED);
    t.match(logs.lines[1], { level: 'info', msg: /socket found/ });

    await f.stop();
    await advance(1_000);
    await advance(1_000);
    t.match(source.status(), { up: false, socketPresent: false, polls: 1, errors: 0 });
    t.equal(calls, 1);
    t.strictSame(source.current(), EXPECTED, 'the last good answer is kept while young');
    t.equal(logs.at('info').filter((l) => /not found/.test(l.msg)).length, 2, 'logged again once for the new disappearance');
    t.equal(logs.at('warn').length, 0, 'a missing socket is not an error');
  });

  t.test('server down (socket file present, nothing listening): counted, warned once per 30 s per message', async (t) => {
    const path = socketPath('podres');
    writeFileSync(path, ''); // a socket file left by a dead kubelet: connect() is refused
    t.teardown(() => rmSync(path, { force: true }));
    const { source, logs, start, advance } = clockedSource(t, { socket: path, intervalMs: 5_000 });
    await start();
    for (let i = 0; i < 4; i++) await advance(5_000);
    const s = source.status();
    t.match(s, { up: false, socketPresent: true, polls: 5, errors: 5, lastError: new RegExp(`^pod-resources at ${path}: List: 14 UNAVAILABLE: `) });
    t.equal(s.lastSuccessMs, undefined);
    t.equal(source.current(), undefined);
    const warns = logs.at('warn');
    t.equal(warns.length, 1, 'five identical failures in 20 s: one warning');
    t.match(warns[0], { msg: 'pod-resources List failed', fields: { socket: path, error: s.lastError } });
    t.equal(warns[0]?.fields['repeats'], undefined);
    // 30 s after the first warning: the same message is logged again, with the count of those not logged.
    await advance(5_000);
    await advance(5_000);
    t.equal(logs.at('warn').length, 2);
    t.match(logs.at('warn')[1], { fields: { error: s.lastError, repeats: 5 } });
    t.equal(source.status().errors, 7);
  });

  t.test('a different error message is logged at once', async (t) => {
    const f = await fake(t);
    const { clock, source, logs, start, advance } = clockedSource(t, { socket: f.path });
    f.mode = { kind: 'error', code: grpc.status.UNAVAILABLE, details: 'first' };
    await start();
    await advance(1_000);
    f.mode = { kind: 'error', code: grpc.status.INTERNAL, details: 'second' };
    await advance(1_000);
    await advance(1_000);
    t.same(
      logs.at('warn').map((l) => l.fields['error']),
      [`pod-resources at ${f.path}: List: 14 UNAVAILABLE: first`, `pod-resources at ${f.path}: List: 13 INTERNAL: second`],
    );
    t.equal(source.status().errors, 4);
    f.mode = { kind: 'error', code: grpc.status.UNAVAILABLE, details: 'first' };
    await advance(1_000);
    t.equal(logs.at('warn').length, 2, 'the first message again, within its 30 s: not logged');
    clock.block(LOG_REPEAT_MS); // time passes without the poll timer firing; then it fires, overdue
    await advance(0);
    t.equal(logs.at('warn').length, 3, 'after 30 s it is');
  });

  t.test('slow server: timeout error, the last good answer is kept', async (t) => {
    const f = await fake(t);
    const { source, start, advance } = clockedSource(t, { socket: f.path, timeoutMs: 300 });
    await start();
    t.strictSame(source.current(), EXPECTED);
    const good = source.status().lastSuccessMs;
    f.mode = { kind: 'delay', ms: 60_000 };
    await advance(1_000);
    t.match(source.status(), {
      up: false,
      errors: 1,
      polls: 2,
      lastError: `pod-resources at ${f.path}: List: 4 DEADLINE_EXCEEDED: deadline of 300 ms exceeded`,
    });
    t.equal(source.status().lastSuccessMs, good, 'lastSuccessMs unchanged');
    t.strictSame(source.current(), EXPECTED, 'still the last good answer');
    f.mode = { kind: 'hang' };
    await advance(1_000);
    t.match(source.status(), { errors: 2, lastError: /DEADLINE_EXCEEDED/ });
    f.pods = OTHER_PODS;
    f.mode = { kind: 'normal' };
    await advance(1_000);
    t.match(source.status(), { up: true, errors: 2, polls: 4 });
    t.equal(source.status().lastError, undefined, 'a success clears lastError');
    t.strictSame(source.current(), OTHER_EXPECTED);
  });

  t.test('server restart on the same path with a new socket', async (t) => {
    const f = await fake(t);
    const { source, start, advance } = clockedSource(t, { socket: f.path });
    await start();
    t.strictSame(source.current(), EXPECTED);
    await f.stop();
    f.pods = OTHER_PODS;
    await f.listen();
    await advance(1_000);
    t.strictSame(source.current(), OTHER_EXPECTED, 'the first poll after the restart answers');
    t.match(source.status(), { up: true, polls: 2, errors: 0 });
  });

  t.test('garbage bytes: the error is surfaced, nothing crashes, the source recovers', async (t) => {
    const f = await fake(t);
    const { source, logs, start, advance } = clockedSource(t, { socket: f.path });
    f.mode = { kind: 'garbage' };
    await start();
    await advance(1_000);
    t.match(source.status(), { up: false, polls: 2, errors: 2, lastError: /List: 13 INTERNAL: Response message parsing error: invalid wire type/ });
    t.equal(source.current(), undefined);
    t.equal(logs.at('warn').length, 1);
    f.mode = { kind: 'normal' };
    await advance(1_000);
    t.match(source.status(), { up: true, errors: 2 });
    t.strictSame(source.current(), EXPECTED);
  });

  t.test('RESOURCE_EXHAUSTED: the interval doubles up to 60 s and is reset by a success', async (t) => {
    const f = await fake(t);
    const { clock, source, logs, start, advance } = clockedSource(t, { socket: f.path, intervalMs: 1_000 });
    f.mode = { kind: 'error', code: grpc.status.RESOURCE_EXHAUSTED };
    await start();
    t.equal(f.count('List'), 1);
    // After the n-th refusal the next poll comes min(1 s × 2^n, 60 s) later: not one moment sooner.
    const expected = [2_000, 4_000, 8_000, 16_000, 32_000, MAX_BACKOFF_MS, MAX_BACKOFF_MS];
    for (const [i, delay] of expected.entries()) {
      const calls = f.count('List');
      await clock.advance(delay - 1);
      t.equal(clock.pending, 1, `refusal ${i + 1}: the timer has not fired ${delay - 1} ms on`);
      t.equal(f.count('List'), calls, `refusal ${i + 1}: no call before ${delay} ms`);
      await advance(1);
      t.equal(f.count('List'), calls + 1, `refusal ${i + 1}: the next call ${delay} ms later`);
    }
    t.match(source.status(), { up: false, polls: 8, errors: 8, lastError: /8 RESOURCE_EXHAUSTED: rejected by rate limit/ });
    t.match(logs.at('warn')[0], { fields: { nextPollMs: 2_000 } }, 'the warning says when the next poll comes');
    f.mode = { kind: 'normal' };
    await advance(MAX_BACKOFF_MS);
    t.match(source.status(), { up: true, polls: 9, errors: 8 });
    const calls = f.count('List');
    await clock.advance(999);
    t.equal(f.count('List'), calls, 'back to the base interval: not before 1 s');
    await advance(1);
    t.equal(f.count('List'), calls + 1, 'back to the base interval: after 1 s');
    f.mode = { kind: 'error', code: grpc.status.RESOURCE_EXHAUSTED };
    await advance(1_000);
    const c2 = f.count('List');
    await clock.advance(1_999);
    t.equal(f.count('List'), c2, 'the backoff starts again from the base');
    await advance(1);
    t.equal(f.count('List'), c2 + 1);
  });

  t.test('other errors do not back off', async (t) => {
    const f = await fake(t);
    const { source, start, advance } = clockedSource(t, { socket: f.path, intervalMs: 1_000 });
    f.mode = { kind: 'error', code: grpc.status.UNAVAILABLE };
    await start();
    await advance(1_000);
    await advance(1_000);
    t.equal(f.count('List'), 3, 'one call per second');
    t.equal(source.status().errors, 3);
  });

  t.test('stale after maxAgeMs: current() is undefined; a new answer makes it fresh again', async (t) => {
    const path = socketPath('podres');
    writeFileSync(path, '');
    t.teardown(() => rmSync(path, { force: true }));
    let fail = false;
    const fakeClient = {
      closed: false,
      list: async () => (fail ? Promise.reject(new Error('kubelet gone')) : EXPECTED),
      close() {
        this.closed = true;
      },
    };
    const { clock, source, start, advance } = clockedSource(t, { socket: path, intervalMs: 1_000, maxAgeMs: 5_000, client: fakeClient });
    await start();
    const at = source.status().lastSuccessMs;
    t.equal(at, clock.now());
    fail = true;
    for (let i = 0; i < 5; i++) await advance(1_000);
    t.equal(clock.now() - (at ?? 0), 5_000);
    t.strictSame(source.current(), EXPECTED, 'exactly maxAgeMs old: still used');
    await clock.advance(1);
    t.equal(source.current(), undefined, 'older than maxAgeMs: stale');
    t.match(source.status(), { up: false, lastSuccessMs: at, errors: 5, lastError: 'kubelet gone' });
    fail = false;
    await advance(999);
    t.strictSame(source.current(), EXPECTED, 'fresh again');
    await source.close();
    t.ok(fakeClient.closed, 'close() closes the client');
  });

  t.test('maxAgeMs defaults to 5 minutes', async (t) => {
    const path = socketPath('podres');
    writeFileSync(path, '');
    t.teardown(() => rmSync(path, { force: true }));
    let fail = false;
    const fakeClient = { list: async () => (fail ? Promise.reject(new Error('down')) : EXPECTED), close() {} };
    const { clock, source, start } = clockedSource(t, { socket: path, intervalMs: 600_000, client: fakeClient });
    await start();
    fail = true;
    clock.block(DEFAULT_MAX_AGE_MS);
    t.strictSame(source.current(), EXPECTED);
    clock.block(1);
    t.equal(source.current(), undefined);
  });

  t.test('nothing escapes the timers: a throwing client and a throwing logger', async (t) => {
    const path = socketPath('podres');
    writeFileSync(path, '');
    t.teardown(() => rmSync(path, { force: true }));
    const throwing = {
      list: (): Promise<DeviceAssignment[]> => {
        throw 'not even an Error'; // eslint-disable-line @typescript-eslint/only-throw-error
      },
      close: (): void => {
        throw new Error('close failed');
      },
    };
    const clock = new FakeClock(0);
    let warnings = 0;
    const log: Logger = {
      debug() {},
      info() {},
      warn() {
        warnings++;
        throw new Error('logger broke');
      },
      error() {},
    };
    const source = new PodResourcesSource({ socket: path, timeoutMs: 100, intervalMs: 1_000, log, now: () => clock.now(), timers: clock, client: throwing });
    source.start();
    await until('first poll ended', () => clock.pending === 1);
    await clock.advance(1_000);
    await until('second poll ended', () => clock.pending === 1);
    clock.block(LOG_REPEAT_MS); // the same message again after 30 s: logged (and the logger throws) again
    await clock.advance(0);
    await until('third poll ended', () => clock.pending === 1);
    t.match(source.status(), { polls: 3, errors: 3, lastError: 'not even an Error' });
    t.equal(warnings, 2, 'the logger was called (and threw) for the first failure and again 30 s later');
    await t.resolves(source.close(), 'close() resolves though the client’s close throws');
    t.equal(clock.pending, 0, 'no timer left');
    t.equal(warnings, 3, 'and once more for the client’s failing close()');
  });

  t.test('close(): stops the timers, cancels the call in flight, later start() does nothing', async (t) => {
    const f = await fake(t);
    const { clock, source, start } = clockedSource(t, { socket: f.path, timeoutMs: 600_000 });
    await start();
    f.mode = { kind: 'hang' };
    await clock.advance(1_000);
    await until('the hanging call reached the server', () => f.count('List') === 2);
    await source.close(); // would wait for the 10-minute deadline if the call were not cancelled
    t.equal(clock.pending, 0, 'no timer armed');
    t.match(source.status(), { polls: 2, errors: 0 }, 'the cancelled call is not an error');
    source.start();
    await clock.advance(10_000);
    t.equal(f.count('List'), 2, 'no call after close');
    await t.resolves(source.close(), 'a second close() is harmless');
  });
});
