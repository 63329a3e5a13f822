/**
 * GPU attribution (gather/accelerators.ts) as plain data: which runtime container holds which device, by which source,
 * and its own values on it. PodResources ids in every documented form, time-sliced GPUs split by process, MIG,
 * devices.list only where nothing else answers, pids seen from another cgroup namespace, and what never gets a series.
 */
import t from 'tap';
import { attributeAccelerators, containerValues, gpuMinorsOf, resolveDeviceId, type AttributionReads } from '../../src/gather/accelerators.js';
import type { AcceleratorDevice, AcceleratorSample } from '../../src/model/accelerator.js';
import { EMPTY_LABELS, type RuntimeContainer } from '../../src/model/runtime.js';
import type { ContainerSnapshot } from '../../src/model/snapshot.js';
import { parseDevicesList } from '../../src/cgroup/parse.js';
import { parsePidCgroup } from '../../src/proc/pid-cgroup.js';
import type { DeviceAssignment } from '../../src/gpu/pod-resources/client.js';

const A = 'GPU-11111111-2222-3333-4444-555555555555';
const B = 'GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const MIG1 = 'MIG-0f0f0f0f-1111-2222-3333-444444444444';
const ID1 = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);
const ID3 = 'c'.repeat(64);
const POD = '/kubepods/burstable/pod8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';

const gpuA: AcceleratorDevice = {
  uuid: A,
  index: 0,
  minor: 0,
  model: 'NVIDIA H100',
  memoryTotalBytes: 80e9,
  memoryUsedBytes: 30e9,
  utilizationPercent: 90,
  processes: [
    { pid: 101, memoryBytes: 10e9 },
    { pid: 102, memoryBytes: 15e9 },
    { pid: 103, memoryBytes: 1e9 },
  ],
  processUtilization: [
    { pid: 101, smPercent: 40 },
    { pid: 102, smPercent: 45 },
  ],
};
const gpuB: AcceleratorDevice = {
  uuid: B,
  index: 1,
  minor: 1,
  model: 'NVIDIA H100',
  memoryTotalBytes: 80e9,
  memoryUsedBytes: 5e8,
  utilizationPercent: 0,
  processes: [],
  processUtilization: [],
};
const mig: AcceleratorDevice = {
  uuid: MIG1,
  index: 2,
  model: 'NVIDIA A100 MIG 1g.10gb',
  mig: { parentUuid: 'GPU-99999999-8888-7777-6666-555555555555', gpuInstanceId: 7, computeInstanceId: 0 },
  memoryTotalBytes: 10e9,
  memoryUsedBytes: 2e9,
  processes: [{ pid: 201, memoryBytes: 2e9 }],
};
const sample = (...devices: AcceleratorDevice[]): AcceleratorSample => ({ takenAtMs: 0, devices });

function owner(id: string, kind: 'container' | 'sandbox' = 'container'): RuntimeContainer {
  return { runtime: 'containerd', id, name: id.slice(0, 12), image: 'app:1', labels: {}, kind, networkOwner: kind === 'sandbox' };
}

/** Three containers of one pod (c1, c2, c3), the pod cgroup, a sandbox and a system cgroup. */
function node(): { containers: ContainerSnapshot[]; owners: (RuntimeContainer | undefined)[] } {
  const c = (id: string, container: string): ContainerSnapshot => ({
    id,
    labels: { name: container, image: 'app:1', container, pod: 'trainer-0', namespace: 'ml' },
    cgroup: { spec: {} },
  });
  const containers: ContainerSnapshot[] = [
    { id: '/', labels: EMPTY_LABELS, cgroup: { spec: {} } },
    { id: POD, labels: { ...EMPTY_LABELS, pod: 'trainer-0', namespace: 'ml' }, cgroup: { spec: {} } },
    c(`${POD}/${ID1}`, 'c1'),
    c(`${POD}/${ID2}`, 'c2'),
    c(`${POD}/${ID3}`, 'c3'),
    { id: `${POD}/${'d'.repeat(64)}`, labels: { ...EMPTY_LABELS, name: 'pause', pod: 'trainer-0', namespace: 'ml' }, cgroup: { spec: {} } },
    { id: '/system.slice/nvidia-persistenced.service', labels: EMPTY_LABELS, cgroup: { spec: {} } },
  ];
  const owners = [undefined, undefined, owner(ID1), owner(ID2), owner(ID3), owner('d'.repeat(64), 'sandbox'), undefined];
  return { containers, owners };
}

/** Host pids → the cgroup paths their /proc/<pid>/cgroup lists. */
function reads(pids: Record<number, string[]>, minors: Record<string, number[]> = {}): AttributionReads & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    pidCgroups(pid) {
      asked.push(pid);
      return pids[pid];
    },
    gpuMinors: (id) => minors[id],
  };
}

const assign = (container: string, ...deviceIds: string[]): DeviceAssignment => ({
  namespace: 'ml',
  pod: 'trainer-0',
  container,
  resourceName: 'nvidia.com/gpu',
  deviceIds,
});

t.test('device ids in every documented form resolve to the device NVML reported', async (t) => {
  const oldMig: AcceleratorDevice = { ...mig, uuid: 'MIG-new-form-uuid' };
  const devices = [gpuA, gpuB, mig, oldMig];
  t.equal(resolveDeviceId(A, devices)?.uuid, A, 'a GPU UUID');
  t.equal(resolveDeviceId(`${A}::3`, devices)?.uuid, A, 'a time-slicing replica: the suffix is dropped');
  t.equal(resolveDeviceId(MIG1, devices)?.uuid, MIG1, 'a MIG UUID');
  t.equal(resolveDeviceId(`${MIG1}::1`, devices)?.uuid, MIG1, 'a shared MIG replica');
  t.equal(resolveDeviceId('MIG-GPU-99999999-8888-7777-6666-555555555555/7/0', devices)?.uuid, MIG1, 'the R450/R460 MIG form: parent/GI/CI');
  t.equal(resolveDeviceId('nvidia1', devices)?.uuid, B, "GKE's nvidia<minor>");
  t.equal(resolveDeviceId('nvidia0/vgpu2', devices)?.uuid, A, "GKE's shared form");
  t.equal(resolveDeviceId('GPU-00000000-0000-0000-0000-000000000000', devices), undefined, 'an id NVML does not know');
  t.equal(resolveDeviceId('nvidia7', devices), undefined, 'a minor NVML does not know');
  const parent: AcceleratorDevice = { uuid: 'GPU-99999999-8888-7777-6666-555555555555', index: 2, minor: 2, model: 'NVIDIA A100' };
  t.equal(resolveDeviceId('nvidia2/gi7', [parent, mig])?.uuid, MIG1, "GKE's MIG form: GPU minor and GPU instance");
});

t.test('two containers time-sharing one GPU (PodResources replicas) each get their own memory and SM share', async (t) => {
  const { containers, owners } = node();
  const r = reads({ 101: [`${POD}/${ID1}`], 102: [`${POD}/${ID2}`], 103: ['/system.slice/nvidia-persistenced.service'] });
  const out = attributeAccelerators(sample(gpuA), [assign('c1', `${A}::0`), assign('c2', `${A}::1`)], containers, owners, r);
  t.same(out.perContainer.get(2), [{ uuid: A, model: 'NVIDIA H100', source: 'pod_resources', memoryTotalBytes: 80e9, memoryUsedBytes: 10e9, dutyCycle: 40 }]);
  t.same(out.perContainer.get(3), [{ uuid: A, model: 'NVIDIA H100', source: 'pod_resources', memoryTotalBytes: 80e9, memoryUsedBytes: 15e9, dutyCycle: 45 }]);
  t.same([...out.perContainer.keys()], [2, 3], 'the system process gives no series: its cgroup is not a runtime container');
  t.same(out.attributions, { pod_resources: 2, process: 0, devices_list: 0 });
  t.same(out.unknownDeviceIds, []);
});

t.test('a container allocated a GPU it has not touched reads 0 (allocated, idle), not absent', async (t) => {
  const { containers, owners } = node();
  const out = attributeAccelerators(sample(gpuA, gpuB), [assign('c3', B)], containers, owners, reads({}));
  t.same(out.perContainer.get(4), [{ uuid: B, model: 'NVIDIA H100', source: 'pod_resources', memoryTotalBytes: 80e9, memoryUsedBytes: 0, dutyCycle: 0 }]);
});

t.test('without PodResources, NVML processes place containers through /proc/<pid>/cgroup', async (t) => {
  const { containers, owners } = node();
  // c1 seen from another cgroup namespace (`/../..` prefix, cgroup_namespaces(7)); c2 through a systemd-style scope name.
  const r = reads({ 101: [`/../../burstable/pod8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90/${ID1}`], 102: [`/kubepods.slice/cri-containerd-${ID2}.scope`], 103: [] });
  const out = attributeAccelerators(sample(gpuA), undefined, containers, owners, r);
  t.same(
    [...out.perContainer].map(([i, l]) => [i, l.map((a) => [a.source, a.memoryUsedBytes, a.dutyCycle])]),
    [
      [2, [['process', 10e9, 40]]],
      [3, [['process', 15e9, 45]]],
    ],
  );
  t.same(out.attributions, { pod_resources: 0, process: 2, devices_list: 0 });
  t.same(
    r.asked.sort((a, b) => a - b),
    [101, 102, 103],
    'each pid is read once, though it appears in two lists',
  );
});

t.test('a process that exited before its /proc read is skipped', async (t) => {
  const { containers, owners } = node();
  const out = attributeAccelerators(sample(gpuA), undefined, containers, owners, reads({ 102: [`${POD}/${ID2}`] }));
  t.same([...out.perContainer.keys()], [3]);
});

t.test('pods, sandboxes, QoS and system cgroups never get container_accelerator series', async (t) => {
  const { containers, owners } = node();
  const r = reads({ 101: [POD], 102: [`${POD}/${'d'.repeat(64)}`], 103: ['/'] });
  const out = attributeAccelerators(
    sample(gpuA),
    [{ namespace: 'ml', pod: 'trainer-0', container: '', resourceName: 'nvidia.com/gpu', deviceIds: [A] }],
    containers,
    owners,
    r,
  );
  t.equal(out.perContainer.size, 0);
});

t.test('devices.list is used only for containers PodResources and NVML did not place, as cAdvisor did', async (t) => {
  const { containers, owners } = node();
  const r = reads({ 101: [`${POD}/${ID1}`] }, { [`${POD}/${ID1}`]: [1], [`${POD}/${ID3}`]: [1, 5] });
  const out = attributeAccelerators(sample(gpuA, gpuB), undefined, containers, owners, r);
  t.same(
    out.perContainer.get(2)?.map((a) => [a.uuid, a.source]),
    [[A, 'process']],
    'c1 is placed by its process: its devices.list is not consulted',
  );
  t.same(
    out.perContainer.get(4)?.map((a) => [a.uuid, a.source]),
    [[B, 'devices_list']],
    'c3 by devices.list; minor 5 is no GPU NVML knows',
  );
  t.same(out.attributions, { pod_resources: 0, process: 1, devices_list: 1 });
});

t.test('where NVML cannot split a device, only a container that has it alone gets the device value', async (t) => {
  const opaque: AcceleratorDevice = { uuid: A, index: 0, minor: 0, model: 'Tesla K80', memoryTotalBytes: 12e9, memoryUsedBytes: 3e9, utilizationPercent: 70 };
  t.same(
    containerValues(opaque, 'devices_list', true, () => false),
    { uuid: A, model: 'Tesla K80', source: 'devices_list', memoryTotalBytes: 12e9, memoryUsedBytes: 3e9, dutyCycle: 70 },
    'exclusive: the device values, as cAdvisor reported them',
  );
  t.same(
    containerValues(opaque, 'pod_resources', false, () => false),
    { uuid: A, model: 'Tesla K80', source: 'pod_resources', memoryTotalBytes: 12e9 },
    'shared: absent, never a guess',
  );
  const { containers, owners } = node();
  const out = attributeAccelerators(sample(opaque), [assign('c1', `${A}::0`), assign('c2', `${A}::1`)], containers, owners, reads({}));
  t.same(
    out.perContainer.get(2)?.map((a) => [a.memoryUsedBytes, a.dutyCycle]),
    [[undefined, undefined]],
  );
});

t.test('MIG devices are their own accelerators; utilization NVML cannot give on MIG is absent', async (t) => {
  const { containers, owners } = node();
  const out = attributeAccelerators(sample(mig), [assign('c1', MIG1)], containers, owners, reads({ 201: [`${POD}/${ID1}`] }));
  t.same(out.perContainer.get(2), [{ uuid: MIG1, model: 'NVIDIA A100 MIG 1g.10gb', source: 'pod_resources', memoryTotalBytes: 10e9, memoryUsedBytes: 2e9 }]);
});

t.test('duty cycle is capped at 100 and not-available memory is absent', async (t) => {
  const d: AcceleratorDevice = {
    ...gpuA,
    processes: [{ pid: 1 }, { pid: 2 }],
    processUtilization: [
      { pid: 1, smPercent: 80 },
      { pid: 2, smPercent: 70 },
    ],
  };
  t.same(
    containerValues(d, 'process', false, () => true),
    { uuid: A, model: 'NVIDIA H100', source: 'process', memoryTotalBytes: 80e9, dutyCycle: 100 },
  );
});

t.test('PodResources ids of nvidia resources that match no device are reported; other resources are not', async (t) => {
  const { containers, owners } = node();
  const out = attributeAccelerators(
    sample(gpuA),
    [
      assign('c1', 'GPU-deadbeef-0000-0000-0000-000000000000'),
      { namespace: 'ml', pod: 'trainer-0', container: 'c2', resourceName: 'example.com/nic', deviceIds: ['eth9'] },
    ],
    containers,
    owners,
    reads({}),
  );
  t.same(out.unknownDeviceIds, ['GPU-deadbeef-0000-0000-0000-000000000000']);
  t.equal(out.perContainer.size, 0);
});

t.test('devices.list rules: GPU minors by name only, as cAdvisor read them', async (t) => {
  const rules = parseDevicesList('c 195:0 rwm\nc 195:255 rwm\nc 195:254 rw\nc 195:* m\nc 1:3 rwm\nb 195:1 r\nc 195:3 rwm\nc 195:0 r\n', 'devices.list');
  t.same(gpuMinorsOf(rules), [0, 3], 'nvidiactl (255), modeset (254), wildcards, block devices and other majors are not GPUs');
  t.same(gpuMinorsOf(parseDevicesList('a *:* rwm\n', 'devices.list')), [], 'all devices names no GPU');
  t.throws(() => parseDevicesList('c 195:0\n', 'devices.list'), /devices.list: "c 195:0" is not a device rule/);
});

t.test('/proc/<pid>/cgroup: v1, v2 and namespaced paths', async (t) => {
  t.same(parsePidCgroup('12:memory:/docker/x\n11:cpu,cpuacct:/docker/x\n0::/\n', 'f'), ['/docker/x', '/']);
  t.same(parsePidCgroup('0::/../../kubepods.slice/cri-containerd-x.scope\n', 'f'), ['/../../kubepods.slice/cri-containerd-x.scope']);
  t.same(parsePidCgroup('1:name=systemd:/user.slice/a:b\n', 'f'), ['/user.slice/a:b'], 'a colon in the path is kept');
  t.throws(() => parsePidCgroup('garbage\n', '/proc/1/cgroup'), /\/proc\/1\/cgroup: line 1/);
});
