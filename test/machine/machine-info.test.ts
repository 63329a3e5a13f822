import fs from 'node:fs';
import os from 'node:os';
import t from 'tap';
import { readMachineInfo, type HardwareSource } from '../../src/machine/machine-info.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const fixed = (cpu: unknown, mem: unknown): HardwareSource => ({
  cpu: () => Promise.resolve(cpu),
  mem: () => Promise.resolve(mem),
});

t.test('the real host, through systeminformation', async (t) => {
  const started = performance.now();
  const m = await readMachineInfo('/');
  t.comment(`readMachineInfo('/') took ${(performance.now() - started).toFixed(1)} ms`);

  t.equal(m.cpuCores, os.cpus().length, 'logical cores');
  t.equal(m.memoryBytes, os.totalmem(), 'MemTotal in bytes');
  t.type(m.cpuPhysicalCores, 'number');
  t.type(m.cpuSockets, 'number');
  t.ok((m.cpuSockets ?? 0) >= 1 && (m.cpuSockets ?? 0) <= (m.cpuPhysicalCores ?? 0), 'sockets <= physical cores');
  t.ok((m.cpuPhysicalCores ?? 0) <= (m.cpuCores ?? 0), 'physical cores <= logical cores');
  t.type(m.swapBytes, 'number');

  t.match(m.bootId, UUID);
  t.equal(m.bootId, readTrimmed('/proc/sys/kernel/random/boot_id'));
  const machineId = readTrimmed('/etc/machine-id') || readTrimmed('/var/lib/dbus/machine-id') || '';
  t.equal(m.machineId, machineId);
  const productUuid = readTrimmed('/sys/class/dmi/id/product_uuid');
  if (productUuid) t.equal(m.systemUuid, productUuid);
  else t.comment(`no readable product_uuid here; system_uuid = ${JSON.stringify(m.systemUuid)}`);
});

t.test('ids from a rootfs, trimmed', async (t) => {
  const rootfs = t.testdir({
    etc: { 'machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n' },
    var: { lib: { dbus: { 'machine-id': 'ffffffffffffffffffffffffffffffff\n' } } },
    sys: { class: { dmi: { id: { product_uuid: 'EC2A5B2B-1D4F-4C2A-9A35-0F6E1B3C9D10\n' } } } },
    proc: { sys: { kernel: { random: { boot_id: '0fe8b8a8-3adb-49c3-8bc7-314ad8750b31\n' } } } },
  });
  const m = await readMachineInfo(rootfs, { source: fixed({}, {}) });
  t.same(m, {
    machineId: '3d1219c7c4c5404aaa1f6d2a48adfda4',
    systemUuid: 'EC2A5B2B-1D4F-4C2A-9A35-0F6E1B3C9D10',
    bootId: '0fe8b8a8-3adb-49c3-8bc7-314ad8750b31',
  });
});

t.test('fallbacks: dbus machine-id; system UUID from the device tree, then /etc/machine-id', async (t) => {
  const dbusOnly = t.testdir({
    etc: { 'machine-id': '\n' },
    var: { lib: { dbus: { 'machine-id': 'aaaabbbbccccddddeeeeffff00001111\n' } } },
    proc: { 'device-tree': { 'system-id': 'IBM,0212345AB\0' } },
  });
  const a = await readMachineInfo(dbusOnly, { source: fixed({}, {}) });
  t.equal(a.machineId, 'aaaabbbbccccddddeeeeffff00001111', 'empty /etc/machine-id falls through to dbus');
  t.equal(a.systemUuid, 'IBM,0212345AB', 'PowerPC system-id, NUL terminator dropped');

  const vmUuid = t.testdir({ proc: { 'device-tree': { 'vm,uuid': '6f0e4d1c-9b8a-4c3d-8e2f-1a0b9c8d7e6f\0' } } });
  t.equal((await readMachineInfo(vmUuid, { source: fixed({}, {}) })).systemUuid, '6f0e4d1c-9b8a-4c3d-8e2f-1a0b9c8d7e6f');

  // cAdvisor on this VM: no product_uuid, so system_uuid = /etc/machine-id.
  const vm = t.testdir({ etc: { 'machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n' } });
  const b = await readMachineInfo(vm, { source: fixed({}, {}) });
  t.equal(b.systemUuid, '3d1219c7c4c5404aaa1f6d2a48adfda4');
  t.equal(b.machineId, '3d1219c7c4c5404aaa1f6d2a48adfda4');
});

t.test('unreadable id files are unknown, not an error', async (t) => {
  const empty = t.testdir({});
  t.same(await readMachineInfo(empty, { source: fixed({}, {}) }), { machineId: '', systemUuid: '', bootId: '' });
  // A directory where a file should be: read fails with EISDIR, which must not throw either.
  const odd = t.testdir({ etc: { 'machine-id': {} }, sys: { class: { dmi: { id: { product_uuid: {} } } } } });
  t.same(await readMachineInfo(odd, { source: fixed({}, {}) }), { machineId: '', systemUuid: '', bootId: '' });
});

t.test('valid counts are taken as they are', async (t) => {
  const m = await readMachineInfo(t.testdir({}), {
    source: fixed({ cores: 64, physicalCores: 32, processors: 2 }, { total: 270_582_939_648, swaptotal: 0 }),
  });
  t.same(m, {
    machineId: '',
    systemUuid: '',
    bootId: '',
    cpuCores: 64,
    cpuPhysicalCores: 32,
    cpuSockets: 2,
    memoryBytes: 270_582_939_648,
    swapBytes: 0,
  });
});

t.test('nonsense from the source is dropped field by field', async (t) => {
  const rootfs = t.testdir({});
  const m = await readMachineInfo(rootfs, {
    source: fixed({ cores: 0, physicalCores: Number.NaN, processors: 1.5 }, { total: Number.POSITIVE_INFINITY, swaptotal: -1 }),
  });
  t.same(m, { machineId: '', systemUuid: '', bootId: '' });
  t.notOk('cpuCores' in m, 'absent, not 0');

  const strings = await readMachineInfo(rootfs, { source: fixed({ cores: '4', physicalCores: null, processors: -2 }, { total: '1024', swaptotal: 2 ** 60 }) });
  t.same(strings, { machineId: '', systemUuid: '', bootId: '' });

  const shapes = await readMachineInfo(rootfs, { source: fixed(null, 'mem') });
  t.same(shapes, { machineId: '', systemUuid: '', bootId: '' });

  const partial = await readMachineInfo(rootfs, { source: fixed({ cores: 8 }, { total: 17_179_869_184 }) });
  t.same(partial, { machineId: '', systemUuid: '', bootId: '', cpuCores: 8, memoryBytes: 17_179_869_184 });
});

t.test('a failing source never throws; each call fails on its own', async (t) => {
  const rootfs = t.testdir({ proc: { sys: { kernel: { random: { boot_id: 'b\n' } } } } });
  const rejects: HardwareSource = {
    cpu: () => Promise.reject(new Error('lscpu: not found')),
    mem: () => Promise.resolve({ total: 4096, swaptotal: 0 }),
  };
  t.same(await readMachineInfo(rootfs, { source: rejects }), { machineId: '', systemUuid: '', bootId: 'b', memoryBytes: 4096, swapBytes: 0 });

  const throwsSync: HardwareSource = {
    cpu: () => Promise.resolve({ cores: 2, physicalCores: 2, processors: 1 }),
    mem: () => {
      throw new Error('sync throw');
    },
  };
  t.same(await readMachineInfo(rootfs, { source: throwsSync }), {
    machineId: '',
    systemUuid: '',
    bootId: 'b',
    cpuCores: 2,
    cpuPhysicalCores: 2,
    cpuSockets: 1,
  });
});

t.test('a source that never settles is given up after timeoutMs', async (t) => {
  const hangs: HardwareSource = {
    cpu: () => new Promise<unknown>(() => {}),
    mem: () => Promise.resolve({ total: 4096, swaptotal: 0 }),
  };
  // The cpu source never settles: that readMachineInfo returns at all, with the memory facts and without the CPU ones,
  // is the timeout at work. No stopwatch: a loaded machine would stretch it.
  const m = await readMachineInfo(t.testdir({}), { source: hangs, timeoutMs: 50 });
  t.same(m, { machineId: '', systemUuid: '', bootId: '', memoryBytes: 4096, swapBytes: 0 });
});
