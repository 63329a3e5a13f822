import t from 'tap';
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
    t.ok(spec.type === 'counter' || spec.type === 'gauge' || (spec.type === 'untyped' && spec.name === 'container_fs_inodes_total'), `${spec.name} type`);
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
    CONTAINER_METRICS.map((s) => `${s.name} ${s.type} [${s.labels.join(',')}]`),
    [
      'container_blkio_device_usage_total counter [device,major,minor,operation]',
      'container_cpu_cfs_periods_total counter []',
      'container_cpu_cfs_throttled_periods_total counter []',
      'container_cpu_cfs_throttled_seconds_total counter []',
      'container_cpu_system_seconds_total counter []',
      'container_cpu_usage_seconds_total counter [cpu]',
      'container_cpu_user_seconds_total counter []',
      'container_file_descriptors gauge []',
      'container_fs_inodes_free gauge [device]',
      'container_fs_inodes_total untyped [device]',
      'container_fs_limit_bytes gauge [device]',
      'container_fs_reads_bytes_total counter [device]',
      'container_fs_usage_bytes gauge [device]',
      'container_fs_writes_bytes_total counter [device]',
      'container_last_seen gauge []',
      'container_memory_cache gauge []',
      'container_memory_failcnt gauge []',
      'container_memory_failures_total counter [failure_type,scope]',
      'container_memory_mapped_file gauge []',
      'container_memory_max_usage_bytes gauge []',
      'container_memory_rss gauge []',
      'container_memory_swap gauge []',
      'container_memory_total_active_file_bytes gauge []',
      'container_memory_total_inactive_file_bytes gauge []',
      'container_memory_usage_bytes gauge []',
      'container_memory_working_set_bytes gauge []',
      'container_network_receive_bytes_total counter [interface]',
      'container_network_receive_errors_total counter [interface]',
      'container_network_receive_packets_dropped_total counter [interface]',
      'container_network_receive_packets_total counter [interface]',
      'container_network_transmit_bytes_total counter [interface]',
      'container_network_transmit_errors_total counter [interface]',
      'container_network_transmit_packets_dropped_total counter [interface]',
      'container_network_transmit_packets_total counter [interface]',
      'container_pressure_cpu_stalled_seconds_total counter []',
      'container_pressure_cpu_waiting_seconds_total counter []',
      'container_pressure_io_stalled_seconds_total counter []',
      'container_pressure_io_waiting_seconds_total counter []',
      'container_pressure_memory_stalled_seconds_total counter []',
      'container_pressure_memory_waiting_seconds_total counter []',
      'container_processes gauge []',
      'container_sockets gauge []',
      'container_spec_cpu_period gauge []',
      'container_spec_cpu_quota gauge []',
      'container_spec_cpu_shares gauge []',
      'container_spec_memory_limit_bytes gauge []',
      'container_spec_memory_reservation_limit_bytes gauge []',
      'container_spec_memory_swap_limit_bytes gauge []',
      'container_start_time_seconds gauge []',
      'container_threads gauge []',
      'container_threads_max gauge []',
    ],
  );
});
