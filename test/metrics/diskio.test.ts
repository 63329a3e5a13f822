import t from 'tap';
import { DISKIO_METRICS } from '../../src/metrics/container/diskio.js';
import { HUGETLB_METRICS } from '../../src/metrics/container/hugetlb.js';
import { NUMA_METRICS } from '../../src/metrics/container/numa.js';
import { OOM_METRICS } from '../../src/metrics/container/oom.js';
import { PROCESS_METRICS } from '../../src/metrics/container/processes.js';
import { SCHED_METRICS } from '../../src/metrics/container/sched.js';
import { TCP_METRICS, UDP_METRICS } from '../../src/metrics/container/sockets.js';
import { CONTAINER_METRICS, specsFor } from '../../src/metrics/index.js';
import type { DiskIoCounters } from '../../src/model/disk.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const VDA: DiskIoCounters = {
  readsCompleted: 578811,
  readsMerged: 172518,
  sectorsRead: 23663354,
  readSeconds: 336.424,
  writesCompleted: 1156414,
  writesMerged: 2763262,
  sectorsWritten: 56751832,
  writeSeconds: 1050.504,
  ioInProgress: 0,
  ioSeconds: 411.672,
  weightedIoSeconds: 1763.392,
};
const pick = (lines: string[], name: string): string[] => lines.filter((l) => l.startsWith(`${name}{`));

t.test("cgroup rows, then for / the filesystems' /proc/diskstats rows, as cAdvisor's ioValues", async (t) => {
  const root = container('/', { spec: {}, io: { serviced: [{ major: 8, minor: 0, values: { Read: 12, Write: 34, Total: 46 } }] } });
  const c = container(
    '/docker/abc',
    { spec: {}, io: { serviced: [{ major: 8, minor: 0, values: { Read: 2, Write: 3 } }] } },
    { fs: { device: '/dev/vda', usageBytes: 1, inodes: 1 } },
  );
  const snap = {
    ...snapshotOf([root, c], { '8:0': '/dev/sda' }),
    diskstats: new Map([['/dev/vda', VDA]]),
    filesystems: [{ device: '/dev/vda', capacityBytes: 1, freeBytes: 1, inodes: 1, inodesFree: 1 }],
  };
  const lines = runContainer(DISKIO_METRICS, root, snap);
  t.same(pick(lines, 'container_fs_reads_total'), ['container_fs_reads_total{device="/dev/sda"} 12', 'container_fs_reads_total{device="/dev/vda"} 578811']);
  t.same(pick(lines, 'container_fs_writes_total'), ['container_fs_writes_total{device="/dev/sda"} 34', 'container_fs_writes_total{device="/dev/vda"} 1156414']);
  t.same(
    pick(lines, 'container_fs_read_seconds_total'),
    ['container_fs_read_seconds_total{device="/dev/vda"} 336.424'],
    "seconds, from the kernel's milliseconds",
  );
  t.same(pick(lines, 'container_fs_io_time_weighted_seconds_total'), ['container_fs_io_time_weighted_seconds_total{device="/dev/vda"} 1763.392']);
  t.same(pick(lines, 'container_fs_io_current'), ['container_fs_io_current{device="/dev/vda"} 0']);
  t.same(pick(lines, 'container_fs_io_cost_usage_seconds_total'), [], 'no iocost rows: nothing');
  t.same(
    runContainer(DISKIO_METRICS, c, snap),
    ['container_fs_reads_total{device="/dev/sda"} 2', 'container_fs_writes_total{device="/dev/sda"} 3'],
    "a container's own rows only: the disk's counters are not the container's (cAdvisor's row there is a fake 0)",
  );
});

t.test('a filesystem on a device that has a cgroup row too: the cgroup row only', async (t) => {
  const c = container('/', { spec: {}, io: { serviced: [{ major: 254, minor: 0, values: { Read: 5, Write: 6 } }] } });
  const snap = {
    ...snapshotOf([c], { '254:0': '/dev/vda' }),
    diskstats: new Map([['/dev/vda', VDA]]),
    filesystems: [
      { device: '/dev/vda', capacityBytes: 1, freeBytes: 1, inodes: 1, inodesFree: 1 },
      { device: '/dev/mapper/x', capacityBytes: 1, freeBytes: 1, inodes: 1, inodesFree: 1 },
    ],
  };
  t.same(
    pick(runContainer(DISKIO_METRICS, c, snap), 'container_fs_reads_total'),
    ['container_fs_reads_total{device="/dev/vda"} 5'],
    'one series per label set; no diskstats for the mapper name: no row',
  );
});

t.test('absent is not zero: no io data and no filesystem, nothing; no diskstats, cgroup rows only', async (t) => {
  t.same(runContainer(DISKIO_METRICS, container('/a', { spec: {} }), snapshotOf([])), []);
  const c = container(
    '/a',
    { spec: {}, io: { serviced: [{ major: 8, minor: 0, values: { Read: 1 } }] } },
    { fs: { device: '/dev/vda', usageBytes: 1, inodes: 1 } },
  );
  t.same(
    runContainer(DISKIO_METRICS, c, snapshotOf([c], { '8:0': '/dev/sda' })),
    ['container_fs_reads_total{device="/dev/sda"} 1'],
    'no Write value: no writes row',
  );
});

t.test('iocost rows (v2 io.stat cost.*), in seconds', async (t) => {
  const c = container('/a', {
    spec: {},
    io: { costUsage: [{ major: 8, minor: 0, values: { Count: 0.25 } }], costIndelay: [{ major: 8, minor: 0, values: { Count: 0 } }] },
  });
  t.same(runContainer(DISKIO_METRICS, c, snapshotOf([c], { '8:0': '/dev/sda' })), [
    'container_fs_io_cost_indelay_seconds_total{device="/dev/sda"} 0',
    'container_fs_io_cost_usage_seconds_total{device="/dev/sda"} 0.25',
  ]);
});

t.test('oom, hugetlb, numa, sockets, sched, ulimits', async (t) => {
  const c = container(
    '/a',
    {
      spec: {},
      oomKills: 0,
      hugetlb: [{ pagesize: '2MB', usageBytes: 4096, failcnt: 1 }],
      numa: { container: { anon: { '0': 7, '1': 3 } } },
    },
    {
      sockets: { tcp: { established: 2, listen: 1 }, udp6: { listen: 1, dropped: 0, rxqueued: 5, txqueued: 6 } },
      sched: { runSeconds: 1.5, runqueueSeconds: 0.25, runPeriods: 9 },
      processes: { processes: 1, ulimitsSoft: { max_open_files: -1 } },
    },
  );
  const snap = snapshotOf([c]);
  t.same(runContainer(OOM_METRICS, c, snap), ['container_oom_events_total 0'], 'a kernel count of 0 is a sample');
  t.same(runContainer(OOM_METRICS, container('/b', { spec: {} }), snap), [], 'no counter: no sample');
  t.same(
    runContainer(HUGETLB_METRICS, c, snap),
    ['container_hugetlb_failcnt{pagesize="2MB"} 1', 'container_hugetlb_usage_bytes{pagesize="2MB"} 4096'],
    'no max usage (v2): no row',
  );
  t.same(runContainer(NUMA_METRICS, c, snap), [
    'container_memory_numa_pages{type="anon",scope="container",node="0"} 7',
    'container_memory_numa_pages{type="anon",scope="container",node="1"} 3',
  ]);
  t.same(runContainer(TCP_METRICS, c, snap), [
    'container_network_tcp_usage_total{tcp_state="established"} 2',
    'container_network_tcp_usage_total{tcp_state="listen"} 1',
  ]);
  t.same(runContainer(UDP_METRICS, c, snap), [
    'container_network_udp6_usage_total{udp_state="dropped"} 0',
    'container_network_udp6_usage_total{udp_state="listen"} 1',
    'container_network_udp6_usage_total{udp_state="rxqueued"} 5',
    'container_network_udp6_usage_total{udp_state="txqueued"} 6',
  ]);
  t.same(runContainer(SCHED_METRICS, c, snap), [
    'container_cpu_schedstat_run_periods_total 9',
    'container_cpu_schedstat_run_seconds_total 1.5',
    'container_cpu_schedstat_runqueue_seconds_total 0.25',
  ]);
  t.same(
    pick(runContainer(PROCESS_METRICS, c, snap), 'container_ulimits_soft'),
    ['container_ulimits_soft{ulimit="max_open_files"} -1'],
    'unlimited is -1, as cAdvisor',
  );
});

t.test('specsFor: the families of the kinds on, and the always-on ones', async (t) => {
  t.equal(specsFor(undefined), CONTAINER_METRICS, 'no kinds given: everything');
  const cpu = specsFor(['cpu']).map((s) => s.name);
  t.ok(cpu.includes('container_cpu_usage_seconds_total') && cpu.includes('container_spec_memory_limit_bytes') && cpu.includes('container_last_seen'));
  t.notOk(cpu.some((n) => n.startsWith('container_memory_') || n.startsWith('container_fs_') || n.startsWith('container_network_')));
  const kinds = new Set(CONTAINER_METRICS.map((s) => s.kind));
  t.strictSame(
    [...kinds].sort(),
    [
      'accelerator',
      'always',
      'cpu',
      'cpuset',
      'disk',
      'diskIO',
      'hugetlb',
      'memory',
      'memory_numa',
      'network',
      'oom_event',
      'pressure',
      'process',
      'sched',
      'tcp',
      'udp',
    ],
    'every kind switches at least one family (percpu switches rows, not families)',
  );
});
