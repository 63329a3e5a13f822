/**
 * The NVML poll (src/gpu/sampler.ts) against the fake libnvidia-ml, loaded as the real one is: every GPU and MIG
 * device with what NVML gives for it, absence where it gives nothing, a GPU lost mid-run and back, a hung call (down,
 * then up once it returns), NVML that does not initialise (retried with backoff on an injected clock), the driver going
 * away (initialised again), and shutdown. Every hung call is released before its subtest ends.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { loadNvml } from '../../src/gpu/nvml/library.js';
import { NvmlSampler, mergeProcesses } from '../../src/gpu/sampler.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { AcceleratorDevice } from '../../src/model/accelerator.js';
import { buildFakeNvml, fakeNvmlEnv, readNvmlLog, writeScenario, type FakeGpu, type FakeScenario } from '../support/fake-nvml.js';
import { until } from '../support/poll.js';

const A = 'GPU-11111111-2222-3333-4444-555555555555';
const B = 'GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const M = 'GPU-99999999-8888-7777-6666-555555555555';
const MIG_A = 'MIG-0a0a0a0a-1111-2222-3333-444444444444';
const MIG_B = 'MIG-0b0b0b0b-1111-2222-3333-444444444444';
const GiB = 2 ** 30;

const gpuA: FakeGpu = {
  uuid: A,
  name: 'NVIDIA H100 80GB HBM3',
  minor: 0,
  memTotal: 80 * GiB,
  memUsed: 20 * GiB,
  memFree: 60 * GiB,
  memReserved: GiB / 2,
  utilGpu: 87,
  utilMem: 40,
  powerMw: 312_500,
  tempC: 61,
  migMode: 0,
  compute: [
    { pid: 4001, mem: 12 * GiB },
    { pid: 4002, mem: 'na' },
  ],
  graphics: [{ pid: 4001, mem: 12 * GiB }],
  samples: [
    { pid: 4001, sm: 55, mem: 20, tsUs: 1_000 },
    { pid: 4001, sm: 60, mem: 21, tsUs: 2_000 },
    { pid: 4002, sm: 4294967295, mem: 1, tsUs: 2_000 },
  ],
};
/** An old GPU: no power, no temperature, no per-process utilization, no MIG. */
const gpuB: FakeGpu = { uuid: B, name: 'Tesla K80', minor: 1, memTotal: 12 * GiB, memUsed: GiB, memFree: 11 * GiB, utilGpu: 3, compute: [] };
const gpuM: FakeGpu = {
  uuid: M,
  name: 'NVIDIA A100-SXM4-40GB',
  minor: 2,
  memTotal: 40 * GiB,
  memUsed: 6 * GiB,
  memFree: 34 * GiB,
  powerMw: 90_000,
  tempC: 40,
  migMode: 1,
  mig: [
    {
      uuid: MIG_A,
      slot: 0,
      name: 'NVIDIA A100-SXM4-40GB MIG 1g.5gb',
      gi: 7,
      ci: 0,
      memTotal: 5 * GiB,
      memUsed: 2 * GiB,
      compute: [{ pid: 5001, mem: 2 * GiB }],
    },
    { uuid: MIG_B, slot: 3, name: 'NVIDIA A100-SXM4-40GB MIG 3g.20gb', gi: 2, ci: 0, memTotal: 20 * GiB, memUsed: 4 * GiB, compute: [] },
  ],
};

/**
 * One scenario file and call log for the whole file: the fake reads FAKE_NVML_SCENARIO once, when it is first loaded
 * into this process. Each test writes its scenario there and starts the log afresh.
 */
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-sampler-'));
const FILES = { scenario: path.join(DIR, 'scenario'), log: path.join(DIR, 'calls.log') };
Object.assign(process.env, fakeNvmlEnv(FILES.scenario, FILES.log));
t.teardown(() => fs.rmSync(DIR, { recursive: true, force: true }));

function setup(_t: Test, scenario: FakeScenario): typeof FILES {
  writeScenario(FILES.scenario, scenario);
  fs.rmSync(FILES.log, { force: true });
  return FILES;
}

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { lines, debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

const byUuid = (devices: readonly AcceleratorDevice[] | undefined, uuid: string): AcceleratorDevice | undefined => devices?.find((d) => d.uuid === uuid);

t.test('a poll: every GPU and MIG device, what NVML gives for each, and nothing it does not', async (t) => {
  const s = setup(t, { driverVersion: '550.54.15', gpus: [gpuA, gpuB, gpuM] });
  const lib = loadNvml(buildFakeNvml().path, { timeoutMs: 30_000 });
  const sampler = new NvmlSampler({ library: lib, intervalMs: 60_000, log: silentLogger });
  t.equal(sampler.current(), undefined, 'nothing before the first poll');
  await sampler.poll();
  const sample = sampler.current();
  t.equal(sampler.up(), true);
  t.equal(sample?.driverVersion, '550.54.15');
  t.same(
    sample?.devices.map((d) => d.uuid),
    [A, B, M, MIG_A, MIG_B],
    'GPUs by index, each MIG-enabled GPU followed by its MIG devices',
  );
  t.same(byUuid(sample?.devices, A), {
    uuid: A,
    index: 0,
    minor: 0,
    model: 'NVIDIA H100 80GB HBM3',
    memoryTotalBytes: 80 * GiB,
    memoryUsedBytes: 20 * GiB,
    powerWatts: 312.5,
    temperatureCelsius: 61,
    utilizationPercent: 87,
    // pid 4001 in both lists holds one allocation; 4002's memory is "not available": absent, not 0.
    processes: [{ pid: 4001, memoryBytes: 12 * GiB }, { pid: 4002 }],
    // the newest sample per pid; a 0xFFFFFFFF share is no sample.
    processUtilization: [{ pid: 4001, smPercent: 60 }],
  });
  t.same(
    byUuid(sample?.devices, B),
    { uuid: B, index: 1, minor: 1, model: 'Tesla K80', memoryTotalBytes: 12 * GiB, memoryUsedBytes: GiB, utilizationPercent: 3, processes: [] },
    'NOT_SUPPORTED power, temperature and process utilization are absent',
  );
  const parent = byUuid(sample?.devices, M);
  t.equal(parent?.utilizationPercent, undefined, 'a MIG-enabled GPU has no utilization');
  t.equal(parent?.processes, undefined, "a MIG-enabled GPU's processes are read on its MIG devices");
  t.same(byUuid(sample?.devices, MIG_A), {
    uuid: MIG_A,
    index: 2,
    model: 'NVIDIA A100-SXM4-40GB MIG 1g.5gb',
    mig: { parentUuid: M, gpuInstanceId: 7, computeInstanceId: 0 },
    memoryTotalBytes: 5 * GiB,
    memoryUsedBytes: 2 * GiB,
    processes: [{ pid: 5001, memoryBytes: 2 * GiB }],
  });
  const calls = readNvmlLog(s.log).map(([f]) => f);
  t.notOk(
    calls.some((f, i) => f === 'nvmlDeviceGetUtilizationRates' && readNvmlLog(s.log)[i]?.[1]?.startsWith('MIG-')),
    'utilization is not asked of MIG devices',
  );

  // The next poll asks only for samples newer than the newest seen.
  await sampler.poll();
  t.same(byUuid(sampler.current()?.devices, A)?.processUtilization, [], 'no sample newer than the last poll: every process idle');
  await sampler.close();
  t.ok(
    readNvmlLog(s.log).some(([f]) => f === 'nvmlShutdown'),
    'NVML is shut down on close',
  );
});

t.test('a GPU that falls off the bus drops out of the poll and comes back when it answers', async (t) => {
  const s = setup(t, { gpus: [gpuA, gpuB] });
  const log = recordingLog();
  const sampler = new NvmlSampler({ library: loadNvml(buildFakeNvml().path, { timeoutMs: 30_000 }), intervalMs: 60_000, log });
  await sampler.poll();
  t.same(
    sampler.current()?.devices.map((d) => d.uuid),
    [A, B],
  );
  writeScenario(s.scenario, { gpus: [{ ...gpuA, lost: true }, gpuB] });
  await sampler.poll();
  t.same(
    sampler.current()?.devices.map((d) => d.uuid),
    [B],
    'the lost GPU is left out; the others stay',
  );
  t.equal(sampler.up(), true, 'one lost GPU does not take the collector down');
  t.ok(
    log.lines.some((l) => l.startsWith('warn GPU left out') && l.includes('GPU_IS_LOST')),
    log.lines.join('\n'),
  );
  await sampler.poll();
  t.equal(log.lines.filter((l) => l.startsWith('warn GPU left out')).length, 1, 'logged once, not once per poll');
  writeScenario(s.scenario, { gpus: [gpuA, gpuB] });
  await sampler.poll();
  t.same(
    sampler.current()?.devices.map((d) => d.uuid),
    [A, B],
    'asked again every poll: back once it answers',
  );
  await sampler.close();
});

t.test('a hung driver call: the collector is down (no sample) until the call returns, and close does not wait on it', async (t) => {
  const s = setup(t, { gpus: [{ ...gpuA, hang: ['nvmlDeviceGetPowerUsage'] }] });
  const log = recordingLog();
  const lib = loadNvml(buildFakeNvml().path, { timeoutMs: 200 });
  const sampler = new NvmlSampler({ library: lib, intervalMs: 60_000, log });
  await sampler.poll();
  t.equal(sampler.up(), false);
  t.equal(sampler.current(), undefined, 'no GPU series while a call is hung');
  t.ok(
    log.lines.some((l) => l.startsWith('error') && l.includes('nvmlDeviceGetPowerUsage')),
    log.lines.join('\n'),
  );
  await sampler.poll();
  t.equal(sampler.up(), false, 'still down: nothing more is asked of a hung driver');
  t.same(await sampler.close(), { hung: true }, 'close reports the stuck call instead of waiting for nvmlShutdown');
  t.notOk(
    readNvmlLog(s.log).some(([f]) => f === 'nvmlShutdown'),
    'no nvmlShutdown behind a hung call',
  );
  writeScenario(s.scenario, { gpus: [gpuA] });
  await until('the hung call to return', () => lib.hung() === undefined);
});

t.test('a hung call that returns: the collector comes back up', async (t) => {
  const s = setup(t, { gpus: [{ ...gpuA, hang: ['nvmlDeviceGetTemperature'] }] });
  const lib = loadNvml(buildFakeNvml().path, { timeoutMs: 200 });
  const sampler = new NvmlSampler({ library: lib, intervalMs: 60_000, log: silentLogger });
  await sampler.poll();
  t.equal(sampler.up(), false);
  t.ok(sampler.errors() >= 1, 'the timeout is counted');
  writeScenario(s.scenario, { gpus: [gpuA] });
  await until('the hung call to return', () => lib.hung() === undefined);
  await sampler.poll();
  t.equal(sampler.up(), true);
  t.equal(byUuid(sampler.current()?.devices, A)?.temperatureCelsius, 61);
  t.same(await sampler.close(), { hung: false });
});

t.test('NVML that does not initialise is retried with backoff, and the driver going away initialises it again', async (t) => {
  const s = setup(t, { initCode: 9, gpus: [gpuA] });
  let now = 1_000_000;
  const log = recordingLog();
  const sampler = new NvmlSampler({ library: loadNvml(buildFakeNvml().path, { timeoutMs: 30_000 }), intervalMs: 10_000, log, now: () => now });
  await sampler.poll();
  t.equal(sampler.up(), false);
  t.ok(
    log.lines.some((l) => l.startsWith('warn NVML did not initialise') && l.includes('DRIVER_NOT_LOADED')),
    log.lines.join('\n'),
  );
  const inits = (): number => readNvmlLog(s.log).filter(([f]) => f === 'nvmlInit_v2').length;
  t.equal(inits(), 1);
  writeScenario(s.scenario, { initCode: 0, gpus: [gpuA] });
  await sampler.poll();
  t.equal(inits(), 1, 'not tried again before the backoff');
  now += 10_000;
  await sampler.poll();
  t.equal(inits(), 2);
  t.equal(sampler.up(), true);

  writeScenario(s.scenario, { gpus: [gpuA], fail: { nvmlDeviceGetCount_v2: 9 } });
  await sampler.poll();
  t.equal(sampler.up(), false, 'the driver gone: down');
  t.ok(
    readNvmlLog(s.log).some(([f]) => f === 'nvmlShutdown'),
    'shut down before initialising again',
  );
  writeScenario(s.scenario, { gpus: [gpuA] });
  await sampler.poll();
  t.equal(inits(), 3, 'initialised again');
  t.equal(sampler.up(), true);
  await sampler.close();
});

t.test('start() polls at once and on its interval; close() stops it', async (t) => {
  const s = setup(t, { gpus: [gpuB] });
  const sampler = new NvmlSampler({ library: loadNvml(buildFakeNvml().path, { timeoutMs: 30_000 }), intervalMs: 50, log: silentLogger });
  sampler.start();
  sampler.start();
  await until('three polls', () => readNvmlLog(s.log).filter(([f]) => f === 'nvmlDeviceGetCount_v2').length >= 3);
  await sampler.close();
  const after = readNvmlLog(s.log).filter(([f]) => f === 'nvmlDeviceGetCount_v2').length;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(readNvmlLog(s.log).filter(([f]) => f === 'nvmlDeviceGetCount_v2').length, after, 'no poll after close');
});

t.test('garbage from the driver: out-of-range values are absent and counted, bad names decoded, nothing crashes', async (t) => {
  setup(t, {
    gpus: [
      {
        uuid: A,
        nameBytes: Buffer.from([0x4e, 0x56, 0xff, 0xfe, 0x20, 0x47, 0x50, 0x55]),
        minor: 0,
        memTotal: 2n ** 64n - 1n,
        memUsed: 2n ** 60n,
        memFree: 5,
        utilGpu: 4294967295,
        powerMw: 4294967295,
        tempC: 4294967295,
        compute: [
          { pid: 0, mem: GiB },
          { pid: 4294967295, mem: GiB },
          { pid: 77, mem: 2n ** 64n - 1n },
        ],
        samples: [{ pid: 77, sm: 4294967295, mem: 4294967295 }],
      },
    ],
  });
  const sampler = new NvmlSampler({ library: loadNvml(buildFakeNvml().path, { timeoutMs: 30_000 }), intervalMs: 60_000, log: silentLogger });
  await sampler.poll();
  t.equal(sampler.up(), true, 'a device with nonsense values is still a device');
  t.same(sampler.current()?.devices, [
    {
      uuid: A,
      index: 0,
      minor: 0,
      model: 'NV\ufffd\ufffd GPU',
      processes: [{ pid: 77 }],
      processUtilization: [],
    },
  ]);
  t.equal(sampler.errors(), 2, "out-of-range power and temperature are counted; utilization's 0xFFFFFFFF is NVML's not-available marker: absence");
  await sampler.close();
});

t.test('processes in both lists are one allocation', async (t) => {
  t.same(mergeProcesses([{ pid: 1, usedGpuMemory: 10 }, { pid: 2 }, { pid: 1, usedGpuMemory: 10 }, { pid: 2, usedGpuMemory: 5 }]), [
    { pid: 1, memoryBytes: 10 },
    { pid: 2, memoryBytes: 5 },
  ]);
});
