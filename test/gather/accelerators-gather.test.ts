/**
 * The accelerator kind inside a gather on the cgroup v2 fixture host (systemd driver, containerd): the gatherer reads
 * each GPU pid's /proc/<pid>/cgroup under --rootfs (v2's single `0::` line), joins it to the runtime's container, and
 * attaches the container's own values; a pid of a sandbox or a system service gives no container series; a garbage
 * /proc/<pid>/cgroup is a counted collector error; a process that is gone is not; the kind off asks nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Gatherer } from '../../src/gather/gatherer.js';
import type { Accelerators } from '../../src/gather/accelerators.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { FileReader } from '../../src/host/file-reader.js';
import { silentLogger } from '../../src/log.js';
import type { AcceleratorSample } from '../../src/model/accelerator.js';
import type { MetricKind } from '../../src/model/kinds.js';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';
import { container, FakeClient } from '../runtime/fixtures/fake-client.js';
import { until } from '../support/poll.js';

const UID = '8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';
const POD = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`;
const APP_ID = '3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4';
const PAUSE_ID = 'be3ea3108af459f5e4bf81fb3a6928eaa31727350cb0abc69fa3d05cd9f9f4cf';
const APP = `${POD}/cri-containerd-${APP_ID}.scope`;
const PAUSE = `${POD}/cri-containerd-${PAUSE_ID}.scope`;
const A = 'GPU-11111111-2222-3333-4444-555555555555';

async function setup(t: Test, kinds: MetricKind[], acc: Accelerators): Promise<{ g: Gatherer; root: string }> {
  const root = copyFixtureHost('v2-systemd');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const proc = (pid: number, text: string): void => {
    fs.mkdirSync(path.join(root, 'proc', String(pid)), { recursive: true });
    fs.writeFileSync(path.join(root, 'proc', String(pid), 'cgroup'), text);
  };
  proc(40001, `0::${APP}\n`);
  proc(40002, `0::${PAUSE}\n`);
  proc(40003, '0::/system.slice/nvidia-persistenced.service\n');
  proc(40004, 'not a cgroup file\n');
  const client = new FakeClient({ runtime: 'containerd', version: { version: '1.7.0', apiVersion: '' } });
  const labels = { 'io.kubernetes.pod.name': 'trainer-0', 'io.kubernetes.pod.namespace': 'ml', 'io.kubernetes.pod.uid': UID };
  client.add(
    container(APP_ID, { runtime: 'containerd', name: APP_ID, labels: { ...labels, 'io.kubernetes.container.name': 'train' }, networkOwner: false }),
    container(PAUSE_ID, { runtime: 'containerd', name: PAUSE_ID, labels, kind: 'sandbox', networkOwner: true }),
  );
  const factory = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('registration', () => factory.status().up);
  const g = new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    kinds,
    runtimes: [factory],
    accelerators: acc,
  });
  return { g, root };
}

function accelerators(sample: AcceleratorSample | undefined): Accelerators & { asked: number } {
  const a = {
    asked: 0,
    sample() {
      a.asked++;
      return sample;
    },
    assignments: () => undefined,
    status: () => ({ nvmlUp: sample !== undefined, nvmlErrors: 0 }),
  };
  return a;
}

const sample: AcceleratorSample = {
  takenAtMs: 0,
  devices: [
    {
      uuid: A,
      index: 0,
      minor: 0,
      model: 'NVIDIA L4',
      memoryTotalBytes: 24e9,
      memoryUsedBytes: 9e9,
      utilizationPercent: 80,
      processes: [
        { pid: 40001, memoryBytes: 5e9 },
        { pid: 40002, memoryBytes: 1e9 },
        { pid: 40003, memoryBytes: 1e9 },
        { pid: 40004, memoryBytes: 1e9 },
        { pid: 40005, memoryBytes: 1e9 },
      ],
      processUtilization: [{ pid: 40001, smPercent: 55 }],
    },
  ],
};

t.test('cgroup v2: a GPU pid joined to its container through /proc/<pid>/cgroup under --rootfs', async (t) => {
  const acc = accelerators(sample);
  const { g } = await setup(t, ['accelerator', 'cpu'], acc);
  const snap = await g.gather();
  const app = snap.containers.find((c) => c.id === APP);
  t.same(app?.labels, { name: APP_ID, image: 'nginx:1.25', container: 'train', pod: 'trainer-0', namespace: 'ml' }, 'the runtime container, labelled');
  t.same(app?.accelerators, [{ uuid: A, model: 'NVIDIA L4', source: 'process', memoryTotalBytes: 24e9, memoryUsedBytes: 5e9, dutyCycle: 55 }]);
  t.same(
    snap.containers.filter((c) => c.accelerators !== undefined).map((c) => c.id),
    [APP],
    'the sandbox, the system service and the pod cgroup get none',
  );
  t.same(snap.accelerators, sample.devices, 'the node-level devices ride along');
  t.same(snap.acceleratorStatus, { nvmlUp: true, nvmlErrors: 0, attributions: { pod_resources: 0, process: 1, devices_list: 0 } });
  t.equal(snap.collectorErrors.accelerator, 1, 'the garbage /proc/40004/cgroup is counted; the vanished 40005 is not');
});

t.test('NVML down: status only, no devices, no container series', async (t) => {
  const { g } = await setup(t, ['accelerator', 'cpu'], accelerators(undefined));
  const snap = await g.gather();
  t.equal(snap.accelerators, undefined);
  t.same(
    snap.containers.filter((c) => c.accelerators !== undefined),
    [],
  );
  t.same(snap.acceleratorStatus?.nvmlUp, false);
});

t.test('the kind off: the accelerator sources are not asked', async (t) => {
  const acc = accelerators(sample);
  const { g } = await setup(t, ['cpu'], acc);
  const snap = await g.gather();
  t.equal(acc.asked, 0);
  t.equal(snap.acceleratorStatus, undefined);
  t.equal(snap.accelerators, undefined);
});

t.test('cgroup v1: devices.list places a Docker container nothing else did, read once per minute, not per gather', async (t) => {
  const root = copyFixtureHost('v1-cgroupfs');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const id = '44b317d826b2d53c344ee49e3fe4686613870c72d811dfd8ec1645d4579f6a47';
  const list = path.join(root, 'sys/fs/cgroup/devices/docker', id, 'devices.list');
  fs.writeFileSync(list, 'c 1:3 rwm\nc 195:255 rwm\nc 195:0 rwm\n');
  const client = new FakeClient({ runtime: 'docker', version: { version: '24.0.7', apiVersion: '1.43' } });
  client.add(container(id, { name: 'legacy-gpu' }));
  const factory = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('registration', () => factory.status().up);
  let now = 1_000_000;
  const reads: string[] = [];
  class Counting extends FileReader {
    override read(file: string): string | undefined {
      if (file.endsWith('devices.list')) reads.push(file);
      return super.read(file);
    }
  }
  const g = new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    kinds: ['accelerator', 'cpu'],
    runtimes: [factory],
    reader: new Counting(),
    now: () => now,
    accelerators: accelerators({
      takenAtMs: 0,
      devices: [{ uuid: A, index: 0, minor: 0, model: 'Tesla T4', memoryTotalBytes: 16e9, processes: [], processUtilization: [] }],
    }),
  });
  const first = await g.gather();
  t.same(
    first.containers.find((c) => c.id === `/docker/${id}`)?.accelerators,
    [{ uuid: A, model: 'Tesla T4', source: 'devices_list', memoryTotalBytes: 16e9, memoryUsedBytes: 0, dutyCycle: 0 }],
    'c 195:0: /dev/nvidia0, the GPU with minor 0 (nvidiactl, 195:255, is no GPU)',
  );
  t.same(reads, [list], "only the runtime container's devices.list is read");
  now += 30_000;
  await g.gather();
  t.equal(reads.length, 1, 'not read again within a minute');
  fs.writeFileSync(list, 'c 1:3 rwm\n');
  now += 31_000;
  const later = await g.gather();
  t.equal(reads.length, 2, 'read again after a minute');
  t.equal(later.containers.find((c) => c.id === `/docker/${id}`)?.accelerators, undefined, 'the rule gone: no GPU');
});
