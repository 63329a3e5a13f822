/**
 * The NVML binding (src/gpu/nvml/library.ts) against the fake NVML (test/support/fake-nvml/fake-nvml.c), loaded
 * through loadNvml exactly as the real libnvidia-ml.so.1 is: every method, the versioned-symbol fallbacks (one build
 * of the fake per variant), decoding and validation of what the "driver" writes, error codes, and load failures.
 */
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  NVML_ERROR_FUNCTION_NOT_FOUND,
  NVML_ERROR_GPU_IS_LOST,
  NVML_ERROR_INSUFFICIENT_SIZE,
  NVML_ERROR_INVALID_ARGUMENT,
  NVML_ERROR_NO_PERMISSION,
  NVML_ERROR_NOT_FOUND,
  NVML_ERROR_NOT_SUPPORTED,
  NVML_ERROR_UNINITIALIZED,
  NVML_ERROR_UNKNOWN,
  NvmlError,
} from '../../src/gpu/nvml/codes.js';
import { findNvmlLibrary, loadNvml, nvmlCandidates, NVML_SONAME, type NvmlLibrary } from '../../src/gpu/nvml/library.js';
import {
  buildFakeNvml,
  buildSharedObject,
  fakeNvmlEnv,
  readNvmlLog,
  writeScenario,
  type FakeGpu,
  type FakeNvmlVariant,
  type FakeScenario,
} from '../support/fake-nvml.js';

const NOT_AVAILABLE = 2n ** 64n - 1n;
const UUID = 'GPU-6f0e4d1c-9b8a-4c3d-8e2f-1a0b9c8d7e6f';
const UUID2 = 'GPU-00000000-1111-2222-3333-444444444444';

/** A GPU that answers everything. */
const full: FakeGpu = {
  uuid: UUID,
  name: 'NVIDIA A100-SXM4-80GB',
  minor: 3,
  memTotal: 85_899_345_920,
  memUsed: 1_000_000,
  memFree: 85_000_000_000,
  memReserved: 500_000,
  utilGpu: 42,
  utilMem: 17,
  powerMw: 61_234,
  tempC: 38,
  migMode: 0,
  compute: [{ pid: 4242, mem: 123_456_789 }],
  graphics: [],
  samples: [],
};

interface Rig {
  nvml: NvmlLibrary;
  log: string;
  write: (s: FakeScenario) => void;
  /** The NVML functions the fake saw, in order. */
  calls: () => string[];
}

/** The fake (variant) with scenario `s`, loaded through loadNvml and initialised; shut down when the test ends. */
async function rig(t: Test, s: FakeScenario, variant: FakeNvmlVariant = {}): Promise<Rig> {
  const { path: lib } = buildFakeNvml(variant);
  const dir = t.testdir();
  const scenario = path.join(dir, 'scenario');
  const log = path.join(dir, 'calls.log');
  writeScenario(scenario, s);
  Object.assign(process.env, fakeNvmlEnv(scenario, log));
  const nvml = loadNvml(lib, { timeoutMs: 30_000 });
  await nvml.init();
  t.teardown(() => nvml.shutdown());
  return {
    nvml,
    log,
    write: (next) => writeScenario(scenario, next),
    calls: () => readNvmlLog(log).map((l) => l[0] ?? ''),
  };
}

function nvmlError(code: number, call?: string | RegExp): { name: string; code: number; call?: string | RegExp } {
  return { name: 'NvmlError', code, ...(call === undefined ? {} : { call }) };
}

t.test('library candidates: host, GPU Operator, GKE; the first that exists wins', async (t) => {
  const x64 = nvmlCandidates('/rootfs', 'x64');
  t.equal(x64[0], `/rootfs/usr/lib/x86_64-linux-gnu/${NVML_SONAME}`);
  t.ok(x64.includes(`/rootfs/usr/lib64/${NVML_SONAME}`));
  t.ok(x64.includes(`/rootfs/run/nvidia/driver/usr/lib/x86_64-linux-gnu/${NVML_SONAME}`));
  t.ok(x64.includes(`/rootfs/run/nvidia/driver/usr/lib64/${NVML_SONAME}`));
  t.ok(x64.includes(`/rootfs/home/kubernetes/bin/nvidia/lib64/${NVML_SONAME}`));
  t.ok(
    x64.indexOf(`/rootfs/usr/lib64/${NVML_SONAME}`) < x64.indexOf(`/rootfs/run/nvidia/driver/usr/lib64/${NVML_SONAME}`),
    'host directories before the GPU Operator driver root',
  );
  t.notOk(
    x64.some((p) => p.includes('aarch64')),
    'no other architecture',
  );
  const arm = nvmlCandidates('/', 'arm64');
  t.equal(arm[0], `/usr/lib/aarch64-linux-gnu/${NVML_SONAME}`);
  t.notOk(arm.some((p) => p.includes('x86_64')));
  t.equal(new Set(x64).size, x64.length, 'no duplicates');

  // Podvisor's own filesystem is searched first (the NVIDIA container runtime injects the library there): detect
  // whether this machine has one, then assert what the search finds in each case.
  const own = nvmlCandidates('/').find((p) => fs.existsSync(p));
  if (own !== undefined) {
    t.equal(findNvmlLibrary(t.testdir({})), own, 'a library in our own filesystem wins');
    return;
  }
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const rootfs = t.testdir({ run: { nvidia: { driver: { usr: { lib64: { [NVML_SONAME]: '' } } } } }, usr: { lib: { [triplet]: {} } } });
  t.equal(findNvmlLibrary(rootfs), path.join(rootfs, 'run/nvidia/driver/usr/lib64', NVML_SONAME));
  fs.writeFileSync(path.join(rootfs, 'usr/lib', triplet, NVML_SONAME), '');
  t.equal(findNvmlLibrary(rootfs), path.join(rootfs, 'usr/lib', triplet, NVML_SONAME));
  t.equal(findNvmlLibrary(t.testdir({})), undefined);
});

t.test('load failures are plain Errors naming the path', async (t) => {
  const dir = t.testdir({ 'not-elf.so': 'this is not a shared object\n' });
  const missing = path.join(dir, 'nope', NVML_SONAME);
  t.throws(() => loadNvml(missing), { message: new RegExp(`cannot load NVML library ${missing}: .*No such file`) });
  const notElf = path.join(dir, 'not-elf.so');
  t.throws(() => loadNvml(notElf), { message: new RegExp(`cannot load NVML library ${notElf}: `) });

  const unrelated = path.join(dir, 'libunrelated.so');
  buildSharedObject(unrelated, 'int nvmlInit_v2(void) { return 0; }\nint unrelated(void) { return 1; }\n');
  t.throws(() => loadNvml(unrelated), { message: new RegExp(`NVML library ${unrelated}: required function nvmlShutdown not found`) });
});

/** The seven required functions only; device 0 is a static struct. */
const REQUIRED_ONLY = `
static int dev;
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int r) { (void)r; return "x"; }
int nvmlDeviceGetCount_v2(unsigned *n) { *n = 1; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) { (void)i; *d = &dev; return 0; }
int nvmlDeviceGetUUID(void *d, char *s, unsigned n) { (void)d; (void)n; s[0] = 'G'; s[1] = 0; return 0; }
int nvmlDeviceGetName(void *d, char *s, unsigned n) { (void)d; (void)n; s[0] = 'N'; s[1] = 0; return 0; }
`;

t.test('an optional symbol the library lacks: that method rejects with FUNCTION_NOT_FOUND (13)', async (t) => {
  const lib = path.join(t.testdir(), NVML_SONAME);
  buildSharedObject(lib, REQUIRED_ONLY);
  const nvml = loadNvml(lib, { timeoutMs: 30_000 });
  t.same(Object.keys(nvml.resolved).sort(), ['deviceCount', 'errorString', 'handleByIndex', 'init', 'name', 'shutdown', 'uuid']);
  await nvml.init();
  t.equal(await nvml.deviceCount(), 1);
  const h = await nvml.handleByIndex(0);
  t.equal(await nvml.uuid(h), 'G');
  t.equal(await nvml.name(h), 'N');
  const optional: [string, () => Promise<unknown>][] = [
    ['nvmlSystemGetDriverVersion', () => nvml.driverVersion()],
    ['nvmlDeviceGetHandleByUUID', () => nvml.handleByUuid('GPU-x')],
    ['nvmlDeviceGetMinorNumber', () => nvml.minorNumber(h)],
    ['nvmlDeviceGetMemoryInfo_v2', () => nvml.memory(h)],
    ['nvmlDeviceGetUtilizationRates', () => nvml.utilization(h)],
    ['nvmlDeviceGetPowerUsage', () => nvml.powerMilliwatts(h)],
    ['nvmlDeviceGetTemperature', () => nvml.temperatureCelsius(h)],
    ['nvmlDeviceGetComputeRunningProcesses_v3', () => nvml.computeProcesses(h)],
    ['nvmlDeviceGetGraphicsRunningProcesses_v3', () => nvml.graphicsProcesses(h)],
    ['nvmlDeviceGetProcessUtilization', () => nvml.processUtilization(h, 0)],
    ['nvmlDeviceGetMigMode', () => nvml.migMode(h)],
    ['nvmlDeviceGetMaxMigDeviceCount', () => nvml.maxMigDeviceCount(h)],
    ['nvmlDeviceGetMigDeviceHandleByIndex', () => nvml.migDeviceHandleByIndex(h, 0)],
    ['nvmlDeviceGetGpuInstanceId', () => nvml.gpuInstanceId(h)],
    ['nvmlDeviceGetComputeInstanceId', () => nvml.computeInstanceId(h)],
  ];
  for (const [call, fn] of optional) await t.rejects(fn(), nvmlError(NVML_ERROR_FUNCTION_NOT_FOUND, call), call);
  t.match(nvml.stats, { errors: optional.length });
  await nvml.shutdown();
});

t.test('system calls and identity', async (t) => {
  const { nvml, calls } = await rig(t, { driverVersion: '550.54.15', gpus: [full, { uuid: UUID2, name: 'Tesla T4' }] });
  t.equal(nvml.path, buildFakeNvml().path);
  t.equal(await nvml.driverVersion(), '550.54.15');
  t.equal(await nvml.deviceCount(), 2);
  const h0 = await nvml.handleByIndex(0);
  const h1 = await nvml.handleByIndex(1);
  t.type(h0, 'bigint');
  t.not(h0, h1);
  t.equal(await nvml.uuid(h0), UUID);
  t.equal(await nvml.name(h0), 'NVIDIA A100-SXM4-80GB');
  t.equal(await nvml.uuid(h1), UUID2);
  t.equal(await nvml.name(h1), 'Tesla T4');
  t.equal(await nvml.handleByUuid(UUID2), h1);
  t.equal(await nvml.minorNumber(h0), 3);
  await t.rejects(nvml.minorNumber(h1), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetMinorNumber'));
  await t.rejects(nvml.handleByIndex(2), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetHandleByIndex_v2'));
  await t.rejects(nvml.handleByUuid('GPU-nope'), nvmlError(NVML_ERROR_NOT_FOUND, 'nvmlDeviceGetHandleByUUID'));
  t.equal(calls()[0], 'nvmlInit_v2');
});

t.test('arguments podvisor would never pass are refused before the driver sees them', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [full] });
  const before = calls().length;
  await t.rejects(nvml.uuid(0n), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetUUID'));
  await t.rejects(nvml.uuid(-5n), nvmlError(NVML_ERROR_INVALID_ARGUMENT));
  await t.rejects(nvml.handleByIndex(-1), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetHandleByIndex_v2'));
  await t.rejects(nvml.handleByIndex(1.5), nvmlError(NVML_ERROR_INVALID_ARGUMENT));
  await t.rejects(nvml.handleByUuid(''), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetHandleByUUID'));
  await t.rejects(nvml.handleByUuid('GPU-\0x'), nvmlError(NVML_ERROR_INVALID_ARGUMENT));
  const h = await nvml.handleByIndex(0);
  await t.rejects(nvml.processUtilization(h, -1), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetProcessUtilization'));
  await t.rejects(nvml.migDeviceHandleByIndex(h, -1), nvmlError(NVML_ERROR_INVALID_ARGUMENT));
  t.same(calls().slice(before), ['nvmlDeviceGetHandleByIndex_v2'], 'only the valid call reached the driver');
  // a pointer that is not a device: the driver answers INVALID_ARGUMENT
  await t.rejects(nvml.uuid(h + 8n), nvmlError(NVML_ERROR_INVALID_ARGUMENT, 'nvmlDeviceGetUUID'));
});

t.test('strings: bytes up to the NUL, invalid UTF-8 replaced, never a throw', async (t) => {
  const nameBytes = Buffer.from([0x47, 0x50, 0x55, 0xff, 0xfe, 0x20, 0xc3, 0xa9, 0xe2, 0x82]); // "GPU", 2 bad bytes, " é", a cut sequence
  const { nvml } = await rig(t, { driverVersion: '', gpus: [{ uuid: UUID, nameBytes }] });
  const h = await nvml.handleByIndex(0);
  t.equal(await nvml.name(h), 'GPU\uFFFD\uFFFD é\uFFFD');
  t.equal(await nvml.driverVersion(), '');
});

t.test('memory: _v2 with the struct version, `used` without reserved', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [full] });
  t.equal(nvml.resolved.memory, 'nvmlDeviceGetMemoryInfo_v2');
  const h = await nvml.handleByIndex(0);
  t.same(await nvml.memory(h), { total: 85_899_345_920, used: 1_000_000, free: 85_000_000_000, reserved: 500_000 });
  t.equal(calls().at(-1), 'nvmlDeviceGetMemoryInfo_v2');
});

t.test('memory: NOT_AVAILABLE and values above 2^53 are absent, not NaN', async (t) => {
  const { nvml } = await rig(t, { gpus: [{ uuid: UUID, memTotal: 2n ** 53n + 2n, memUsed: NOT_AVAILABLE, memFree: 2 ** 53, memReserved: 0 }] });
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.memory(h), { free: 2 ** 53, reserved: 0 });
});

t.test('memory: the v1 call when _v2 is missing (used includes reserved)', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [full] }, { noMemInfoV2: true });
  t.equal(nvml.resolved.memory, 'nvmlDeviceGetMemoryInfo');
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.memory(h), { total: 85_899_345_920, used: 1_500_000, free: 85_000_000_000 });
  t.equal(calls().at(-1), 'nvmlDeviceGetMemoryInfo');
});

t.test('utilization, power, temperature', async (t) => {
  const { nvml, write } = await rig(t, { gpus: [full] });
  const h = await nvml.handleByIndex(0);
  t.same(await nvml.utilization(h), { gpu: 42, memory: 17 });
  t.equal(await nvml.powerMilliwatts(h), 61_234);
  t.equal(nvml.resolved.temperatureCelsius, 'nvmlDeviceGetTemperature');
  t.equal(await nvml.temperatureCelsius(h), 38);

  write({ gpus: [{ ...full, utilGpu: 0xffffffff, utilMem: 101, powerMw: 0xffffffff, tempC: -5 }] });
  t.strictSame(await nvml.utilization(h), {}, 'percentages over 100 are absent');
  await t.rejects(nvml.powerMilliwatts(h), nvmlError(NVML_ERROR_UNKNOWN, 'nvmlDeviceGetPowerUsage'));
  // the old call's unsigned out-parameter cannot say -5: 4294967291 is refused, not passed on
  await t.rejects(nvml.temperatureCelsius(h), { code: NVML_ERROR_UNKNOWN, message: /temperature out of range: 4294967291/ });

  write({ gpus: [{ uuid: UUID }] });
  const unsupported: (() => Promise<unknown>)[] = [
    () => nvml.utilization(h),
    () => nvml.powerMilliwatts(h),
    () => nvml.temperatureCelsius(h),
    () => nvml.memory(h),
  ];
  for (const fn of unsupported) {
    await t.rejects(fn(), nvmlError(NVML_ERROR_NOT_SUPPORTED));
  }
});

t.test('temperature: nvmlDeviceGetTemperatureV (versioned struct) when the old call is gone', async (t) => {
  const { nvml, write, calls } = await rig(t, { gpus: [full] }, { noOldTemperature: true });
  t.equal(nvml.resolved.temperatureCelsius, 'nvmlDeviceGetTemperatureV');
  const h = await nvml.handleByIndex(0);
  t.equal(await nvml.temperatureCelsius(h), 38);
  t.equal(calls().at(-1), 'nvmlDeviceGetTemperatureV');
  write({ gpus: [{ ...full, tempC: -5 }] });
  t.equal(await nvml.temperatureCelsius(h), -5, 'a signed temperature passes');
  write({ gpus: [{ ...full, tempC: 5000 }] });
  await t.rejects(nvml.temperatureCelsius(h), nvmlError(NVML_ERROR_UNKNOWN, 'nvmlDeviceGetTemperatureV'));
});

const procs: FakeGpu = {
  uuid: UUID,
  compute: [
    { pid: 100, mem: 1_048_576 },
    { pid: 101, mem: 'na' },
    { pid: 102, mem: NOT_AVAILABLE - 1n },
    { pid: 0, mem: 5 }, // no such pid: dropped
  ],
  graphics: [{ pid: 200, mem: 4096 }],
};

t.test('running processes: _v3, the two-call dance, NOT_AVAILABLE memory absent', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [procs] });
  t.equal(nvml.resolved.computeProcesses, 'nvmlDeviceGetComputeRunningProcesses_v3');
  t.equal(nvml.resolved.graphicsProcesses, 'nvmlDeviceGetGraphicsRunningProcesses_v3');
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.computeProcesses(h), [{ pid: 100, usedGpuMemory: 1_048_576 }, { pid: 101 }, { pid: 102 }]);
  t.same(calls().slice(-2), ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetComputeRunningProcesses_v3'], 'size, then fetch');
  t.strictSame(await nvml.graphicsProcesses(h), [{ pid: 200, usedGpuMemory: 4096 }]);
});

t.test('running processes: an empty list is one call', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [{ uuid: UUID, compute: [] }] });
  const h = await nvml.handleByIndex(0);
  const before = calls().length;
  t.same(await nvml.computeProcesses(h), []);
  t.equal(calls().length - before, 1);
  await t.rejects(nvml.graphicsProcesses(h), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetGraphicsRunningProcesses_v3'));
});

t.test('running processes: a list that grows between the two calls is fetched again', async (t) => {
  const compute = [1, 2, 3, 4, 5].map((pid) => ({ pid, mem: pid * 10 }));
  const { nvml, calls, write } = await rig(t, { gpus: [{ uuid: UUID, compute, growing: 3 }] });
  const h = await nvml.handleByIndex(0);
  const before = calls().length;
  t.same(
    (await nvml.computeProcesses(h)).map((p) => p.pid),
    [1, 2, 3, 4, 5],
  );
  t.equal(calls().length - before, 3, 'size (2), fetch (too small: 5), fetch');

  write({ gpus: [{ uuid: UUID, compute, growing: 'always' }] });
  const start = calls().length;
  await t.rejects(nvml.computeProcesses(h), { code: NVML_ERROR_INSUFFICIENT_SIZE, message: /kept growing/ });
  t.equal(calls().length - start, 6, 'the sizing call and 5 fetches, then it gives up');
});

t.test('running processes: _v2 when _v3 is missing (MIG ids kept)', async (t) => {
  const { nvml } = await rig(t, { gpus: [{ ...procs, migMode: 1, mig: [{ uuid: 'MIG-a', gi: 1, ci: 0, compute: [{ pid: 300, mem: 7 }] }] }] }, { noV3: true });
  t.equal(nvml.resolved.computeProcesses, 'nvmlDeviceGetComputeRunningProcesses_v2');
  t.equal(nvml.resolved.graphicsProcesses, 'nvmlDeviceGetGraphicsRunningProcesses_v2');
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.computeProcesses(h), [
    { pid: 100, usedGpuMemory: 1_048_576 },
    { pid: 101 },
    { pid: 102 },
    { pid: 300, usedGpuMemory: 7, gpuInstanceId: 1, computeInstanceId: 0 },
  ]);
});

t.test('running processes: the plain symbols and the 16-byte v1 struct on an old driver', async (t) => {
  const { nvml, calls } = await rig(t, { gpus: [procs] }, { noV2Procs: true });
  t.equal(nvml.resolved.computeProcesses, 'nvmlDeviceGetComputeRunningProcesses');
  t.equal(nvml.resolved.graphicsProcesses, 'nvmlDeviceGetGraphicsRunningProcesses');
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.computeProcesses(h), [{ pid: 100, usedGpuMemory: 1_048_576 }, { pid: 101 }, { pid: 102 }]);
  t.strictSame(await nvml.graphicsProcesses(h), [{ pid: 200, usedGpuMemory: 4096 }]);
  t.equal(calls().at(-1), 'nvmlDeviceGetGraphicsRunningProcesses');
});

t.test('process utilization: samples newer than lastSeen, markers absent, NOT_FOUND is []', async (t) => {
  const samples = [
    { pid: 10, sm: 50, mem: 20, tsUs: 1_000 },
    { pid: 11, sm: 0xffffffff, mem: 3, tsUs: 2_000 },
    { pid: 12, sm: 7, mem: 101, tsUs: 3_000 },
    { pid: 0, sm: 1, mem: 1, tsUs: 3_000 }, // no such pid: dropped
  ];
  const { nvml, write } = await rig(t, { gpus: [{ uuid: UUID, samples }] });
  const h = await nvml.handleByIndex(0);
  t.strictSame(await nvml.processUtilization(h, 0), [
    { pid: 10, timeStampUs: 1_000, smUtil: 50, memUtil: 20 },
    { pid: 11, timeStampUs: 2_000, memUtil: 3 },
    { pid: 12, timeStampUs: 3_000, smUtil: 7 },
  ]);
  t.same(
    (await nvml.processUtilization(h, 1_500)).map((s) => s.pid),
    [11, 12],
  );
  t.same(await nvml.processUtilization(h, 3_000), [], 'nothing newer: NOT_FOUND');

  write({ gpus: [{ uuid: UUID, samples: [] }] });
  t.same(await nvml.processUtilization(h, 0), []);

  write({
    gpus: [
      {
        uuid: UUID,
        samples: [
          { pid: 10, sm: 1, mem: 1 },
          { pid: 11, sm: 2, mem: 2 },
          { pid: 12, sm: 3, mem: 3 },
        ],
        growing: 2,
      },
    ],
  });
  const now = Date.now() * 1000;
  const grown = await nvml.processUtilization(h, now - 60_000_000);
  t.same(
    grown.map((s) => s.pid),
    [10, 11, 12],
    'a list that grew between the calls is fetched again',
  );
  t.ok(
    grown.every((s) => s.timeStampUs > now - 60_000_000),
    'timestamps are µs since the epoch',
  );

  write({ gpus: [{ uuid: UUID }] });
  await t.rejects(nvml.processUtilization(h, 0), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetProcessUtilization'));
});

t.test('MIG: mode, slots, instance ids, MIG handles by UUID', async (t) => {
  const { nvml } = await rig(t, {
    gpus: [
      {
        ...full,
        migMode: 1,
        mig: [
          { uuid: 'MIG-11111111-1111-1111-1111-111111111111', slot: 0, gi: 1, ci: 0, memTotal: 10_000, memUsed: 2_500, compute: [{ pid: 77, mem: 2_000 }] },
          { uuid: 'MIG-22222222-2222-2222-2222-222222222222', slot: 2, gi: 5, ci: 1, name: 'NVIDIA A100 MIG 1g.10gb', compute: [] },
        ],
      },
      { uuid: UUID2 },
    ],
  });
  const h = await nvml.handleByIndex(0);
  t.same(await nvml.migMode(h), { current: 1, pending: 1 });
  t.equal(await nvml.maxMigDeviceCount(h), 7);
  const m0 = await nvml.migDeviceHandleByIndex(h, 0);
  t.equal(await nvml.migDeviceHandleByIndex(h, 1), undefined, 'an empty slot');
  const m2 = await nvml.migDeviceHandleByIndex(h, 2);
  if (m0 === undefined || m2 === undefined) throw new Error('MIG slots 0 and 2 must be filled');
  t.equal(await nvml.uuid(m0), 'MIG-11111111-1111-1111-1111-111111111111');
  t.equal(await nvml.name(m2), 'NVIDIA A100 MIG 1g.10gb');
  t.equal(await nvml.gpuInstanceId(m0), 1);
  t.equal(await nvml.computeInstanceId(m0), 0);
  t.equal(await nvml.gpuInstanceId(m2), 5);
  t.equal(await nvml.computeInstanceId(m2), 1);
  t.equal(await nvml.handleByUuid('MIG-22222222-2222-2222-2222-222222222222'), m2);
  t.strictSame(await nvml.memory(m0), { total: 10_000, used: 2_500, free: 7_500, reserved: 0 });
  t.strictSame(await nvml.computeProcesses(m0), [{ pid: 77, usedGpuMemory: 2_000, gpuInstanceId: 1, computeInstanceId: 0 }]);
  t.strictSame(await nvml.computeProcesses(h), [
    { pid: 4242, usedGpuMemory: 123_456_789 },
    { pid: 77, usedGpuMemory: 2_000, gpuInstanceId: 1, computeInstanceId: 0 },
  ]);
  // as on real NVML: no utilization on a MIG device nor on a MIG-enabled GPU
  await t.rejects(nvml.utilization(h), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetUtilizationRates'));
  await t.rejects(nvml.utilization(m0), nvmlError(NVML_ERROR_NOT_SUPPORTED));
  await t.rejects(nvml.processUtilization(h, 0), nvmlError(NVML_ERROR_NOT_SUPPORTED));
  await t.rejects(nvml.gpuInstanceId(h), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetGpuInstanceId'));

  const other = await nvml.handleByIndex(1);
  await t.rejects(nvml.migMode(other), nvmlError(NVML_ERROR_NOT_SUPPORTED, 'nvmlDeviceGetMigMode'), 'pre-Ampere');
  t.equal(await nvml.maxMigDeviceCount(other), 0);
});

t.test('a lost GPU answers GPU_IS_LOST (15) for every call, its MIG devices too', async (t) => {
  const scenario = {
    gpus: [
      { ...full, migMode: 1 as const, mig: [{ uuid: 'MIG-a', gi: 1, ci: 0 }] },
      { uuid: UUID2, powerMw: 1 },
    ],
  };
  const { nvml, write } = await rig(t, scenario);
  const h = await nvml.handleByIndex(0);
  const m = await nvml.migDeviceHandleByIndex(h, 0);
  if (m === undefined) throw new Error('MIG slot 0 must be filled');
  write({ gpus: [{ ...scenario.gpus[0]!, lost: true }, scenario.gpus[1]!] });
  const calls: (() => Promise<unknown>)[] = [
    () => nvml.uuid(h),
    () => nvml.memory(h),
    () => nvml.computeProcesses(h),
    () => nvml.powerMilliwatts(h),
    () => nvml.gpuInstanceId(m),
    () => nvml.handleByIndex(0),
  ];
  for (const fn of calls) {
    await t.rejects(fn(), nvmlError(NVML_ERROR_GPU_IS_LOST));
  }
  await t.rejects(nvml.handleByIndex(0), { message: 'nvmlDeviceGetHandleByIndex_v2: NVML_ERROR_GPU_IS_LOST' });
  const h1 = await nvml.handleByIndex(1);
  t.equal(await nvml.powerMilliwatts(h1), 1, 'the other GPU still answers');
});

t.test('error codes pass through as NvmlError: fail rules, init failures, uninitialised', async (t) => {
  const { nvml, write } = await rig(t, { gpus: [{ ...full, fail: { nvmlDeviceGetPowerUsage: NVML_ERROR_NO_PERMISSION } }] });
  const h = await nvml.handleByIndex(0);
  const err = await nvml.powerMilliwatts(h).catch((e: unknown) => e);
  t.ok(err instanceof NvmlError);
  t.match(err, { code: NVML_ERROR_NO_PERMISSION, call: 'nvmlDeviceGetPowerUsage', message: 'nvmlDeviceGetPowerUsage: NVML_ERROR_NO_PERMISSION' });
  write({ gpus: [full], fail: { nvmlDeviceGetCount_v2: 1234 } });
  await t.rejects(nvml.deviceCount(), { code: 1234, message: 'nvmlDeviceGetCount_v2: NVML_ERROR_UNKNOWN(1234)' });

  // init failing (no driver) and calls made without a successful init
  write({ initCode: 9, gpus: [full] });
  await t.rejects(nvml.init(), nvmlError(9, 'nvmlInit_v2'));
  await nvml.shutdown(); // the rig's init: now no init holds
  await t.rejects(nvml.deviceCount(), nvmlError(NVML_ERROR_UNINITIALIZED, 'nvmlDeviceGetCount_v2'));
  write({ gpus: [full] });
  await nvml.init(); // for the rig's shutdown
  t.match(nvml.stats, { errors: 4 });
});

t.test('the call log records each call with its device', async (t) => {
  const { nvml, log } = await rig(t, { gpus: [full] });
  const h = await nvml.handleByIndex(0);
  await nvml.powerMilliwatts(h);
  await nvml.shutdown();
  await nvml.init();
  t.same(readNvmlLog(log), [['nvmlInit_v2'], ['nvmlDeviceGetHandleByIndex_v2'], ['nvmlDeviceGetPowerUsage', UUID], ['nvmlShutdown'], ['nvmlInit_v2']]);
});
