/**
 * cAdvisor's metric kinds (`--enable_metrics` / `--disable_metrics`; lib/container/factory.go), as podvisor switches
 * them. A kind that is off costs nothing: its files are not read and its families are not rendered.
 */

/** The kinds podvisor exports, in cAdvisor's spelling. */
export const METRIC_KINDS = [
  'accelerator',
  'cpu',
  'percpu',
  'memory',
  'memory_numa',
  'cpuset',
  'hugetlb',
  'diskIO',
  'disk',
  'network',
  'tcp',
  'udp',
  'process',
  'sched',
  'oom_event',
  'pressure',
] as const;
export type MetricKind = (typeof METRIC_KINDS)[number];

/**
 * cAdvisor's other kinds. `--disable-metrics` accepts them (they are off in podvisor anyway), so cAdvisor's own
 * ignore list can be passed unchanged; `--enable-metrics` refuses them by name.
 */
export const CADVISOR_ONLY_KINDS = ['advtcp', 'app', 'cpuLoad', 'cpu_topology', 'perf_event', 'referenced_memory', 'resctrl'] as const;

/**
 * podvisor's default set: the kinds the kubelet's /metrics/cadvisor serves, and `accelerator` (the kubelet dropped it in
 * 1.28; podvisor exports it when NVML is found, and it costs nothing on a node without one).
 */
export const DEFAULT_KINDS: readonly MetricKind[] = ['accelerator', 'cpu', 'memory', 'diskIO', 'disk', 'network', 'process', 'oom_event', 'pressure'];

/** What a family needs to be rendered: a kind, or nothing (`always`: spec, lifecycle, machine, podvisor's own). */
export type FamilyKind = MetricKind | 'always';
