/** All container specs over whole containers: exactly which samples a v1, a v2 and a sparse container yield. */
import t from 'tap';
import { CONTAINER_METRICS } from '../../src/metrics/index.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const v1 = container(
  '/kubepods/burstable/pod1/abc',
  {
    cpu: {
      usageSeconds: 3.5,
      perCpuSeconds: [1.5, 0, 2],
      userSeconds: 2,
      systemSeconds: 1,
      periods: 100,
      throttledPeriods: 7,
      throttledSeconds: 0.25,
    },
    memory: {
      usageBytes: 1000,
      maxUsageBytes: 2000,
      workingSetBytes: 800,
      rssBytes: 500,
      cacheBytes: 300,
      mappedFileBytes: 50,
      swapBytes: 0,
      activeFileBytes: 100,
      inactiveFileBytes: 200,
      failcnt: 3,
      pgfault: { container: 10, hierarchy: 10 },
      pgmajfault: { container: 1, hierarchy: 1 },
    },
    blkio: [{ major: 8, minor: 0, bytes: { Read: 4096, Write: 8192, Total: 12288 } }],
    pids: { current: 12, max: 0 },
    spec: { cpuPeriod: 100_000, cpuQuota: 50_000, cpuShares: 512, memoryLimitBytes: 1_073_741_824, memoryReservationBytes: 0, memorySwapLimitBytes: 0 },
  },
  {
    processes: { processes: 2, fileDescriptors: 9, sockets: 1 },
    network: [{ name: 'eth0', rxBytes: 1, rxPackets: 2, rxErrors: 3, rxDropped: 4, txBytes: 5, txPackets: 6, txErrors: 7, txDropped: 8 }],
    startTimeSeconds: 1_700_000_000,
  },
);

const v2 = container(
  '/kubepods.slice/pod2.slice/cri-containerd-def.scope',
  {
    cpu: { usageSeconds: 4.25, userSeconds: 3, systemSeconds: 1.25, periods: 0, throttledPeriods: 0, throttledSeconds: 0 },
    memory: {
      usageBytes: 4096,
      maxUsageBytes: 8192,
      workingSetBytes: 2048,
      rssBytes: 1024,
      cacheBytes: 2048,
      mappedFileBytes: 0,
      swapBytes: 0,
      activeFileBytes: 1024,
      inactiveFileBytes: 2048,
      pgfault: { container: 20, hierarchy: 20 },
      pgmajfault: { container: 0, hierarchy: 0 },
    },
    blkio: [{ major: 259, minor: 0, bytes: { Read: 10, Write: 20 } }],
    pids: { current: 4, max: 1024 },
    spec: { cpuPeriod: 100_000, cpuShares: 2, memoryLimitBytes: 0, memoryReservationBytes: 0, memorySwapLimitBytes: 0 },
    pressure: {
      cpu: { someSeconds: 0.75, fullSeconds: 0.5 },
      memory: { someSeconds: 0, fullSeconds: 0 },
      io: { someSeconds: 1.25, fullSeconds: 1 },
    },
  },
  { processes: { processes: 1, fileDescriptors: 4, sockets: 0 } },
);

const sparse = container('/system.slice/odd.service', { memory: { usageBytes: 42 }, spec: {} });

const snap = snapshotOf([v1, v2, sparse], { '8:0': '/dev/sda' });

t.test('v1-shaped container (per-cpu, quota, failcnt, no PSI)', async (t) => {
  t.same(runContainer(CONTAINER_METRICS, v1, snap), [
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Read"} 4096',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Total"} 12288',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Write"} 8192',
    'container_cpu_cfs_periods_total 100',
    'container_cpu_cfs_throttled_periods_total 7',
    'container_cpu_cfs_throttled_seconds_total 0.25',
    'container_cpu_system_seconds_total 1',
    'container_cpu_usage_seconds_total{cpu="cpu00"} 1.5',
    'container_cpu_usage_seconds_total{cpu="cpu02"} 2',
    'container_cpu_user_seconds_total 2',
    'container_file_descriptors 9',
    'container_fs_reads_bytes_total{device="/dev/sda"} 4096',
    'container_fs_writes_bytes_total{device="/dev/sda"} 8192',
    'container_last_seen 1700000123.456',
    'container_memory_cache 300',
    'container_memory_failcnt 3',
    'container_memory_failures_total{failure_type="pgfault",scope="container"} 10',
    'container_memory_failures_total{failure_type="pgfault",scope="hierarchy"} 10',
    'container_memory_failures_total{failure_type="pgmajfault",scope="container"} 1',
    'container_memory_failures_total{failure_type="pgmajfault",scope="hierarchy"} 1',
    'container_memory_mapped_file 50',
    'container_memory_max_usage_bytes 2000',
    'container_memory_rss 500',
    'container_memory_swap 0',
    'container_memory_total_active_file_bytes 100',
    'container_memory_total_inactive_file_bytes 200',
    'container_memory_usage_bytes 1000',
    'container_memory_working_set_bytes 800',
    'container_network_receive_bytes_total{interface="eth0"} 1',
    'container_network_receive_errors_total{interface="eth0"} 3',
    'container_network_receive_packets_dropped_total{interface="eth0"} 4',
    'container_network_receive_packets_total{interface="eth0"} 2',
    'container_network_transmit_bytes_total{interface="eth0"} 5',
    'container_network_transmit_errors_total{interface="eth0"} 7',
    'container_network_transmit_packets_dropped_total{interface="eth0"} 8',
    'container_network_transmit_packets_total{interface="eth0"} 6',
    'container_processes 2',
    'container_sockets 1',
    'container_spec_cpu_period 100000',
    'container_spec_cpu_quota 50000',
    'container_spec_cpu_shares 512',
    'container_spec_memory_limit_bytes 1073741824',
    'container_spec_memory_reservation_limit_bytes 0',
    'container_spec_memory_swap_limit_bytes 0',
    'container_start_time_seconds 1700000000',
    'container_threads 12',
    'container_threads_max 0',
  ]);
});

t.test('v2-shaped container (cpu total, no quota, no failcnt, PSI, unknown device)', async (t) => {
  t.same(runContainer(CONTAINER_METRICS, v2, snap), [
    'container_blkio_device_usage_total{device="",major="259",minor="0",operation="Read"} 10',
    'container_blkio_device_usage_total{device="",major="259",minor="0",operation="Write"} 20',
    'container_cpu_system_seconds_total 1.25',
    'container_cpu_usage_seconds_total{cpu="total"} 4.25',
    'container_cpu_user_seconds_total 3',
    'container_file_descriptors 4',
    'container_fs_reads_bytes_total{device=""} 10',
    'container_fs_writes_bytes_total{device=""} 20',
    'container_last_seen 1700000123.456',
    'container_memory_cache 2048',
    'container_memory_failures_total{failure_type="pgfault",scope="container"} 20',
    'container_memory_failures_total{failure_type="pgfault",scope="hierarchy"} 20',
    'container_memory_failures_total{failure_type="pgmajfault",scope="container"} 0',
    'container_memory_failures_total{failure_type="pgmajfault",scope="hierarchy"} 0',
    'container_memory_mapped_file 0',
    'container_memory_max_usage_bytes 8192',
    'container_memory_rss 1024',
    'container_memory_swap 0',
    'container_memory_total_active_file_bytes 1024',
    'container_memory_total_inactive_file_bytes 2048',
    'container_memory_usage_bytes 4096',
    'container_memory_working_set_bytes 2048',
    'container_pressure_cpu_stalled_seconds_total 0.5',
    'container_pressure_cpu_waiting_seconds_total 0.75',
    'container_pressure_io_stalled_seconds_total 1',
    'container_pressure_io_waiting_seconds_total 1.25',
    'container_pressure_memory_stalled_seconds_total 0',
    'container_pressure_memory_waiting_seconds_total 0',
    'container_processes 1',
    'container_sockets 0',
    'container_spec_cpu_period 100000',
    'container_spec_cpu_shares 2',
    'container_spec_memory_limit_bytes 0',
    'container_spec_memory_reservation_limit_bytes 0',
    'container_spec_memory_swap_limit_bytes 0',
    'container_threads 4',
    'container_threads_max 1024',
  ]);
});

t.test('sparse container: only what was read, plus last_seen', async (t) => {
  const samples = runContainer(CONTAINER_METRICS, sparse, snap);
  t.same(samples, ['container_last_seen 1700000123.456', 'container_memory_usage_bytes 42']);
  t.notOk(
    samples.some((s) => s.startsWith('container_cpu_')),
    'no cpu series',
  );
});

t.test('non-finite values are never emitted', async (t) => {
  const broken = container('/x', { cpu: { usageSeconds: Number.NaN, perCpuSeconds: [Number.NaN, 1] }, memory: { usageBytes: Infinity }, spec: {} });
  t.same(runContainer(CONTAINER_METRICS, broken, snap), ['container_cpu_usage_seconds_total{cpu="cpu01"} 1', 'container_last_seen 1700000123.456']);
});
