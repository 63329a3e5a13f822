/**
 * The kubelet's `/metrics/resource` (what metrics-server reads), from the same snapshot as /metrics.
 *
 * Families, HELP texts, types and stability levels are those of kubernetes/kubernetes
 * `pkg/kubelet/metrics/collectors/resource_metrics.go` (@019a71ab), as the kubelet's registry writes them:
 * - HELP prefixed with the stability level (`[STABLE] Cumulative cpu time …`);
 * - families sorted by name, and within a family samples sorted by their label values, label names sorted
 *   (`container`, `namespace`, `pod`): the order client_golang's Gather gives;
 * - `scrape_error` (deprecated 1.29, hidden from 1.30 on) is left out, as a current kubelet does;
 * - values in Go's shortest `%g` form (`1.675264e+07`), as expfmt writes them;
 * - CPU, memory and swap samples carry an explicit timestamp in integer Unix ms; `container_start_time_seconds` and
 *   `resource_scrape_error` carry none.
 *
 * The timestamp is the snapshot's: when the gather started. The kubelet stamps each value with the time cAdvisor's
 * housekeeping last sampled it (up to 10-15 s old); podvisor reads the cgroup files on the scrape itself, so its
 * timestamp is the read time, the same for every sample of one body.
 *
 * Whose values:
 * - the node is the root cgroup `/` (the kubelet takes it from cAdvisor's root container, the same files);
 * - containers are the cgroups the runtime labelled as a Kubernetes pod's container (`pod`, `namespace` and
 *   `container` all known), without the pod sandbox (`container="POD"` from cri-dockerd and CRI-O; containerd's sandbox
 *   has no container name). Two cgroups with one (namespace, pod, container) (a restarted container whose old cgroup
 *   is still there) give the one that started last, as the kubelet keeps only the newest;
 * - pods are the pod-level cgroups (`…/pod<uid>`, `kubepods-…-pod<uid>.slice`) whose pod and namespace are known.
 * A value podvisor could not read is no sample, never a 0 (metrics-server would drop a pod over a 0).
 *
 * `resource_scrape_error` is always 0 here: a gather that fails yields no snapshot and so no body at all, and the
 * route answers that error (HTTP 5xx) instead, which metrics-server treats as a failed node just like the kubelet's 1.
 */
import { isPodCgroup } from '../gather/pod-cgroups.js';
import type { ContainerSnapshot, Snapshot } from '../model/snapshot.js';
import { escapeLabelValue, formatValue, type RenderedFamily } from './exposition.js';
import type { MetricType } from './spec.js';

type Stability = 'STABLE' | 'ALPHA';

/** A Kubernetes container: its cgroup and the three labels it is reported under. */
interface PodContainer {
  c: ContainerSnapshot;
  container: string;
  pod: string;
  namespace: string;
}

/** A pod-level cgroup. */
interface PodCgroup {
  c: ContainerSnapshot;
  pod: string;
  namespace: string;
}

interface Input {
  node: ContainerSnapshot | undefined;
  containers: readonly PodContainer[];
  pods: readonly PodCgroup[];
  timestampMs: number;
}

/** One sample before rendering: label values in sorted label-name order. */
interface Row {
  labelValues: readonly string[];
  value: number;
  timestampMs?: number;
}

interface ResourceFamily {
  name: string;
  help: string;
  stability: Stability;
  type: MetricType;
  /** Label names, sorted (the kubelet's registry writes them sorted). */
  labels: readonly string[];
  rows(input: Input): Row[];
}

const CONTAINER_LABELS = ['container', 'namespace', 'pod'] as const;
const POD_LABELS = ['namespace', 'pod'] as const;

/** A number when it is one (finite), else undefined: an absent value is no sample. */
function known(v: number | undefined): v is number {
  return v !== undefined && Number.isFinite(v);
}

function nodeRow(input: Input, value: (c: ContainerSnapshot) => number | undefined): Row[] {
  const v = input.node === undefined ? undefined : value(input.node);
  return known(v) ? [{ labelValues: [], value: v, timestampMs: input.timestampMs }] : [];
}

function containerRows(input: Input, value: (c: ContainerSnapshot) => number | undefined, stamped = true): Row[] {
  const out: Row[] = [];
  for (const k of input.containers) {
    const v = value(k.c);
    if (!known(v)) continue;
    const row: Row = { labelValues: [k.container, k.namespace, k.pod], value: v };
    if (stamped) row.timestampMs = input.timestampMs;
    out.push(row);
  }
  return out;
}

function podRows(input: Input, value: (c: ContainerSnapshot) => number | undefined): Row[] {
  const out: Row[] = [];
  for (const p of input.pods) {
    const v = value(p.c);
    if (known(v)) out.push({ labelValues: [p.namespace, p.pod], value: v, timestampMs: input.timestampMs });
  }
  return out;
}

const cpu = (c: ContainerSnapshot): number | undefined => c.cgroup.cpu?.usageSeconds;
const workingSet = (c: ContainerSnapshot): number | undefined => c.cgroup.memory?.workingSetBytes;
const swap = (c: ContainerSnapshot): number | undefined => c.cgroup.memory?.swapBytes;

/**
 * The start time, only of a container that also has both a CPU and a memory sample: metrics-server drops the whole
 * pod when one of its containers has a start time but no (that is, zero) CPU or memory. The kubelet skips a start
 * time whose Unix second is not positive.
 */
function startTime(c: ContainerSnapshot): number | undefined {
  const s = c.startTimeSeconds;
  return known(s) && Math.floor(s) > 0 && known(cpu(c)) && known(workingSet(c)) ? s : undefined;
}

/**
 * The swap limit: the kubelet writes SwapAvailableBytes + SwapUsageBytes, where available is cAdvisor's swap limit
 * (v1 memory.memsw.limit_in_bytes, v2 memory.swap.max) less usage: the limit itself, and nothing when unlimited.
 * podvisor's model folds "unlimited" into 0 (as cAdvisor's container_spec_memory_swap_limit_bytes), so a limit of 0
 * (v2 memory.swap.max=0: no swap allowed) cannot be told from none, and is left out rather than claimed.
 */
function swapLimit(c: ContainerSnapshot): number | undefined {
  const l = c.cgroup.spec.memorySwapLimitBytes;
  return known(l) && l > 0 ? l : undefined;
}

/** In the kubelet's (sorted) order. */
const RESOURCE_FAMILIES: readonly ResourceFamily[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed by the container in core-seconds',
    stability: 'STABLE',
    type: 'counter',
    labels: CONTAINER_LABELS,
    rows: (i) => containerRows(i, cpu),
  },
  {
    name: 'container_memory_working_set_bytes',
    help: 'Current working set of the container in bytes',
    stability: 'STABLE',
    type: 'gauge',
    labels: CONTAINER_LABELS,
    rows: (i) => containerRows(i, workingSet),
  },
  {
    name: 'container_start_time_seconds',
    help: 'Start time of the container since unix epoch in seconds',
    stability: 'STABLE',
    type: 'gauge',
    labels: CONTAINER_LABELS,
    rows: (i) => containerRows(i, startTime, false),
  },
  {
    name: 'container_swap_limit_bytes',
    help: 'Current amount of the container swap limit in bytes. Reported only on non-windows systems',
    stability: 'ALPHA',
    type: 'gauge',
    labels: CONTAINER_LABELS,
    rows: (i) => containerRows(i, swapLimit),
  },
  {
    name: 'container_swap_usage_bytes',
    help: 'Current amount of the container swap usage in bytes. Reported only on non-windows systems',
    stability: 'ALPHA',
    type: 'gauge',
    labels: CONTAINER_LABELS,
    rows: (i) => containerRows(i, swap),
  },
  {
    name: 'node_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed by the node in core-seconds',
    stability: 'STABLE',
    type: 'counter',
    labels: [],
    rows: (i) => nodeRow(i, cpu),
  },
  {
    name: 'node_memory_working_set_bytes',
    help: 'Current working set of the node in bytes',
    stability: 'STABLE',
    type: 'gauge',
    labels: [],
    rows: (i) => nodeRow(i, workingSet),
  },
  {
    // The kubelet stamps it with the memory sample's time; here every sample has the one read time.
    name: 'node_swap_usage_bytes',
    help: 'Current swap usage of the node in bytes. Reported only on non-windows systems',
    stability: 'ALPHA',
    type: 'gauge',
    labels: [],
    rows: (i) => nodeRow(i, swap),
  },
  {
    name: 'pod_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed by the pod in core-seconds',
    stability: 'STABLE',
    type: 'counter',
    labels: POD_LABELS,
    rows: (i) => podRows(i, cpu),
  },
  {
    name: 'pod_memory_working_set_bytes',
    help: 'Current working set of the pod in bytes',
    stability: 'STABLE',
    type: 'gauge',
    labels: POD_LABELS,
    rows: (i) => podRows(i, workingSet),
  },
  {
    name: 'pod_swap_usage_bytes',
    help: 'Current amount of the pod swap usage in bytes. Reported only on non-windows systems',
    stability: 'ALPHA',
    type: 'gauge',
    labels: POD_LABELS,
    rows: (i) => podRows(i, swap),
  },
  {
    name: 'resource_scrape_error',
    help: '1 if there was an error while getting container metrics, 0 otherwise',
    stability: 'STABLE',
    type: 'gauge',
    labels: [],
    rows: () => [{ labelValues: [], value: 0 }],
  },
];

/** The names of the families, in exposition order (tests, docs). */
export const RESOURCE_FAMILY_NAMES: readonly string[] = RESOURCE_FAMILIES.map((f) => f.name);

/**
 * Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which expfmt uses: the shortest digits that round-trip (as JS), in
 * exponent form when the decimal exponent is below -4 or at least 6 (shortest %g decides at precision 6), with a
 * signed exponent of at least two digits (`1.675264e+07`, `1e-05`); otherwise plain (`6197.005020909`).
 */
export function goFloat(v: number): string {
  if (!Number.isFinite(v)) return formatValue(v);
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa = '', exp = '0'] = v.toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 6) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(v);
}

/** Compares label value lists as client_golang sorts a family's metrics (value by value, byte order for ASCII). */
function compareRows(a: Row, b: Row): number {
  for (let i = 0; i < a.labelValues.length; i++) {
    const x = a.labelValues[i] ?? '';
    const y = b.labelValues[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function render(f: ResourceFamily, rows: Row[]): RenderedFamily {
  rows.sort(compareRows);
  let samples = '';
  for (const r of rows) {
    let labels = '';
    for (let i = 0; i < f.labels.length; i++) labels += `${i > 0 ? ',' : ''}${f.labels[i] ?? ''}="${escapeLabelValue(r.labelValues[i] ?? '')}"`;
    samples += `${f.name}${labels === '' ? '' : `{${labels}}`} ${goFloat(r.value)}${r.timestampMs === undefined ? '' : ` ${r.timestampMs}`}\n`;
  }
  return { name: f.name, help: `[${f.stability}] ${f.help}`, type: f.type, samples };
}

/** The Kubernetes containers of a snapshot, one per (namespace, pod, container): the latest started. */
function podContainers(snapshot: Snapshot): PodContainer[] {
  const byKey = new Map<string, PodContainer>();
  for (const c of snapshot.containers) {
    const { container, pod, namespace } = c.labels;
    if (container === '' || pod === '' || namespace === '' || container === 'POD') continue;
    const key = `${namespace}\u0000${pod}\u0000${container}`;
    const seen = byKey.get(key);
    if (seen === undefined || (c.startTimeSeconds ?? -Infinity) > (seen.c.startTimeSeconds ?? -Infinity)) byKey.set(key, { c, container, pod, namespace });
  }
  return [...byKey.values()];
}

/** The pod-level cgroups of a snapshot whose pod is known, one per (namespace, pod). */
function podCgroups(snapshot: Snapshot): PodCgroup[] {
  const byKey = new Map<string, PodCgroup>();
  for (const c of snapshot.containers) {
    const { pod, namespace } = c.labels;
    if (pod === '' || namespace === '' || !isPodCgroup(c.id)) continue;
    const key = `${namespace}\u0000${pod}`;
    if (!byKey.has(key)) byKey.set(key, { c, pod, namespace });
  }
  return [...byKey.values()];
}

/** The families of the kubelet's /metrics/resource for one snapshot (text 0.0.4 only: the timestamps are ms). */
export function renderResourceFamilies(snapshot: Snapshot): RenderedFamily[] {
  const input: Input = {
    node: snapshot.containers.find((c) => c.id === '/'),
    containers: podContainers(snapshot),
    pods: podCgroups(snapshot),
    timestampMs: Math.floor(snapshot.timestampMs),
  };
  return RESOURCE_FAMILIES.map((f) => render(f, f.rows(input)));
}
