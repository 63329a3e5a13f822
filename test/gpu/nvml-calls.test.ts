/**
 * The NVML call queue (src/gpu/nvml/calls.ts) and the error classes (codes.ts): first with plain promises settled by
 * the test, then through the library against the fake NVML (serialisation seen by the fake itself; a call hung in
 * the "driver", refused calls, recovery once it returns). Timeouts are real timers; the test only waits (polls) for
 * their outcome and never asserts a duration. Every hung native call is released before its subtest ends: a native
 * call that never returns would keep this process from exiting.
 */
import path from 'node:path';
import t, { type Test } from 'tap';
import koffi from 'koffi';
import { NvmlCallQueue } from '../../src/gpu/nvml/calls.js';
import { NvmlError, NvmlHungError, NvmlTimeoutError, nvmlCodeName, NVML_ERROR_GPU_IS_LOST, NVML_ERROR_NOT_SUPPORTED } from '../../src/gpu/nvml/codes.js';
import { loadNvml, type NvmlLibrary } from '../../src/gpu/nvml/library.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { buildFakeNvml, fakeNvmlEnv, readNvmlLog, writeScenario, type FakeScenario } from '../support/fake-nvml.js';
import { until } from '../support/poll.js';

/** Lets every pending promise callback run. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What a promise settled to, without throwing: for asserting on rejections step by step. */
function outcome<T>(p: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const o: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  void p.then(
    (value) => Object.assign(o, { settled: true, value }),
    (error: unknown) => Object.assign(o, { settled: true, error }),
  );
  return o;
}

t.test('codes: names and messages', async (t) => {
  t.equal(nvmlCodeName(NVML_ERROR_GPU_IS_LOST), 'NVML_ERROR_GPU_IS_LOST');
  t.equal(nvmlCodeName(0), 'NVML_SUCCESS');
  t.equal(nvmlCodeName(999), 'NVML_ERROR_UNKNOWN');
  t.equal(nvmlCodeName(1234), 'NVML_ERROR_UNKNOWN(1234)');
  const e = new NvmlError('nvmlDeviceGetPowerUsage', NVML_ERROR_NOT_SUPPORTED);
  t.ok(e instanceof Error);
  t.match(e, { name: 'NvmlError', code: 3, call: 'nvmlDeviceGetPowerUsage', message: 'nvmlDeviceGetPowerUsage: NVML_ERROR_NOT_SUPPORTED' });
  t.equal(new NvmlError('f', 999, 'power out of range: 4294967295').message, 'f: NVML_ERROR_UNKNOWN: power out of range: 4294967295');
  t.match(new NvmlTimeoutError('nvmlInit_v2', 5000), { name: 'NvmlTimeoutError', call: 'nvmlInit_v2', afterMs: 5000, message: /nvmlInit_v2.*5000 ms/ });
  const hung = new NvmlHungError('nvmlDeviceGetUUID', 'nvmlInit_v2', 42);
  t.match(hung, { name: 'NvmlHungError', call: 'nvmlDeviceGetUUID', hungCall: 'nvmlInit_v2', sinceMs: 42 });
  t.match(hung.message, /^nvmlDeviceGetUUID: .*nvmlInit_v2/);
});

t.test('queue: refuses a timeout that is not positive', async (t) => {
  t.throws(() => new NvmlCallQueue({ timeoutMs: 0 }), RangeError);
  t.throws(() => new NvmlCallQueue({ timeoutMs: Number.NaN }), RangeError);
});

t.test('queue: one call at a time, in order; results and errors go to their callers', async (t) => {
  const q = new NvmlCallQueue({ timeoutMs: 60_000 });
  const gates: Deferred<string>[] = [deferred<string>(), deferred<string>(), deferred<string>()];
  const started: number[] = [];
  let active = 0;
  let maxActive = 0;
  const job = (i: number) => async () => {
    started.push(i);
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      return await gates[i]!.promise;
    } finally {
      active--;
    }
  };
  const results = [0, 1, 2].map((i) => outcome(q.run(`call${i}`, job(i))));
  await flush();
  t.same(started, [0], 'only the first call is started');
  gates[1]!.resolve('one'); // settling a queued call's gate early changes nothing: it is not started yet
  await flush();
  t.same(started, [0]);
  gates[0]!.reject(new Error('boom'));
  // the second call (its gate already open) runs and ends at once, which starts the third
  await until('the third call to start', () => started.length === 3);
  t.same(started, [0, 1, 2]);
  gates[2]!.resolve('two');
  await until('every call to settle', () => results.every((r) => r.settled));
  t.equal(maxActive, 1, 'never two calls in flight');
  t.match(results[0]!.error, { message: 'boom' });
  t.equal(results[1]!.value, 'one');
  t.equal(results[2]!.value, 'two');
  t.equal(q.hung(), undefined);
  t.equal(q.timeouts, 0);
});

t.test('queue: a synchronous throw from start rejects that call only', async (t) => {
  const q = new NvmlCallQueue({ timeoutMs: 60_000 });
  await t.rejects(
    q.run('bad', () => {
      throw new TypeError('bad argument');
    }),
    { name: 'TypeError', message: 'bad argument' },
  );
  t.equal(await q.run('good', async () => 7), 7);
});

t.test('queue: a call past its timeout hangs the queue until it returns, then the queue recovers', async (t) => {
  let clock = 1_000;
  const q = new NvmlCallQueue({ timeoutMs: 30, now: () => clock });
  const stuck = deferred<string>();
  const first = outcome(q.run('nvmlInit_v2', () => stuck.promise));
  clock = 1_005;
  let queuedStarted = false;
  const queued = outcome(
    q.run('nvmlDeviceGetCount_v2', async () => {
      queuedStarted = true;
      return 1;
    }),
  );
  await until('the first call to time out', () => first.settled);
  t.ok(first.error instanceof NvmlTimeoutError);
  t.match(first.error, { call: 'nvmlInit_v2', afterMs: 30 });
  await until('the queued call to be refused', () => queued.settled);
  t.ok(queued.error instanceof NvmlHungError);
  t.match(queued.error, { call: 'nvmlDeviceGetCount_v2', hungCall: 'nvmlInit_v2', sinceMs: 1_000 });
  t.notOk(queuedStarted, 'a refused call is never started');
  t.same(q.hung(), { call: 'nvmlInit_v2', sinceMs: 1_000 });
  t.equal(q.timeouts, 1);

  let laterStarted = false;
  await t.rejects(
    q.run('nvmlDeviceGetUUID', async () => {
      laterStarted = true;
      return 'x';
    }),
    NvmlHungError,
  );
  t.notOk(laterStarted, 'a call made while hung is refused at once');

  stuck.resolve('late'); // the native call finally returns: its answer has no caller any more
  await until('the queue to recover', () => q.hung() === undefined);
  t.equal(await q.run('nvmlDeviceGetCount_v2', async () => 2), 2);
  t.equal(first.value, undefined, 'the late answer does not reach the caller that timed out');
});

t.test('queue: a late rejection also ends the hang', async (t) => {
  const q = new NvmlCallQueue({ timeoutMs: 20 });
  const stuck = deferred<number>();
  await t.rejects(
    q.run('a', () => stuck.promise),
    NvmlTimeoutError,
  );
  t.ok(q.hung());
  stuck.reject(new Error('late failure'));
  await until('the queue to recover', () => q.hung() === undefined);
  t.equal(await q.run('b', async () => 3), 3);
});

// ---- through the library, against the fake NVML ----

interface Rig {
  nvml: NvmlLibrary;
  scenario: string;
  log: string;
  write: (s: FakeScenario) => void;
}

/** The fake NVML with scenario `s`, loaded and initialised; shut down when the test ends. */
async function rig(t: Test, s: FakeScenario, opts: { timeoutMs: number; now?: () => number }): Promise<Rig> {
  const { path: lib } = buildFakeNvml();
  const dir = t.testdir();
  const scenario = path.join(dir, 'scenario');
  const log = path.join(dir, 'calls.log');
  writeScenario(scenario, s);
  Object.assign(process.env, fakeNvmlEnv(scenario, log));
  const nvml = loadNvml(lib, opts);
  await nvml.init();
  t.teardown(async () => {
    // a hung call must have returned (the test removes its hang) before shutdown can go through
    await until('no NVML call outstanding', () => nvml.hung() === undefined);
    await nvml.shutdown();
  });
  return { nvml, scenario, log, write: (next) => writeScenario(scenario, next) };
}

const gpu = {
  uuid: 'GPU-00000000-0000-0000-0000-000000000001',
  name: 'Fake GPU',
  memTotal: 1000,
  memUsed: 100,
  memFree: 900,
  powerMw: 70_000,
  tempC: 40,
  utilGpu: 5,
  utilMem: 6,
};

t.test('library: concurrent callers never put two calls in flight in the driver', async (t) => {
  const { nvml, log } = await rig(t, { delayMs: 20, gpus: [gpu] }, { timeoutMs: 30_000 });
  const h = await nvml.handleByIndex(0);
  const answers = await Promise.all([
    nvml.uuid(h),
    nvml.powerMilliwatts(h),
    nvml.memory(h),
    nvml.temperatureCelsius(h),
    nvml.name(h),
    nvml.utilization(h),
    nvml.deviceCount(),
    nvml.uuid(h),
  ]);
  t.equal(answers[0], gpu.uuid);
  t.equal(answers[1], 70_000);
  const lines = readNvmlLog(log);
  t.same(
    lines.filter((l) => l[0]?.startsWith('!')),
    [],
    'the fake saw no overlapping calls',
  );
  t.equal(lines.filter((l) => l[0] === 'nvmlDeviceGetUUID').length, 2);
  t.equal(nvml.stats.calls, 10);
  t.equal(nvml.stats.errors, 0);
});

t.test('the fake does detect overlapping calls (control: the same calls without the queue)', async (t) => {
  const { path: lib } = buildFakeNvml();
  const dir = t.testdir();
  const scenario = path.join(dir, 'scenario');
  const log = path.join(dir, 'calls.log');
  writeScenario(scenario, { delayMs: 20, gpus: [gpu] });
  Object.assign(process.env, fakeNvmlEnv(scenario, log));
  const raw = koffi.load(lib);
  const count = raw.func('nvmlDeviceGetCount_v2', 'int', ['void *']);
  const call = (): Promise<void> =>
    new Promise((resolve) => {
      count.async(Buffer.alloc(4), () => resolve());
    });
  await until('an overlap to be logged', async () => {
    await Promise.all([call(), call(), call(), call()]);
    return readNvmlLog(log).some((l) => l[0] === '!concurrent');
  });
  t.pass('overlap logged');
});

t.test('library: a hung driver call times out, later calls are refused, and the library recovers', async (t) => {
  let clock = 50_000;
  const hangPower = { ...gpu, hang: ['nvmlDeviceGetPowerUsage'] };
  const { nvml, log, write } = await rig(t, { gpus: [gpu] }, { timeoutMs: 1_500, now: () => clock });
  const h = await nvml.handleByIndex(0);
  write({ gpus: [hangPower] });
  clock = 60_000;
  await t.rejects(nvml.powerMilliwatts(h), { name: 'NvmlTimeoutError', call: 'nvmlDeviceGetPowerUsage', afterMs: 1_500 });
  t.same(nvml.hung(), { call: 'nvmlDeviceGetPowerUsage', sinceMs: 60_000 });
  await t.rejects(nvml.uuid(h), { name: 'NvmlHungError', call: 'nvmlDeviceGetUUID', hungCall: 'nvmlDeviceGetPowerUsage', sinceMs: 60_000 });
  await t.rejects(nvml.computeProcesses(h), NvmlHungError);
  t.notOk(
    readNvmlLog(log).some((l) => l[0] === 'nvmlDeviceGetUUID'),
    'a refused call never reaches the driver',
  );
  t.match(nvml.stats, { timeouts: 1, errors: 3 });

  write({ gpus: [gpu] }); // the driver comes back: the hung call returns
  await until('the hung call to return', () => nvml.hung() === undefined);
  t.equal(await nvml.uuid(h), gpu.uuid);
  t.equal(await nvml.powerMilliwatts(h), 70_000);
  t.equal(readNvmlLog(log).filter((l) => l[0] === 'nvmlDeviceGetPowerUsage').length, 2, 'the hung call and the new one');
});

t.test('library: a hang of every call (init included) is a timeout, not a stuck caller', async (t) => {
  const { path: lib } = buildFakeNvml();
  const dir = t.testdir();
  const scenario = path.join(dir, 'scenario');
  writeScenario(scenario, { hang: ['*'], gpus: [gpu] });
  Object.assign(process.env, fakeNvmlEnv(scenario));
  const nvml = loadNvml(lib, { timeoutMs: 500 });
  await t.rejects(nvml.init(), NvmlTimeoutError);
  await t.rejects(nvml.deviceCount(), NvmlHungError);
  writeScenario(scenario, { gpus: [gpu] });
  await until('the hung init to return', () => nvml.hung() === undefined);
  // the hung nvmlInit_v2 did succeed in the end (its answer came too late): balance it, then a normal round trip
  await nvml.shutdown();
  await nvml.init();
  t.equal(await nvml.deviceCount(), 1);
  await nvml.shutdown();
});
