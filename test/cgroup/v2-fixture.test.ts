import fs from 'node:fs';
import t from 'tap';
import { cgroupDirs, cgroupExists, listCgroups, procsFile } from '../../src/cgroup/discover.js';
import { readCgroupStats } from '../../src/cgroup/read.js';
import { weightToShares } from '../../src/cgroup/v2.js';
import { fixtureHost, fixtureLayout, recordingContext } from './fixtures/context.js';

// test/fixtures/hosts/v2-systemd: a pure cgroup2 kubelet node with the systemd cgroup driver and containerd
// (see test/fixtures/hosts/README.md). Every expected value below is read off the fixture files by hand.

const ROOTFS = fixtureHost('v2-systemd');
const CG = `${ROOTFS}/sys/fs/cgroup`;

const K = '/kubepods.slice';
const BURSTABLE = `${K}/kubepods-burstable.slice`;
const BURSTABLE_POD = `${BURSTABLE}/kubepods-burstable-pod8b6e3e5c_1f0a_4c57_9a1e_2d4f6b7c8d90.slice`;
const BURSTABLE_APP = `${BURSTABLE_POD}/cri-containerd-3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4.scope`;
const BURSTABLE_PAUSE = `${BURSTABLE_POD}/cri-containerd-be3ea3108af459f5e4bf81fb3a6928eaa31727350cb0abc69fa3d05cd9f9f4cf.scope`;
const BESTEFFORT = `${K}/kubepods-besteffort.slice`;
const BESTEFFORT_POD = `${BESTEFFORT}/kubepods-besteffort-podc41d7a02_95b3_4e8f_a6d1_07e2b9f3c5a8.slice`;
const BESTEFFORT_APP = `${BESTEFFORT_POD}/cri-containerd-860967675df26aa773b5eefd85bc3bb40a7ef0e4409700e5da779ccd5d76caa3.scope`;
const BESTEFFORT_PAUSE = `${BESTEFFORT_POD}/cri-containerd-f8501fe47d7cbc7ac7ca5a28b21a5c07882f0b83feda315fc556381c235ed34e.scope`;
const GUARANTEED_POD = `${K}/kubepods-pod5f0c9e41_2a7b_4d36_8e15_b9a4c7d2e603.slice`;
const GUARANTEED_PAUSE = `${GUARANTEED_POD}/cri-containerd-78016d88b00d2e8a8421c63f8336f0d779ce81a1eaab9242cdcabbe3cb35a35a.scope`;
const GUARANTEED_APP = `${GUARANTEED_POD}/cri-containerd-82d09898ea003cbf23a5fd036c36c9d616ac203ed0ca1504788be5ab14e37e3a.scope`;

const KUBEPODS_TREE = [
  K,
  BESTEFFORT,
  BESTEFFORT_POD,
  BESTEFFORT_APP,
  BESTEFFORT_PAUSE,
  BURSTABLE,
  BURSTABLE_POD,
  BURSTABLE_APP,
  BURSTABLE_PAUSE,
  GUARANTEED_POD,
  GUARANTEED_PAUSE,
  GUARANTEED_APP,
];

t.test('detectLayout on the fixture mountinfo', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.equal(layout.mode, 'v2');
  t.equal(layout.v2, CG);
  t.equal(layout.v1.size, 0);
});

t.test('listCgroups: everything, sorted, root first', async (t) => {
  t.strictSame(listCgroups(fixtureLayout(ROOTFS), []), [
    '/',
    '/init.scope',
    ...KUBEPODS_TREE,
    '/system.slice',
    '/system.slice/containerd.service',
    '/system.slice/kubelet.service',
    '/user.slice',
  ]);
});

t.test('listCgroups with an allowlist', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.strictSame(listCgroups(layout, ['/kubepods.slice']), ['/', ...KUBEPODS_TREE]);
  t.strictSame(listCgroups(layout, ['/system.slice/kubelet']), ['/', '/system.slice/kubelet.service'], 'string prefix, not path prefix');
  t.strictSame(
    listCgroups(layout, [`${BURSTABLE}/`, '/init.scope']),
    ['/', '/init.scope', BURSTABLE_POD, BURSTABLE_APP, BURSTABLE_PAUSE],
    'a trailing slash leaves the slice itself out; several prefixes union',
  );
  t.strictSame(listCgroups(layout, ['/nothing-here']), ['/'], 'root is always reported');

  const walked = t.capture(fs, 'readdirSync', fs.readdirSync);
  listCgroups(layout, ['/kubepods.slice/kubepods-pod']);
  const dirs = walked().map((call) => String(call.args[0]).slice(CG.length) || '/');
  t.strictSame(
    dirs.sort(),
    ['/', K, GUARANTEED_POD, GUARANTEED_APP, GUARANTEED_PAUSE].sort(),
    'subtrees that cannot match are not read (system.slice, the QoS slices)',
  );
});

t.test('cgroupDirs, cgroupExists, procsFile', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.strictSame(cgroupDirs(layout, BURSTABLE_APP), [`${CG}${BURSTABLE_APP}`]);
  t.strictSame(cgroupDirs(layout, '/'), [CG]);
  t.ok(cgroupExists(layout, BURSTABLE_APP));
  t.ok(cgroupExists(layout, '/'));
  t.notOk(cgroupExists(layout, `${BURSTABLE_POD}/cri-containerd-gone.scope`));
  t.notOk(cgroupExists(layout, `${BURSTABLE_APP}/cgroup.procs`), 'a file is not a cgroup');
  t.equal(procsFile(layout, BURSTABLE_APP), `${CG}${BURSTABLE_APP}/cgroup.procs`);
  t.equal(fs.readFileSync(procsFile(layout, BURSTABLE_APP) ?? '', 'utf8'), '24517\n24603\n');
  t.equal(procsFile(layout, '/system.slice/gone.service'), undefined);
});

t.test("weightToShares is cAdvisor's conversion", async (t) => {
  t.equal(weightToShares(1), 2, 'BestEffort and pause');
  t.equal(weightToShares(10), 237, 'kubelet weight for 250m');
  t.equal(weightToShares(20), 500, 'kubelet weight for 500m');
  t.equal(weightToShares(39), 998, 'kubelet weight for 1 CPU');
  t.equal(weightToShares(100), 2597, 'systemd default weight');
  t.equal(weightToShares(10000), 262144);
});

t.test("readCgroupStats: root cgroup (usage anon + file as the kubelet's, swap from /proc/meminfo, OOM kills from /proc/vmstat, no spec)", async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  t.strictSame(readCgroupStats({ ...ctx, readVmstat: () => fs.readFileSync(`${ROOTFS}/proc/vmstat`, 'utf8') }, '/'), {
    cpu: { usageSeconds: 2176.539871, userSeconds: 1470.012983, systemSeconds: 706.526888 },
    memory: {
      usageBytes: 1298866176 + 2875555840,
      workingSetBytes: 1298866176 + 2875555840 - 1813327872,
      rssBytes: 1298866176,
      cacheBytes: 2875555840,
      mappedFileBytes: 512372736,
      swapBytes: (2097148 - 2064380) * 1024,
      activeFileBytes: 1062227968,
      inactiveFileBytes: 1813327872,
      kernelUsageBytes: 395950608,
      pgfault: { container: 186203518, hierarchy: 186203518 },
      pgmajfault: { container: 12867, hierarchy: 12867 },
    },
    blkio: [{ major: 252, minor: 0, bytes: { Read: 1945362432, Write: 7263277056 } }],
    io: { serviced: [{ major: 252, minor: 0, values: { Read: 41932, Write: 331504 } }] },
    oomKills: 3,
    spec: {},
    pressure: {
      cpu: { someSeconds: 91.835127, fullSeconds: 0 },
      memory: { someSeconds: 0.284136, fullSeconds: 0.262391 },
      io: { someSeconds: 43.619875, fullSeconds: 38.112044 },
    },
  });
  t.strictSame(errors, []);
});

t.test('readCgroupStats: burstable container, every file read once', async (t) => {
  const { ctx, errors, reads } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  t.strictSame(readCgroupStats({ ...ctx, hugepageSizes: ['2MB', '1GB'] }, BURSTABLE_APP), {
    cpu: {
      usageSeconds: 48.213377,
      userSeconds: 36.052914,
      systemSeconds: 12.160463,
      periods: 0,
      throttledPeriods: 0,
      throttledSeconds: 0,
      burstPeriods: 0,
      burstSeconds: 0,
    },
    memory: {
      usageBytes: 47022080,
      maxUsageBytes: 62693376,
      workingSetBytes: 47022080 - 8732672,
      rssBytes: 31588352,
      cacheBytes: 12288000,
      mappedFileBytes: 7479296,
      swapBytes: 0,
      activeFileBytes: 3555328,
      inactiveFileBytes: 8732672,
      kernelUsageBytes: 3142048,
      eventsHigh: 0,
      eventsMax: 27,
      pgfault: { container: 1210215, hierarchy: 1210215 },
      pgmajfault: { container: 210, hierarchy: 210 },
    },
    blkio: [{ major: 252, minor: 0, bytes: { Read: 12324864, Write: 4096 } }],
    io: {
      serviced: [{ major: 252, minor: 0, values: { Read: 402, Write: 1 } }],
      costUsage: [{ major: 252, minor: 0, values: { Count: 0.184522 } }],
      costWait: [{ major: 252, minor: 0, values: { Count: 0.009217 } }],
      costIndebt: [{ major: 252, minor: 0, values: { Count: 0 } }],
      costIndelay: [{ major: 252, minor: 0, values: { Count: 0.00125 } }],
    },
    oomKills: 2,
    pids: { current: 14, max: 0 },
    spec: {
      cpuPeriod: 100000,
      cpuQuota: 100000,
      cpuShares: 237,
      memoryLimitBytes: 268435456,
      memoryReservationBytes: 0,
      memorySwapLimitBytes: 0,
    },
    pressure: {
      cpu: { someSeconds: 1.374291, fullSeconds: 1.21256 },
      memory: { someSeconds: 0, fullSeconds: 0 },
      io: { someSeconds: 0.19311, fullSeconds: 0.180442 },
    },
    hugetlb: [
      { pagesize: '2MB', usageBytes: 4194304, failcnt: 3 },
      { pagesize: '1GB', usageBytes: 0, failcnt: 0 },
    ],
    numa: { container: { file: { '0': 3000 }, anon: { '0': 7712 }, unevictable: { '0': 0 } } },
  });
  t.strictSame(errors, []);
  t.strictSame(
    [...reads.values()].filter((n) => n !== 1),
    [],
    'no file read twice',
  );
  t.notOk(
    [...reads.keys()].some((f) => f.endsWith('meminfo')),
    'meminfo is for the root only',
  );
});

t.test('readCgroupStats: guaranteed container with a CPU limit and throttling', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const stats = readCgroupStats(ctx, GUARANTEED_APP);
  t.strictSame(stats.cpu, {
    usageSeconds: 278.070182,
    userSeconds: 181.995004,
    systemSeconds: 96.075178,
    periods: 120553,
    throttledPeriods: 1873,
    throttledSeconds: 91.35231,
    burstPeriods: 0,
    burstSeconds: 0,
  });
  t.strictSame(stats.spec, {
    cpuPeriod: 100000,
    cpuQuota: 50000,
    cpuShares: 500,
    memoryLimitBytes: 268435456,
    memoryReservationBytes: 67108864,
    memorySwapLimitBytes: 0,
  });
  t.equal(stats.memory?.usageBytes, 154591232);
  t.equal(stats.memory?.workingSetBytes, 154591232 - 8388608);
  t.strictSame(stats.pids, { current: 29, max: 0 });
  t.strictSame(readCgroupStats(ctx, GUARANTEED_POD).pids, { current: 30, max: 4096 }, 'pod-level pids limit');
  t.equal(readCgroupStats(ctx, BURSTABLE_POD).oomKills, 2, "v2 memory.events is hierarchical: the pod counts its container's kills");
  t.strictSame(errors, []);
});

t.test('readCgroupStats: besteffort pause (unlimited everything, no I/O)', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const stats = readCgroupStats(ctx, BESTEFFORT_PAUSE);
  t.strictSame(
    stats.spec,
    {
      cpuPeriod: 100000,
      cpuShares: 2,
      memoryLimitBytes: 0,
      memoryReservationBytes: 0,
      memorySwapLimitBytes: 0,
    },
    'cpu.max "max 100000" has no quota; memory.max "max" is 0',
  );
  t.notOk('cpuQuota' in stats.spec);
  t.strictSame(stats.blkio, [], 'an empty io.stat is no device, not an absent file');
  t.strictSame(stats.pressure?.cpu, { someSeconds: 0, fullSeconds: 0 });
  t.equal(stats.memory?.workingSetBytes, 360448, 'inactive_file 0');
  t.strictSame(errors, []);
});

t.test('readCgroupStats: systemd services', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const containerd = readCgroupStats(ctx, '/system.slice/containerd.service');
  t.strictSame(containerd.pids, { current: 131, max: 19035 });
  t.strictSame(containerd.spec, {
    cpuPeriod: 100000,
    cpuShares: 2597,
    memoryLimitBytes: 0,
    memoryReservationBytes: 0,
    memorySwapLimitBytes: 0,
  });
  t.strictSame(containerd.blkio, [{ major: 252, minor: 0, bytes: { Read: 887099392, Write: 3102076928 } }]);
  t.equal(readCgroupStats(ctx, '/system.slice/kubelet.service').cpu?.usageSeconds, 341.98812);
  t.strictSame(errors, []);
});

t.test('readCgroupStats: a vanished cgroup gives no stats and no error', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const gone = `${BURSTABLE_POD}/cri-containerd-0000000000000000000000000000000000000000000000000000000000000000.scope`;
  t.notOk(cgroupExists(ctx.layout, gone));
  t.strictSame(readCgroupStats(ctx, gone), { spec: {} });
  t.strictSame(errors, []);
});
