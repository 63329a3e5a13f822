import t from 'tap';

/** cAdvisor's gauges named `_total`: untyped keeps their names and lints clean. Nothing else is untyped. */
const UNTYPED = [
  'container_fs_inodes_total',
  'container_network_tcp_usage_total',
  'container_network_tcp6_usage_total',
  'container_network_udp_usage_total',
  'container_network_udp6_usage_total',
];
import { CONTAINER_METRICS } from '../../src/metrics/index.js';
import { MACHINE_METRICS } from '../../src/metrics/machine.js';
import { CONTAINER_BASE_LABELS, MACHINE_BASE_LABELS } from '../../src/metrics/spec.js';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const all = [...CONTAINER_METRICS, ...MACHINE_METRICS];

t.test('names are unique and valid', async (t) => {
  const names = all.map((s) => s.name);
  t.equal(new Set(names).size, names.length, 'no duplicate family names');
  for (const name of names) t.match(name, NAME, name);
});

t.test('container families are sorted by name', async (t) => {
  const names = CONTAINER_METRICS.map((s) => s.name);
  t.same(names, [...names].sort());
  for (const name of names) t.match(name, /^container_/);
});

t.test('every spec has a help text and a known type', async (t) => {
  for (const spec of all) {
    t.ok(spec.help.trim().length > 0, `${spec.name} has help`);
    t.ok(spec.type === 'counter' || spec.type === 'gauge' || (spec.type === 'untyped' && UNTYPED.includes(spec.name)), `${spec.name} type`);
  }
});

t.test('counters end in _total, and only counters do (promtool lint; stable names under OpenMetrics)', async (t) => {
  for (const spec of all) {
    if (spec.type === 'counter') t.match(spec.name, /_total$/, spec.name);
    else if (spec.type === 'gauge') t.notMatch(spec.name, /_total$/, spec.name);
  }
  // cAdvisor's historical names keep working: container_memory_failcnt typed gauge (see memory.ts), and the gauge
  // container_fs_inodes_total typed untyped (see fs.ts): both lint clean with promtool.
  t.equal(CONTAINER_METRICS.find((s) => s.name === 'container_fs_inodes_total')?.type, 'untyped');
  t.equal(CONTAINER_METRICS.find((s) => s.name === 'container_memory_failcnt')?.type, 'gauge');
});

t.test('extra labels are valid, unique and never clash with base labels', async (t) => {
  for (const spec of CONTAINER_METRICS) {
    const names = [...CONTAINER_BASE_LABELS, ...spec.labels];
    t.equal(new Set(names).size, names.length, spec.name);
    for (const l of spec.labels) t.match(l, LABEL, `${spec.name} ${l}`);
  }
  for (const spec of MACHINE_METRICS) {
    const names = [...MACHINE_BASE_LABELS, ...spec.labels];
    t.equal(new Set(names).size, names.length, spec.name);
  }
});

t.test('the exported table is exactly the families cAdvisor users expect', async (t) => {
  t.same(
    CONTAINER_METRICS.map((s) => `${s.name} ${s.type} [${s.labels.join(',')}] ${s.kind}`),
    [
      'container_accelerator_duty_cycle gauge [make,model,acc_id] accelerator',
      'container_accelerator_memory_total_bytes gauge [make,model,acc_id] accelerator',
      'container_accelerator_memory_used_bytes gauge [make,model,acc_id] accelerator',
      'container_blkio_device_usage_total counter [device,major,minor,operation] diskIO',
      'container_cpu_cfs_burst_periods_total counter [] cpu',
      'container_cpu_cfs_burst_seconds_total counter [] cpu',
      'container_cpu_cfs_periods_total counter [] cpu',
      'container_cpu_cfs_throttled_periods_total counter [] cpu',
      'container_cpu_cfs_throttled_seconds_total counter [] cpu',
      'container_cpu_schedstat_run_periods_total counter [] sched',
      'container_cpu_schedstat_run_seconds_total counter [] sched',
      'container_cpu_schedstat_runqueue_seconds_total counter [] sched',
      'container_cpu_system_seconds_total counter [] cpu',
      'container_cpu_usage_seconds_total counter [cpu] cpu',
      'container_cpu_user_seconds_total counter [] cpu',
      'container_file_descriptors gauge [] process',
      'container_fs_inodes_free gauge [device] disk',
      'container_fs_inodes_total untyped [device] disk',
      'container_fs_io_cost_indebt_seconds_total counter [device] diskIO',
      'container_fs_io_cost_indelay_seconds_total counter [device] diskIO',
      'container_fs_io_cost_usage_seconds_total counter [device] diskIO',
      'container_fs_io_cost_wait_seconds_total counter [device] diskIO',
      'container_fs_io_current gauge [device] diskIO',
      'container_fs_io_time_seconds_total counter [device] diskIO',
      'container_fs_io_time_weighted_seconds_total counter [device] diskIO',
      'container_fs_limit_bytes gauge [device] disk',
      'container_fs_read_seconds_total counter [device] diskIO',
      'container_fs_reads_bytes_total counter [device] diskIO',
      'container_fs_reads_merged_total counter [device] diskIO',
      'container_fs_reads_total counter [device] diskIO',
      'container_fs_sector_reads_total counter [device] diskIO',
      'container_fs_sector_writes_total counter [device] diskIO',
      'container_fs_usage_bytes gauge [device] disk',
      'container_fs_write_seconds_total counter [device] diskIO',
      'container_fs_writes_bytes_total counter [device] diskIO',
      'container_fs_writes_merged_total counter [device] diskIO',
      'container_fs_writes_total counter [device] diskIO',
      'container_hugetlb_failcnt gauge [pagesize] hugetlb',
      'container_hugetlb_max_usage_bytes gauge [pagesize] hugetlb',
      'container_hugetlb_usage_bytes gauge [pagesize] hugetlb',
      'container_last_seen gauge [] always',
      'container_memory_cache gauge [] memory',
      'container_memory_events_high_total counter [] memory',
      'container_memory_events_max_total counter [] memory',
      'container_memory_failcnt gauge [] memory',
      'container_memory_failures_total counter [failure_type,scope] memory',
      'container_memory_kernel_usage gauge [] memory',
      'container_memory_mapped_file gauge [] memory',
      'container_memory_max_usage_bytes gauge [] memory',
      'container_memory_migrate gauge [] cpuset',
      'container_memory_numa_pages gauge [type,scope,node] memory_numa',
      'container_memory_rss gauge [] memory',
      'container_memory_swap gauge [] memory',
      'container_memory_total_active_file_bytes gauge [] memory',
      'container_memory_total_inactive_file_bytes gauge [] memory',
      'container_memory_usage_bytes gauge [] memory',
      'container_memory_working_set_bytes gauge [] memory',
      'container_network_receive_bytes_total counter [interface] network',
      'container_network_receive_errors_total counter [interface] network',
      'container_network_receive_packets_dropped_total counter [interface] network',
      'container_network_receive_packets_total counter [interface] network',
      'container_network_tcp6_usage_total untyped [tcp_state] tcp',
      'container_network_tcp_usage_total untyped [tcp_state] tcp',
      'container_network_transmit_bytes_total counter [interface] network',
      'container_network_transmit_errors_total counter [interface] network',
      'container_network_transmit_packets_dropped_total counter [interface] network',
      'container_network_transmit_packets_total counter [interface] network',
      'container_network_udp6_usage_total untyped [udp_state] udp',
      'container_network_udp_usage_total untyped [udp_state] udp',
      'container_oom_events_total counter [] oom_event',
      'container_pressure_cpu_stalled_seconds_total counter [] pressure',
      'container_pressure_cpu_waiting_seconds_total counter [] pressure',
      'container_pressure_io_stalled_seconds_total counter [] pressure',
      'container_pressure_io_waiting_seconds_total counter [] pressure',
      'container_pressure_memory_stalled_seconds_total counter [] pressure',
      'container_pressure_memory_waiting_seconds_total counter [] pressure',
      'container_processes gauge [] process',
      'container_sockets gauge [] process',
      'container_spec_cpu_period gauge [] always',
      'container_spec_cpu_quota gauge [] always',
      'container_spec_cpu_shares gauge [] always',
      'container_spec_memory_limit_bytes gauge [] always',
      'container_spec_memory_reservation_limit_bytes gauge [] always',
      'container_spec_memory_swap_limit_bytes gauge [] always',
      'container_start_time_seconds gauge [] always',
      'container_threads gauge [] process',
      'container_threads_max gauge [] process',
      'container_ulimits_soft gauge [ulimit] process',
    ],
  );
});
