/**
 * The kubelet's /metrics/resource rendered from one snapshot: the exact body (HELP with the stability level, family
 * and sample order, labels, Go float text, ms timestamps), and which cgroups make which series.
 */
import t from 'tap';
import { assemble, encodeFamilies } from '../../src/metrics/exposition.js';
import { goFloat, renderResourceFamilies, RESOURCE_FAMILY_NAMES } from '../../src/metrics/resource.js';
import type { ContainerSnapshot } from '../../src/model/snapshot.js';
import { container, snapshotOf } from './fixtures/run-specs.js';
import { decodeResourceBody, resourceUsage } from '../support/metrics-server-decode.js';

const POD = '/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
/** A pod cgroup as the systemd driver names it. */
const BATCH_POD = '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12345678_1234_1234_1234_123456789abc.slice';
const shop = (name: string) => ({ name: `k8s_${name}`, image: 'img', container: name, pod: 'web-7d9f', namespace: 'shop' });

function body(containers: readonly ContainerSnapshot[]): string {
  return assemble([encodeFamilies(renderResourceFamilies(snapshotOf(containers)))], 'text').toString();
}

const FIXTURE: ContainerSnapshot[] = [
  container('/', { cpu: { usageSeconds: 6197.005020909 }, memory: { workingSetBytes: 1_137_475_584, swapBytes: 0 }, spec: {} }),
  // The pod's own cgroup: pod and namespace from its containers.
  container(
    POD,
    { cpu: { usageSeconds: 3.75 }, memory: { workingSetBytes: 20_000_000, swapBytes: 4096 }, spec: {} },
    { labels: { name: '', image: '', container: '', pod: 'web-7d9f', namespace: 'shop' } },
  ),
  // Its sandbox (cri-dockerd names it POD): not a container of the pod.
  container(
    `${POD}/0000000000000000000000000000000000000000000000000000000000000001`,
    { cpu: { usageSeconds: 0.01 }, memory: { workingSetBytes: 500_000 }, spec: {} },
    { labels: shop('POD'), startTimeSeconds: 1_750_607_800 },
  ),
  // Two containers: one with swap and a swap limit, one with an unlimited swap limit (0 in the model) and no swap.
  container(
    `${POD}/0000000000000000000000000000000000000000000000000000000000000002`,
    { cpu: { usageSeconds: 2.25 }, memory: { workingSetBytes: 16_752_640, swapBytes: 4096 }, spec: { memorySwapLimitBytes: 1_073_741_824 } },
    { labels: shop('app'), startTimeSeconds: 1_750_607_841.5 },
  ),
  container(
    `${POD}/0000000000000000000000000000000000000000000000000000000000000003`,
    { cpu: { usageSeconds: 1.000000001 }, memory: { workingSetBytes: 3_379_200 }, spec: { memorySwapLimitBytes: 0 } },
    { labels: shop('sidecar'), startTimeSeconds: 1_750_607_849 },
  ),
  // A container whose memory could not be read: its CPU only, and no start time (metrics-server would drop the pod).
  container(
    `${POD}/0000000000000000000000000000000000000000000000000000000000000004`,
    { cpu: { usageSeconds: 0.5 }, spec: {} },
    { labels: shop('broken'), startTimeSeconds: 1_750_607_850 },
  ),
  // A plain Docker container: no pod, not reported.
  container(
    '/docker/00000000000000000000000000000000000000000000000000000000000000d0',
    { cpu: { usageSeconds: 5 }, memory: { workingSetBytes: 100 }, spec: {} },
    { labels: { name: 'nginx', image: 'nginx:1.25', container: '', pod: '', namespace: '' }, startTimeSeconds: 1_750_000_000 },
  ),
  // A pod cgroup no runtime knows: not reported.
  container('/kubepods/besteffort/pod99999999-9999-9999-9999-999999999999', { cpu: { usageSeconds: 1 }, memory: { workingSetBytes: 1 }, spec: {} }),
  // A systemd-driver pod with its memory unreadable, and its container (start time 0: none).
  container(BATCH_POD, { cpu: { usageSeconds: 0.75 }, spec: {} }, { labels: { name: '', image: '', container: '', pod: 'job-x', namespace: 'batch' } }),
  container(
    `${BATCH_POD}/cri-containerd-00000000000000000000000000000000000000000000000000000000000000b1.scope`,
    { cpu: { usageSeconds: 0.7 }, memory: { workingSetBytes: 1_234_567 }, spec: {} },
    { labels: { name: 'b1', image: 'img', container: 'app', pod: 'job-x', namespace: 'batch' }, startTimeSeconds: 0 },
  ),
];

t.test('the exact body of a node with two pods', async (t) => {
  const ts = '1700000123456';
  t.equal(
    body(FIXTURE),
    [
      '# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds',
      '# TYPE container_cpu_usage_seconds_total counter',
      `container_cpu_usage_seconds_total{container="app",namespace="batch",pod="job-x"} 0.7 ${ts}`,
      `container_cpu_usage_seconds_total{container="app",namespace="shop",pod="web-7d9f"} 2.25 ${ts}`,
      `container_cpu_usage_seconds_total{container="broken",namespace="shop",pod="web-7d9f"} 0.5 ${ts}`,
      `container_cpu_usage_seconds_total{container="sidecar",namespace="shop",pod="web-7d9f"} 1.000000001 ${ts}`,
      '# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes',
      '# TYPE container_memory_working_set_bytes gauge',
      `container_memory_working_set_bytes{container="app",namespace="batch",pod="job-x"} 1.234567e+06 ${ts}`,
      `container_memory_working_set_bytes{container="app",namespace="shop",pod="web-7d9f"} 1.675264e+07 ${ts}`,
      `container_memory_working_set_bytes{container="sidecar",namespace="shop",pod="web-7d9f"} 3.3792e+06 ${ts}`,
      '# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds',
      '# TYPE container_start_time_seconds gauge',
      'container_start_time_seconds{container="app",namespace="shop",pod="web-7d9f"} 1.7506078415e+09',
      'container_start_time_seconds{container="sidecar",namespace="shop",pod="web-7d9f"} 1.750607849e+09',
      '# HELP container_swap_limit_bytes [ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems',
      '# TYPE container_swap_limit_bytes gauge',
      `container_swap_limit_bytes{container="app",namespace="shop",pod="web-7d9f"} 1.073741824e+09 ${ts}`,
      '# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems',
      '# TYPE container_swap_usage_bytes gauge',
      `container_swap_usage_bytes{container="app",namespace="shop",pod="web-7d9f"} 4096 ${ts}`,
      '# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds',
      '# TYPE node_cpu_usage_seconds_total counter',
      `node_cpu_usage_seconds_total 6197.005020909 ${ts}`,
      '# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes',
      '# TYPE node_memory_working_set_bytes gauge',
      `node_memory_working_set_bytes 1.137475584e+09 ${ts}`,
      '# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems',
      '# TYPE node_swap_usage_bytes gauge',
      `node_swap_usage_bytes 0 ${ts}`,
      '# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds',
      '# TYPE pod_cpu_usage_seconds_total counter',
      `pod_cpu_usage_seconds_total{namespace="batch",pod="job-x"} 0.75 ${ts}`,
      `pod_cpu_usage_seconds_total{namespace="shop",pod="web-7d9f"} 3.75 ${ts}`,
      '# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes',
      '# TYPE pod_memory_working_set_bytes gauge',
      `pod_memory_working_set_bytes{namespace="shop",pod="web-7d9f"} 2e+07 ${ts}`,
      '# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems',
      '# TYPE pod_swap_usage_bytes gauge',
      `pod_swap_usage_bytes{namespace="shop",pod="web-7d9f"} 4096 ${ts}`,
      '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise',
      '# TYPE resource_scrape_error gauge',
      'resource_scrape_error 0',
      '',
    ].join('\n'),
  );
});

t.test('absent values make no sample, and a family without samples no HELP/TYPE', async (t) => {
  const text = body([
    container('/', { cpu: { usageSeconds: 10 }, spec: {} }),
    container('/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/x', { spec: {} }, { labels: shop('app'), startTimeSeconds: 1_750_000_000 }),
  ]);
  t.equal(
    text,
    [
      '# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds',
      '# TYPE node_cpu_usage_seconds_total counter',
      'node_cpu_usage_seconds_total 10 1700000123456',
      '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise',
      '# TYPE resource_scrape_error gauge',
      'resource_scrape_error 0',
      '',
    ].join('\n'),
    'no memory, no swap, no container values: only the node CPU and the scrape error; no start time without CPU and memory',
  );
  t.equal(
    body([]),
    '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n',
    'no root cgroup: no node series',
  );
});

t.test('the sandbox, containers outside pods and containers without a name are not reported', async (t) => {
  const labels = [
    { container: 'POD', pod: 'p', namespace: 'n' },
    { container: '', pod: 'p', namespace: 'n' },
    { container: 'c', pod: '', namespace: 'n' },
    { container: 'c', pod: 'p', namespace: '' },
  ];
  const text = body(
    labels.map((l, i) =>
      container(`/c${i}`, { cpu: { usageSeconds: 1 }, memory: { workingSetBytes: 1 }, spec: {} }, { labels: { name: '', image: '', ...l } }),
    ),
  );
  t.notMatch(text, /^container_/m, `no container series for ${JSON.stringify(labels)}`);
  t.notMatch(text, /^pod_/m, 'and no pod series: none of them is a pod cgroup');
});

t.test('a restarted container whose old cgroup is still there: the one that started last', async (t) => {
  const make = (id: string, cpu: number, start: number | undefined) =>
    container(
      `${POD}/${id}`,
      { cpu: { usageSeconds: cpu }, memory: { workingSetBytes: 1 }, spec: {} },
      { labels: shop('app'), ...(start === undefined ? {} : { startTimeSeconds: start }) },
    );
  const text = body([make('a', 100, 1_750_000_000), make('b', 2, 1_750_000_500), make('c', 7, undefined)]);
  t.match(text, /^container_cpu_usage_seconds_total\{container="app",namespace="shop",pod="web-7d9f"\} 2 \d+$/m, 'the newer one');
  t.equal(text.match(/^container_cpu_usage_seconds_total/gm)?.length, 1, 'one series');
  t.match(text, /^container_start_time_seconds\{container="app",namespace="shop",pod="web-7d9f"\} 1\.7500005e\+09$/m, 'with its start time');
});

t.test('a swap limit of 0 (unlimited, or v2 memory.swap.max=0: the model does not tell them apart) is left out', async (t) => {
  const c = (limit: number | undefined) =>
    container(`${POD}/x`, { memory: { swapBytes: 0 }, spec: limit === undefined ? {} : { memorySwapLimitBytes: limit } }, { labels: shop('app') });
  t.notMatch(body([c(0)]), /container_swap_limit_bytes/);
  t.notMatch(body([c(undefined)]), /container_swap_limit_bytes/);
  t.match(body([c(2048)]), /^container_swap_limit_bytes\{container="app",namespace="shop",pod="web-7d9f"\} 2048 1700000123456$/m);
  t.match(
    body([c(0)]),
    /^container_swap_usage_bytes\{container="app",namespace="shop",pod="web-7d9f"\} 0 1700000123456$/m,
    'a known swap usage of 0 is a sample',
  );
});

t.test('timestamps are integer milliseconds; start time and scrape error carry none', async (t) => {
  const snap = { ...snapshotOf(FIXTURE), timestampMs: 1_700_000_000_123.9 };
  const text = assemble([encodeFamilies(renderResourceFamilies(snap))], 'text').toString();
  const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of samples) {
    const name = line.split(/[{ ]/)[0] ?? '';
    const fields = (line.includes('}') ? line.slice(line.lastIndexOf('}') + 1) : line.slice(name.length)).trim().split(' ');
    if (name === 'container_start_time_seconds' || name === 'resource_scrape_error') t.equal(fields.length, 1, `${name}: no timestamp`);
    else t.same(fields.slice(1), ['1700000000123'], `${name}: the gather's start, whole ms`);
  }
});

t.test('label values are escaped', async (t) => {
  const text = body([container(`${POD}/x`, { cpu: { usageSeconds: 1 }, spec: {} }, { labels: { ...shop('a"b\\c\nd'), namespace: 'shop' } })]);
  t.match(text, 'container_cpu_usage_seconds_total{container="a\\"b\\\\c\\nd",namespace="shop",pod="web-7d9f"} 1 ');
});

t.test('family names in the kubelet order', async (t) => {
  t.same(RESOURCE_FAMILY_NAMES, [...RESOURCE_FAMILY_NAMES].sort(), 'sorted by name, as client_golang gathers');
  t.notOk(RESOURCE_FAMILY_NAMES.includes('scrape_error'), 'scrape_error: hidden on current kubelets');
  t.equal(RESOURCE_FAMILY_NAMES.length, 12);
});

t.test("goFloat: Go's strconv.FormatFloat(v, 'g', -1, 64)", async (t) => {
  const cases: [number, string][] = [
    [0, '0'],
    [-0, '-0'],
    [1, '1'],
    [0.5, '0.5'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [0.000012345, '1.2345e-05'],
    [123456, '123456'],
    [999999, '999999'],
    [1000000, '1e+06'],
    [1234567, '1.234567e+06'],
    [16752640, '1.675264e+07'],
    [1.7506078418297591e9, '1.7506078418297591e+09'],
    [6197.005020909, '6197.005020909'],
    [1e21, '1e+21'],
    [1.5e300, '1.5e+300'],
    [-2.5e-7, '-2.5e-07'],
    [NaN, 'NaN'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
  ];
  for (const [v, want] of cases) t.equal(goFloat(v), want, String(v));
});

t.test("what metrics-server keeps of the body (its decoder's rules, test/support/metrics-server-decode.ts)", async (t) => {
  const batch = decodeResourceBody(body(FIXTURE), 1);
  t.same(
    batch.node,
    { startTimeNs: 0, timestampMs: 1_700_000_123_456, cpuNs: 6_197_005_020_909, memoryBytes: 1_137_475_584 },
    'the node, at the sample timestamp',
  );
  t.same([...batch.pods.keys()], ['batch/job-x'], 'shop/web-7d9f is dropped whole: its container "broken" has CPU but no memory');
  t.same(
    batch.pods.get('batch/job-x')?.get('app'),
    { startTimeNs: 0, timestampMs: 1_700_000_123_456, cpuNs: 700_000_000, memoryBytes: 1_234_567 },
    'a container without a start time still counts',
  );
  const healthy = decodeResourceBody(body(FIXTURE.filter((c) => c.labels.container !== 'broken')), 1);
  t.same([...(healthy.pods.get('shop/web-7d9f')?.keys() ?? [])].sort(), ['app', 'sidecar'], 'without it the pod is kept, with its two containers (no sandbox)');
  t.equal(healthy.pods.get('shop/web-7d9f')?.get('app')?.startTimeNs, 1_750_607_841.5e9, 'the start time, in ns');

  t.equal(decodeResourceBody('node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 0\n', 5).node, undefined, 'a node with memory 0 is dropped');
  t.same(decodeResourceBody('node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n', 5).node?.timestampMs, 5, 'no timestamp: the request time');
  t.throws(() => decodeResourceBody('node_cpu_usage_seconds_total{ 1\n', 5), /failed parsing metrics/, 'a line it cannot parse fails the node');
  t.same(
    [...decodeResourceBody('container_start_time_seconds{container="c",namespace="n",pod="p"} 1.7e+09\n', 5).pods],
    [],
    'a start time alone (no CPU, no memory): the pod is dropped',
  );

  const prev = { startTimeNs: 0, timestampMs: 1_000, cpuNs: 1e9, memoryBytes: 10 };
  t.same(
    resourceUsage({ ...prev, timestampMs: 3_000, cpuNs: 2e9, memoryBytes: 20 }, prev),
    { nanoCores: 5e8, memoryBytes: 20, windowMs: 2_000 },
    'half a core',
  );
  t.throws(() => resourceUsage({ ...prev, timestampMs: 3_000, cpuNs: 1 }, prev), /decrease in cumulative CPU/);
});
