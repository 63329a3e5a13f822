import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { cgroupExists, listCgroups, procsFile } from '../../src/cgroup/discover.js';
import { readCgroupStats } from '../../src/cgroup/read.js';
import { fixtureHost, fixtureLayout, recordingContext } from './fixtures/context.js';

// test/fixtures/hosts/v1-cgroupfs: a pure cgroup v1 node, cgroupfs driver, Docker (see test/fixtures/hosts/README.md).

const ROOTFS = fixtureHost('v1-cgroupfs');
const CG = path.join(ROOTFS, 'sys/fs/cgroup');
const POD = '/kubepods/burstable/pod0d3e5b7a-9c21-4f68-b4a0-6e1f2c8d7b35';
const PAUSE = `${POD}/019f462856d77639eb5e3724f22a3e88a100644fb4e5dbc088e9b0fba5cb4757`;
const APP = `${POD}/0a1a0c2896e52b47c88b7954baf6adc5af011f1bf159c8baa6c0b57bba71568b`;
const DOCKER = '/docker/44b317d826b2d53c344ee49e3fe4686613870c72d811dfd8ec1645d4579f6a47';

t.test('detectLayout: co-mounted cpu,cpuacct, named systemd hierarchy ignored', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.equal(layout.mode, 'v1');
  t.equal(layout.v2, undefined);
  t.equal(layout.v1.get('cpu'), path.join(CG, 'cpu,cpuacct'));
  t.equal(layout.v1.get('cpuacct'), path.join(CG, 'cpu,cpuacct'));
  t.equal(layout.v1.get('net_cls'), path.join(CG, 'net_cls,net_prio'));
  t.equal(layout.v1.get('pids'), path.join(CG, 'pids'));
  t.strictSame([...layout.v1.keys()].sort(), [
    'blkio',
    'cpu',
    'cpuacct',
    'cpuset',
    'devices',
    'freezer',
    'hugetlb',
    'memory',
    'net_cls',
    'net_prio',
    'perf_event',
    'pids',
  ]);
});

t.test('listCgroups: union of the hierarchies podvisor reads stats from (not devices, not name=systemd)', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.strictSame(listCgroups(layout, []), [
    '/',
    '/docker',
    DOCKER,
    '/kubepods',
    '/kubepods/besteffort',
    '/kubepods/burstable',
    POD,
    PAUSE,
    APP,
    '/system.slice',
    '/system.slice/docker.service',
  ]);
  t.strictSame(listCgroups(layout, ['/kubepods/burstable']), ['/', '/kubepods/burstable', POD, PAUSE, APP]);
  t.strictSame(listCgroups(layout, ['/docker/']), ['/', DOCKER]);
  t.strictSame(listCgroups(layout, ['/kubepods/burstable', '/docker']), ['/', '/docker', DOCKER, '/kubepods/burstable', POD, PAUSE, APP]);
});

t.test('procsFile and cgroupExists', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  t.equal(procsFile(layout, APP), path.join(CG, 'pids', APP, 'cgroup.procs'));
  // sshd.service exists only in the devices hierarchy here, whose files podvisor does not read.
  t.equal(procsFile(layout, '/system.slice/sshd.service'), undefined);
  t.notOk(cgroupExists(layout, '/system.slice/sshd.service'));
  t.ok(cgroupExists(layout, '/system.slice/docker.service'));
  t.notOk(cgroupExists(layout, '/user.slice/user-1000.slice/session-3.scope'), 'only in name=systemd');
});

t.test('readCgroupStats: app container with a CPU limit', async (t) => {
  const { ctx, errors, reads } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  t.strictSame(readCgroupStats(ctx, APP), {
    cpu: {
      usageSeconds: 60.09267098,
      perCpuSeconds: [30.181822779, 29.910848201],
      userSeconds: 44.31,
      systemSeconds: 16.2,
      periods: 120553,
      throttledPeriods: 1873,
      throttledSeconds: 91.352310441,
    },
    memory: {
      usageBytes: 51105792,
      maxUsageBytes: 69152768,
      workingSetBytes: 51105792 - 8732672,
      rssBytes: 31588352,
      cacheBytes: 12189696,
      mappedFileBytes: 7479296,
      swapBytes: 0,
      activeFileBytes: 3457024,
      inactiveFileBytes: 8732672,
      failcnt: 3,
      pgfault: { container: 1210215, hierarchy: 1210215 },
      pgmajfault: { container: 210, hierarchy: 210 },
    },
    blkio: [
      {
        major: 259,
        minor: 0,
        bytes: { Read: 12324864, Write: 4096, Sync: 4096, Async: 12324864, Discard: 0, Total: 12328960 },
      },
    ],
    pids: { current: 14, max: 0 },
    spec: {
      cpuPeriod: 100000,
      cpuQuota: 50000,
      cpuShares: 256,
      memoryLimitBytes: 268435456,
      memoryReservationBytes: 0,
    },
  });
  t.strictSame(errors, []);
  t.strictSame(
    [...reads.values()].filter((n) => n !== 1),
    [],
    'no file read twice',
  );
  t.ok(
    reads.has(path.join(CG, 'blkio', APP, 'blkio.bfq.io_service_bytes_recursive')) &&
      reads.has(path.join(CG, 'blkio', APP, 'blkio.throttle.io_service_bytes_recursive')),
    'the BFQ file has no device row, so the throttle file is used',
  );
  t.ok(reads.has(path.join(CG, 'memory', APP, 'memory.memsw.limit_in_bytes')), 'memsw is tried');
});

t.test('readCgroupStats: root and intermediate cgroups', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const root = readCgroupStats(ctx, '/');
  t.strictSame(
    root.spec,
    { cpuPeriod: 100000, cpuShares: 1024, memoryLimitBytes: 0, memoryReservationBytes: 0 },
    'unlimited → 0, quota -1 → absent, no memsw file → absent',
  );
  t.equal(root.pids, undefined, 'the v1 root has no pids.current / pids.max');
  t.equal(root.pressure, undefined, 'no PSI on pure v1');
  t.equal(root.memory?.usageBytes, 6121984000);
  t.equal(root.memory?.workingSetBytes, 6121984000 - 2401886208);
  t.strictSame(root.memory?.pgfault, { container: 601338, hierarchy: 601338 });
  t.equal(root.cpu?.perCpuSeconds?.length, 2);

  const kubepods = readCgroupStats(ctx, '/kubepods');
  t.equal(kubepods.spec.memoryLimitBytes, 7537164288);
  t.equal(kubepods.spec.cpuShares, 2048);
  t.strictSame(kubepods.memory?.pgfault, { container: 0, hierarchy: 0 }, 'cAdvisor uses pgfault, not total_pgfault, in both scopes');
  t.equal(kubepods.memory?.rssBytes, 971546624, 'rss is total_rss (hierarchical)');
  t.strictSame(kubepods.pids, { current: 211, max: 0 });

  const besteffort = readCgroupStats(ctx, '/kubepods/besteffort');
  t.strictSame(besteffort.blkio, [], 'device-less blkio files give an empty list');

  t.strictSame(readCgroupStats(ctx, DOCKER).spec, {
    cpuPeriod: 100000,
    cpuShares: 1024,
    memoryLimitBytes: 0,
    memoryReservationBytes: 0,
  });
  t.strictSame(errors, []);
});

t.test('readCgroupStats: a cgroup present in some hierarchies only', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  t.strictSame(readCgroupStats(ctx, '/system.slice/docker.service'), {
    pids: { current: 64, max: 4915 },
    spec: {},
  });
  t.strictSame(readCgroupStats(ctx, '/system.slice/sshd.service'), { spec: {} });
  t.strictSame(errors, []);
});

t.test('readCgroupStats: a vanished cgroup gives no stats and no error', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  t.strictSame(readCgroupStats(ctx, `${POD}/${'f'.repeat(64)}`), { spec: {} });
  t.strictSame(errors, []);
});

t.test('readCgroupStats: the diskIO, oom_event, memory_numa, cpuset and hugetlb files of a Docker container (v1)', async (t) => {
  const { ctx, errors } = recordingContext(fixtureLayout(ROOTFS), ROOTFS);
  const stats = readCgroupStats({ ...ctx, hugepageSizes: ['2MB'] }, DOCKER);
  t.strictSame(stats.io, { serviced: [{ major: 259, minor: 0, values: { Read: 1280, Write: 2048, Sync: 2048, Async: 1280, Discard: 0, Total: 3328 } }] });
  t.equal(stats.oomKills, 1, 'memory.oom_control oom_kill');
  t.equal(stats.memory?.kernelUsageBytes, 5251072, 'memory.kmem.usage_in_bytes');
  t.strictSame(stats.numa, {
    container: { file: { '0': 10240 }, anon: { '0': 11264 }, unevictable: { '0': 0 } },
    hierarchy: { file: { '0': 10240 }, anon: { '0': 11264 }, unevictable: { '0': 0 } },
  });
  t.equal(stats.memoryMigrate, 0, 'cpuset.memory_migrate');
  t.equal(stats.hugetlb, undefined, 'the hugetlb hierarchy holds only its root');
  t.strictSame(readCgroupStats({ ...ctx, hugepageSizes: ['2MB'] }, '/').hugetlb, [{ pagesize: '2MB', usageBytes: 0, maxUsageBytes: 0, failcnt: 0 }]);
  t.equal(readCgroupStats(ctx, '/docker').oomKills, 0, 'v1 counts a kill in the cgroup of the killed task only');
  t.equal(readCgroupStats(ctx, '/').oomKills, undefined, "the root's count is the node's (/proc/vmstat), and this context has none");
  t.equal(
    readCgroupStats({ ...ctx, readVmstat: () => fs.readFileSync(`${ROOTFS}/proc/vmstat`, 'utf8') }, '/').oomKills,
    1,
    "the root's count is /proc/vmstat oom_kill",
  );
  t.strictSame(errors, []);
});

t.test('kinds switched off: their files are not read at all', async (t) => {
  const layout = fixtureLayout(ROOTFS);
  const everything = recordingContext(layout, ROOTFS);
  readCgroupStats({ ...everything.ctx, hugepageSizes: ['2MB'], readVmstat: () => '' }, DOCKER);
  const all = [...everything.reads.keys()].map((f) => f.slice(f.lastIndexOf('/') + 1));
  for (const f of [
    'cpuacct.usage_percpu',
    'memory.stat',
    'memory.oom_control',
    'memory.numa_stat',
    'cpuset.memory_migrate',
    'blkio.throttle.io_serviced_recursive',
  ]) {
    t.ok(all.includes(f), `with every kind on, ${f} is read`);
  }

  const cpuOnly = recordingContext(layout, ROOTFS);
  const stats = readCgroupStats({ ...cpuOnly.ctx, kinds: new Set(['cpu'] as const), hugepageSizes: ['2MB'], readVmstat: () => '' }, DOCKER);
  const read = [...cpuOnly.reads.keys()].map((f) => f.slice(f.lastIndexOf('/') + 1)).sort();
  t.strictSame(
    read,
    [
      'cpu.cfs_period_us',
      'cpu.cfs_quota_us',
      'cpu.shares',
      'cpu.stat',
      'cpuacct.stat',
      'cpuacct.usage',
      'memory.limit_in_bytes',
      'memory.memsw.limit_in_bytes',
      'memory.soft_limit_in_bytes',
    ],
    'cpu alone: the cpu files and the always-on spec files, nothing else (no percpu, memory, blkio, pids, oom, numa, cpuset)',
  );
  t.equal(stats.cpu?.perCpuSeconds, undefined, 'no per-cpu values without percpu');
  t.ok((stats.cpu?.usageSeconds ?? 0) > 0, 'the total is read');
  t.strictSame(Object.keys(stats).sort(), ['cpu', 'spec']);
});
