/**
 * Metric kinds in a gather: a kind that is off costs nothing (a counting reader sees none of its files), its families
 * are not rendered, and the kinds that are on carry what the fixture files say. --runtime-containers-only keeps `/`,
 * the runtimes' containers, their pod cgroups and the allowlisted prefixes.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import { Gatherer, type GathererOptions } from '../../src/gather/gatherer.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { FileReader } from '../../src/host/file-reader.js';
import { silentLogger } from '../../src/log.js';
import { METRIC_KINDS, type MetricKind } from '../../src/model/kinds.js';
import { assemble, encodeFamilies } from '../../src/metrics/exposition.js';
import { renderSnapshot } from '../../src/metrics/index.js';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';
import { container, FakeClient } from '../runtime/fixtures/fake-client.js';
import { until } from '../support/poll.js';

const UID = '8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';
const POD = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`;
const APP_ID = '3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4';
const PAUSE_ID = 'be3ea3108af459f5e4bf81fb3a6928eaa31727350cb0abc69fa3d05cd9f9f4cf';
const APP = `${POD}/cri-containerd-${APP_ID}.scope`;
const PAUSE = `${POD}/cri-containerd-${PAUSE_ID}.scope`;

class CountingReader extends FileReader {
  readonly files: string[] = [];
  override read(file: string): string | undefined {
    this.files.push(file);
    return super.read(file);
  }
}

function fixture(t: Test, host = 'v2-systemd'): string {
  const root = copyFixtureHost(host);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

function gatherer(root: string, opts: Partial<GathererOptions>): Gatherer {
  return new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    ...opts,
  });
}

async function text(g: Gatherer): Promise<string> {
  return assemble([encodeFamilies(renderSnapshot(await g.gather()))], 'text').toString('utf8');
}

const families = (body: string): string[] => [...new Set(body.split('\n').flatMap((l) => /^(container_\w+)\{/.exec(l)?.[1] ?? []))].sort();

t.test('a kind that is off: none of its files are read, none of its families rendered', async (t) => {
  const root = fixture(t);
  const reader = new CountingReader();
  const body = await text(gatherer(root, { kinds: ['cpu'], reader }));
  const names = reader.files.map((f) => f.slice(root.length));
  const basenames = [...new Set(names.map((f) => f.slice(f.lastIndexOf('/') + 1)))].sort();
  t.strictSame(
    basenames,
    ['cpu.max', 'cpu.stat', 'cpu.weight', 'memory.max', 'memory.min', 'memory.swap.max'],
    'cpu alone: cpu.stat and the always-on spec files (cpu.max, cpu.weight, memory.max/min/swap.max), nothing else',
  );
  t.notOk(
    names.some((f) => f.startsWith('/proc/')),
    'no /proc file: no cgroup.procs pids, fds, net/dev, partitions, diskstats, vmstat, limits or schedstat',
  );
  t.strictSame(
    families(body),
    [
      'container_cpu_cfs_burst_periods_total',
      'container_cpu_cfs_burst_seconds_total',
      'container_cpu_cfs_periods_total',
      'container_cpu_cfs_throttled_periods_total',
      'container_cpu_cfs_throttled_seconds_total',
      'container_cpu_system_seconds_total',
      'container_cpu_usage_seconds_total',
      'container_cpu_user_seconds_total',
      'container_last_seen',
      'container_spec_cpu_period',
      'container_spec_cpu_quota',
      'container_spec_cpu_shares',
      'container_spec_memory_limit_bytes',
      'container_spec_memory_reservation_limit_bytes',
      'container_spec_memory_swap_limit_bytes',
      'container_start_time_seconds',
    ],
    'only the cpu families and those that are always on',
  );
});

t.test('every kind on: each file once per cgroup, and the opt-in families carry the fixture values', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd', version: { version: '1.7.0', apiVersion: '' } });
  const labels = { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': UID };
  client.add(
    container(APP_ID, { runtime: 'containerd', name: APP_ID, labels: { ...labels, 'io.kubernetes.container.name': 'app' }, networkOwner: false, pid: 24517 }),
    container(PAUSE_ID, { runtime: 'containerd', name: PAUSE_ID, labels, kind: 'sandbox', networkOwner: true, pid: 24391 }),
  );
  const factory = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('registration', () => factory.status().up);
  const reader = new CountingReader();
  const g = gatherer(root, { kinds: [...METRIC_KINDS], reader, runtimes: [factory], hugepageSizes: ['2MB', '1GB'] });
  const snap = await g.gather();
  const app = snap.containers.find((c) => c.id === APP);
  const pause = snap.containers.find((c) => c.id === PAUSE);
  t.strictSame(app?.processes?.ulimitsSoft, { max_open_files: 1048576 }, "the root process's soft limit, from /proc/24517/limits");
  t.strictSame(app?.sched, { runSeconds: (412938119 + 88213004) / 1e9, runqueueSeconds: (10228313 + 2113987) / 1e9, runPeriods: 1911 + 402 });
  const podSched = snap.containers.find((c) => c.id === POD)?.sched;
  // A pod cgroup without processes of its own: the sums of its containers' processes, as cAdvisor's subtree.
  t.equal(podSched?.runPeriods, 1911 + 402 + 17);
  t.ok(Math.abs((podSched?.runSeconds ?? 0) - (412938119 + 88213004 + 1934119) / 1e9) < 1e-12, `pod run seconds ${podSched?.runSeconds}`);
  t.ok(Math.abs((podSched?.runqueueSeconds ?? 0) - (10228313 + 2113987 + 88313) / 1e9) < 1e-12, `pod runqueue seconds ${podSched?.runqueueSeconds}`);
  t.equal(app?.sockets, undefined, 'the app shares the sandbox namespace: no socket series');
  t.strictSame(pause?.sockets?.tcp, {
    established: 2,
    synsent: 0,
    synrecv: 0,
    finwait1: 0,
    finwait2: 0,
    timewait: 1,
    close: 0,
    closewait: 0,
    lastack: 0,
    listen: 1,
    closing: 0,
  });
  t.strictSame(pause?.sockets?.udp, { listen: 2, dropped: 4, rxqueued: 0x340, txqueued: 0 });
  t.equal(pause?.processes?.ulimitsSoft, undefined, 'no limits file for the sandbox pid in the fixture: absent, not 0');

  const body = assemble([encodeFamilies(renderSnapshot(snap))], 'text').toString('utf8');
  const esc = APP.replace(/\./g, '\\.');
  t.match(body, new RegExp(`container_ulimits_soft\\{id="${esc}",[^}]*,ulimit="max_open_files"\\} 1048576\\n`));
  t.match(body, new RegExp(`container_oom_events_total\\{id="${esc}",[^}]*\\} 2\\n`));
  t.match(body, new RegExp(`container_hugetlb_usage_bytes\\{id="${esc}",[^}]*,pagesize="2MB"\\} 4194304\\n`));
  t.match(body, new RegExp(`container_fs_io_cost_usage_seconds_total\\{id="${esc}",[^}]*,device="/dev/vda"\\} 0\\.184522\\n`));
  t.match(body, new RegExp(`container_memory_numa_pages\\{id="${esc}",[^}]*,type="anon",scope="container",node="0"\\} 7712\\n`));
  t.match(body, /container_oom_events_total\{id="\/",[^}]*\} 3\n/, "the root's count from /proc/vmstat");
  t.match(body, /container_network_udp_usage_total\{id="[^"]*cri-containerd-be3ea[^"]*",[^}]*,udp_state="rxqueued"\} 832\n/);

  // Each cgroup file once, each /proc file once.
  const counts = new Map<string, number>();
  for (const f of reader.files) counts.set(f, (counts.get(f) ?? 0) + 1);
  t.strictSame(
    [...counts].filter(([, n]) => n > 1),
    [],
    'no file read twice in one gather',
  );
});

t.test('cpu usage: one cpu="total" row by default; percpu brings the per-CPU rows back (v1)', async (t) => {
  const root = fixture(t, 'v1-cgroupfs');
  const kubelet: MetricKind[] = ['cpu', 'memory', 'diskIO', 'disk', 'network', 'process', 'oom_event', 'pressure'];
  const rows = (body: string): string[] => body.split('\n').filter((l) => l.startsWith('container_cpu_usage_seconds_total{id="/"'));
  const total = rows(await text(gatherer(root, { kinds: kubelet })));
  t.equal(total.length, 1);
  t.match(total[0], /,cpu="total"\} \d/);
  const perCpu = rows(await text(gatherer(root, { kinds: [...kubelet, 'percpu'] })));
  t.ok(perCpu.length > 1, `${perCpu.length} rows`);
  t.ok(
    perCpu.every((l) => /,cpu="cpu\d\d"\}/.test(l)),
    'per-CPU rows only, as cAdvisor with percpu',
  );
});

t.test('--runtime-containers-only: /, the runtimes containers, their pod cgroups and the allowlisted prefixes', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd', version: { version: '1.7.0', apiVersion: '' } });
  client.add(container(APP_ID, { runtime: 'containerd', name: APP_ID }), container(PAUSE_ID, { runtime: 'containerd', name: PAUSE_ID, kind: 'sandbox' }));
  const factory = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('registration', () => factory.status().up);
  const ids = async (allowPrefixes: string[]): Promise<string[]> =>
    (await gatherer(root, { runtimes: [factory], runtimeContainersOnly: true, allowPrefixes }).gather()).containers.map((c) => c.id);
  t.strictSame(await ids([]), ['/', POD, APP, PAUSE]);
  t.strictSame(await ids(['/system.slice']), ['/', POD, APP, PAUSE, '/system.slice', '/system.slice/containerd.service', '/system.slice/kubelet.service']);
  const all = (await gatherer(root, { runtimes: [factory] }).gather()).containers.map((c) => c.id);
  t.ok(all.length > 10 && all.includes('/init.scope'), 'without the switch every cgroup is reported');
});
