/**
 * Every container_* metric the kube-prometheus dashboards, the kubernetes-mixin rules and prometheus-adapter query
 * (test/fixtures/kube-prometheus/container-metrics.json, extracted from the rendered manifests by
 * test/support/extract-kube-prometheus-metrics.mjs) is in podvisor's /metrics on this machine with the default kinds,
 * carrying the label names those queries match on; and the whole body with every kind on lints clean with promtool.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requireDaemon, run } from '../support/daemons.js';
import { startExporter } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { isRecord } from '../support/prometheus.js';
import { kubeletContainerArgs } from '../support/kubelet-labels.js';
import { until } from '../support/poll.js';

const IMAGE = 'podvisor-test:1';
const FIXTURE = new URL('../fixtures/kube-prometheus/container-metrics.json', import.meta.url);
/** Target labels Prometheus adds (job, metrics_path from the ServiceMonitor; cluster an external label), not the exporter's. */
const TARGET_LABELS = ['job', 'metrics_path', 'cluster'];

function usedMetrics(): Map<string, string[]> {
  const parsed: unknown = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
  if (!isRecord(parsed) || !isRecord(parsed.metrics)) throw new Error(`${FIXTURE.pathname}: no "metrics" object`);
  const out = new Map<string, string[]>();
  for (const [name, entry] of Object.entries(parsed.metrics)) {
    const labels: unknown = isRecord(entry) ? entry.labels : undefined;
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new Error(`${name}: no labels array`);
    out.set(
      name,
      labels.filter((l) => !TARGET_LABELS.includes(l)),
    );
  }
  return out;
}

/** The label names of the first sample line of `name` whose `container` label is not empty, else of any sample. */
function labelNames(body: string, name: string): string[] | undefined {
  const lines = body.split('\n').filter((l) => l.startsWith(`${name}{`));
  const line = lines.find((l) => /,container="[^"]+"/.test(l)) ?? lines[0];
  if (line === undefined) return undefined;
  return [...line.slice(name.length).matchAll(/[{,]([a-zA-Z_]\w*)="/g)].map((m) => m[1] ?? '');
}

t.test('every container_* metric kube-prometheus queries is served, with the labels it matches on', async (t) => {
  const used = usedMetrics();
  t.ok(used.size >= 17, `${used.size} metrics in the fixture`);
  if (!(await requireDaemon(t, 'docker'))) return;
  const uid = crypto.randomUUID();
  const parent = `/kubepods/burstable/pod${uid}`;
  const name = `podvisor-e2e-kp-${uid.slice(0, 8)}`;
  t.teardown(async () => {
    await run('docker', ['rm', '-f', name], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(parent);
  });
  // A container with a CPU limit (the CFS families exist only for those) and the kubelet's labels.
  const id = (
    await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        name,
        '--cpus',
        '0.5',
        ...kubeletContainerArgs({ parent, pod: name, namespace: 'podvisor-e2e', uid, container: 'app' }),
        IMAGE,
        'sleep',
        '3600',
      ],
      { timeoutMs: 60_000 },
    )
  ).stdout.trim();

  const ex = await startExporter([]);
  t.teardown(() => ex.stop());
  let body = '';
  await until(
    'the container in /metrics with its labels',
    async () => {
      body = await (await fetch(`${ex.url}/metrics`)).text();
      return body.includes(`container_cpu_cfs_periods_total{id="${parent}/${id}",name="${name}"`);
    },
    { everyMs: 500, timeoutMs: 60_000 },
  );
  for (const [metric, labels] of used) {
    const names = labelNames(body, metric);
    t.ok(names !== undefined, `${metric} is served`);
    if (names === undefined) continue;
    for (const l of ['id', 'name', 'image', 'container', 'pod', 'namespace']) t.ok(names.includes(l), `${metric} has the kubelet's ${l} label`);
    for (const l of labels) t.ok(names.includes(l), `${metric} has "${l}", which the queries match on`);
  }
  // The dashboards select devices with device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)".
  const device = /,device="((?:\/dev\/)?(?:mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+))"/;
  for (const metric of ['container_fs_reads_total', 'container_fs_writes_total', 'container_fs_reads_bytes_total', 'container_fs_writes_bytes_total']) {
    const devices = body.split('\n').filter((l) => l.startsWith(`${metric}{id="/"`));
    t.ok(
      devices.some((l) => device.test(l)),
      `${metric}{id="/"} has a device the dashboards' selector matches: ${devices.map((l) => /device="([^"]*)"/.exec(l)?.[1]).join(', ')}`,
    );
  }
});

t.test('promtool check metrics: the whole body with every kind on, from this machine', async (t) => {
  if (!(await requireDaemon(t, 'promtool'))) return;
  const ex = await startExporter(['--disable-metrics=']);
  t.teardown(() => ex.stop());
  let body = '';
  await until(
    'a first answer',
    async () => {
      const res = await fetch(`${ex.url}/metrics`);
      body = await res.text();
      return res.status === 200;
    },
    { everyMs: 500, timeoutMs: 60_000 },
  );
  for (const family of [
    'container_oom_events_total',
    'container_fs_reads_total',
    'container_cpu_schedstat_run_seconds_total',
    'container_network_tcp_usage_total',
  ]) {
    t.ok(body.includes(`\n${family}{`), `${family} is in the body`);
  }
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  t.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
  t.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'no lint findings');
});
