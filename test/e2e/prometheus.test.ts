/**
 * A real Prometheus scrapes the real exporter with the scrape config prometheus-operator would generate from
 * deploy/base/servicemonitor.yaml (translated programmatically; only the interval is shortened), as a Pod target of
 * the podvisor DaemonSet (namespace=podvisor, pod=podvisor-x7k2p, container=podvisor, ...). Kubernetes-shaped Docker
 * and containerd containers in two test namespaces must come out with their own namespace/pod/container (honor_labels),
 * node and system cgroups must not inherit the exporter pod's labels, the metricRelabelings must drop what
 * kube-prometheus drops, and the kubernetes-mixin / kube-prometheus expressions must return the test containers.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { requireDaemon, removeCtrContainer, run } from '../support/daemons.js';
import { REPO, startExporter, waitForStatus } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { activeTargets, query, scrapeConfigFromServiceMonitor, startPrometheus, type ActiveTarget, type Sample } from '../support/prometheus.js';
import { poll } from '../support/poll.js';

const INTERVAL = '2s';
/** The target labels prometheus-operator puts on a Pod target of the podvisor DaemonSet (plus `endpoint`, from the SM). */
const EXPORTER_POD = { namespace: 'podvisor', pod: 'podvisor-x7k2p', container: 'podvisor', service: 'podvisor' };
const NODE = os.hostname();
/** Families the second kube-prometheus metricRelabeling drops when pod and namespace are both empty. */
const NODE_DROPPED = [
  'container_spec_cpu_shares',
  'container_spec_cpu_period',
  'container_spec_memory_limit_bytes',
  'container_file_descriptors',
  'container_sockets',
  'container_threads_max',
  'container_threads',
  'container_start_time_seconds',
  'container_last_seen',
];
const MEMORY_RULE_FAMILIES = ['container_memory_working_set_bytes', 'container_memory_rss', 'container_memory_cache', 'container_memory_swap'];

const key = (s: Sample): string => `${s.metric.namespace ?? ''}/${s.metric.pod ?? ''}/${s.metric.container ?? ''}`;
const keysIn = (rows: Sample[], namespaces: readonly string[]): string[] =>
  rows
    .filter((s) => namespaces.includes(s.metric.namespace ?? ''))
    .map(key)
    .sort();

t.test('a real Prometheus scraping podvisor as deploy/base/servicemonitor.yaml says', async (t) => {
  for (const d of ['docker', 'containerd', 'promtool', 'prometheus'] as const) if (!(await requireDaemon(t, d))) return;
  const started = Date.now();
  const rand = crypto.randomBytes(3).toString('hex');
  const nsA = `pv-prom-a-${rand}`;
  const nsB = `pv-prom-b-${rand}`;
  const podA = `web-${rand}`;
  const podB = `cache-${rand}`;
  const uidA = crypto.randomUUID();
  const uidB = crypto.randomUUID();
  const parentA = `/kubepods/burstable/pod${uidA}`;
  const ctrId = crypto.randomBytes(32).toString('hex');
  const cgB = `/kubepods/besteffort/pod${uidB}/${ctrId}`;
  const busyName = `podvisor-t-prom-app-${rand}`;
  const idleName = `podvisor-t-prom-sidecar-${rand}`;
  const expected = [`${nsA}/${podA}/app`, `${nsA}/${podA}/sidecar`, `${nsB}/${podB}/redis`].sort();
  t.teardown(async () => {
    await run('docker', ['rm', '-f', busyName, idleName], { timeoutMs: 60_000 }).catch(() => undefined);
    await removeCtrContainer(ctrId);
    removeCgroupDirs(cgB);
    removeCgroupDirs(`/kubepods/besteffort/pod${uidB}`);
    removeCgroupDirs(parentA);
  });

  // Namespace A: a Docker pod with two containers, one burning a little CPU under a quota (so rate() > 0 and it is
  // throttled); namespace B: a containerd container, as the CRI plugin would place it.
  const docker = async (name: string, container: string, extra: string[], cmd: string[]): Promise<string> =>
    (
      await run(
        'docker',
        [
          'run',
          '-d',
          '--name',
          name,
          '--cgroup-parent',
          parentA,
          '--label',
          `io.kubernetes.pod.name=${podA}`,
          '--label',
          `io.kubernetes.pod.namespace=${nsA}`,
          '--label',
          `io.kubernetes.pod.uid=${uidA}`,
          '--label',
          `io.kubernetes.container.name=${container}`,
          ...extra,
          'podvisor-test:1',
          ...cmd,
        ],
        { timeoutMs: 60_000 },
      )
    ).stdout.trim();
  const busyId = await docker(busyName, 'app', ['--cpus', '0.1'], ['sh', '-c', 'while :; do :; done']);
  const idleId = await docker(idleName, 'sidecar', [], ['sleep', '600']);
  await run(
    'ctr',
    [
      '-n',
      'k8s.io',
      'run',
      '-d',
      '--cgroup',
      cgB,
      '--label',
      `io.kubernetes.pod.name=${podB}`,
      '--label',
      `io.kubernetes.pod.namespace=${nsB}`,
      '--label',
      `io.kubernetes.pod.uid=${uidB}`,
      '--label',
      'io.kubernetes.container.name=redis',
      'docker.io/library/podvisor-test:1',
      ctrId,
      'sleep',
      '600',
    ],
    { timeoutMs: 60_000 },
  );

  // The whole node: the checks below are about node and system cgroups as much as about the test pods.
  const ex = await startExporter(['--crio-endpoint=']);
  t.teardown(() => ex.stop());
  await waitForStatus(`${ex.url}/readyz`, 200);
  const raw = await poll(
    'the exporter to label the three test containers',
    async () => {
      const body = await (await fetch(`${ex.url}/metrics/cadvisor`)).text();
      const ws = body.split('\n').filter((l) => l.startsWith('container_memory_working_set_bytes{'));
      const labelled = (id: string, container: string, ns: string): boolean =>
        ws.some((l) => l.includes(`id="${id}"`) && l.includes(`container="${container}"`) && l.includes(`namespace="${ns}"`));
      return labelled(`${parentA}/${busyId}`, 'app', nsA) && labelled(`${parentA}/${idleId}`, 'sidecar', nsA) && labelled(cgB, 'redis', nsB) ? body : undefined;
    },
    { timeoutMs: 60_000, everyMs: 250 },
  );

  // The ServiceMonitor, translated.
  const smText = fs.readFileSync(path.join(REPO, 'deploy/base/servicemonitor.yaml'), 'utf8');
  const sm = scrapeConfigFromServiceMonitor(YAML.parse(smText), {
    interval: INTERVAL,
    target: new URL(ex.url).host,
    // Kubernetes pod discovery would provide __meta_kubernetes_pod_node_name; static labels starting with `__` are
    // allowed and, like discovered meta labels, seen by relabel_configs and then dropped.
    targetLabels: { ...EXPORTER_POD, __meta_kubernetes_pod_node_name: NODE },
  });
  t.equal(sm.job, 'podvisor', 'job name from jobLabel');
  t.equal(sm.metricsPath, '/metrics/cadvisor');
  t.equal(sm.scrapeConfig.honor_labels, true, 'honor_labels from honorLabels');
  const sel = `job="${sm.job}", metrics_path="${sm.metricsPath}"`;
  // kube-prometheus's recording rules (k8s.rules.container_*), with the cadvisorSelector pointed at podvisor and
  // without the `* on (cluster, namespace, pod) group_left(node) topk(... kube_pod_info ...)` join: that needs
  // kube-state-metrics.
  const cpuRule = `sum by (cluster, namespace, pod, container) (rate(container_cpu_usage_seconds_total{${sel}, image!=""}[5m]))`;
  const rules = {
    groups: [
      {
        name: 'k8s.rules.container_cpu_usage_seconds_total',
        rules: [{ record: 'node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m', expr: cpuRule }],
      },
      ...MEMORY_RULE_FAMILIES.map((f) => ({
        name: `k8s.rules.${f}`,
        rules: [{ record: `node_namespace_pod_container:${f}`, expr: `${f}{${sel}, image!=""}` }],
      })),
    ],
  };
  const prom = await startPrometheus(
    (port) => ({
      global: { scrape_interval: INTERVAL, evaluation_interval: INTERVAL },
      scrape_configs: [sm.scrapeConfig, { job_name: 'prometheus', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
    }),
    rules,
  );
  t.teardown(() => prom.stop());
  const q = (expr: string): Promise<Sample[]> => query(prom.url, expr);
  /** For a failed `up` check: what Prometheus saw of the target and what the exporter counted of its scrapes. */
  const diagnose = async (): Promise<Record<string, unknown>> => {
    const value = async (expr: string): Promise<number | string> =>
      await q(expr).then(
        (r) => r[0]?.value ?? 'none',
        (e: unknown) => String(e),
      );
    const self = await fetch(`${ex.url}/metrics/cadvisor`, { signal: AbortSignal.timeout(10_000) })
      .then(async (r) => (await r.text()).split('\n'))
      .catch((e: unknown) => [String(e)]);
    return {
      scrapes: await value('count_over_time(up{job="podvisor"}[5m])'),
      failedScrapes: await value('count_over_time(up{job="podvisor"}[5m]) - sum_over_time(up{job="podvisor"}[5m])'),
      maxScrapeDuration: await value('max_over_time(scrape_duration_seconds{job="podvisor"}[5m])'),
      lastError: (await activeTargets(prom.url).catch(() => [])).find((x) => x.scrapePool === sm.job)?.lastError,
      exporter: self.filter((l) =>
        /^(nodejs_eventloop_lag_(max|p99|mean)_seconds|podvisor_(scrapes_total|gathers_total|gathers_ahead_total|gather_ahead_misses_total|scrape_schedules|gather_duration_seconds_(sum|count)|scrape_result_age_seconds_(sum|count)))/.test(
          l,
        ),
      ),
      prometheusLog: prom
        .log()
        .split('\n')
        .filter((l) => /level=(warn|error)[^\n]*scrape_pool=podvisor/.test(l))
        .slice(-20),
      exporterLog: ex.stderr().slice(-5000),
    };
  };

  // ---- the target
  let lastTarget: ActiveTarget | undefined;
  const target = await poll(
    'the podvisor target to be up',
    async () => {
      lastTarget = (await activeTargets(prom.url)).find((x) => x.scrapePool === sm.job);
      return lastTarget?.health === 'up' ? lastTarget : undefined;
    },
    { timeoutMs: 60_000, everyMs: 250, describe: () => `health ${lastTarget?.health ?? 'no target'} ${lastTarget?.lastError ?? ''}` },
  );
  t.equal(target.lastError, '', 'no scrape error');
  t.match(target.scrapeUrl, /\/metrics\/cadvisor$/);
  t.match(
    target.labels,
    { job: 'podvisor', ...EXPORTER_POD, endpoint: 'http-metrics', metrics_path: '/metrics/cadvisor', node: NODE, instance: new URL(ex.url).host },
    'target labels: the exporter pod, plus metrics_path and node from the relabelings',
  );
  t.equal(target.discoveredLabels.__meta_kubernetes_pod_node_name, NODE);
  // The targets API can report the scrape's health a moment before its samples are committed and queryable.
  const up = await poll(
    'up{job="podvisor"} to be queryable',
    async () => {
      const samples = await q(`up{job="podvisor"}`);
      return samples.length > 0 ? samples : undefined;
    },
    { timeoutMs: 30_000, everyMs: 250 },
  );
  const upValues = up.map((s) => s.value);
  t.same(upValues, [1], 'up{job="podvisor"} == 1', upValues[0] === 1 ? {} : { diagnosis: await diagnose() });

  // ---- CPU by namespace: needs two scrapes with the labels
  const rateExpr = 'sum by (namespace) (rate(container_cpu_usage_seconds_total{image!="",container!=""}[1m]))';
  // Waits for a rate in both namespaces (two scrapes with the labels), not for its value: the value is asserted below.
  const byNs = await poll(
    'rate() for both test namespaces',
    async () => {
      const rows = await q(rateExpr);
      const a = rows.find((s) => s.metric.namespace === nsA);
      const b = rows.find((s) => s.metric.namespace === nsB);
      return a !== undefined && b !== undefined ? { a: a.value, b: b.value } : undefined;
    },
    { timeoutMs: 60_000, everyMs: 500 },
  );
  t.ok(byNs.a > 0, `${rateExpr}: ${nsA} ${byNs.a.toFixed(4)} cores (busy, --cpus 0.1)`);
  // The redis container only sleeps: it has a rate (the poll above waited for one), and a smaller one than the
  // spinning app's, however busy the machine.
  t.ok(byNs.b < byNs.a, `${nsB} ${byNs.b.toFixed(4)} cores (idle) < ${nsA} ${byNs.a.toFixed(4)} cores (busy)`);
  // The busy container's speed, in cores while it runs, against its 0.1 CPU quota: CPU seconds per CFS period (100 ms)
  // it was runnable in. Both counters come from the same read of its cgroup, so this holds for any answer, also one
  // from an older result on a loaded node (gathers slower than the 2 s scrape: the answer's age varies from scrape to
  // scrape, and an irate() of two samples reads that jitter as speed, 0.158 cores once here).
  const app = `{namespace="${nsA}", pod="${podA}", container="app"}`;
  const perPeriod = `sum(increase(container_cpu_usage_seconds_total${app}[1m])) / sum(increase(container_cpu_cfs_periods_total${app}[1m]) * 0.1)`;
  const busyNow = await poll(
    'CFS periods counted for the busy container',
    async () => {
      const v = (await q(perPeriod))[0]?.value;
      return v !== undefined && Number.isFinite(v) ? v : undefined;
    },
    { timeoutMs: 30_000, everyMs: 500 },
  );
  t.ok(busyNow > 0.02 && busyNow < 0.13, `the busy container runs at ${busyNow.toFixed(3)} cores while runnable, within its 0.1 CPU quota`);

  // ---- the scrape itself. How long it takes is bench/'s business (a loaded machine stretches it); here: it succeeded
  // (up == 1 above, no lastError) and Prometheus recorded its duration and sample count for the target.
  const durationRows = await q('scrape_duration_seconds{job="podvisor"}');
  const duration = durationRows[0]?.value ?? Number.NaN;
  t.equal(durationRows.length, 1, `scrape_duration_seconds{job="podvisor"}: one series, for the one target (${duration.toFixed(3)} s)`);
  const maxDuration = (await q('max_over_time(scrape_duration_seconds{job="podvisor"}[5m])'))[0]?.value ?? Number.NaN;

  // ---- memory per container: every test container with its pod and namespace
  const memRows = await q('sum by (namespace, pod, container) (container_memory_working_set_bytes{image!="",container!=""})');
  t.same(keysIn(memRows, [nsA, nsB]), expected, 'working set by namespace/pod/container: the three test containers');
  t.ok(
    memRows.filter((s) => s.metric.namespace === nsA || s.metric.namespace === nsB).every((s) => s.value > 0),
    'with a working set > 0',
  );
  const ours = await q(`container_memory_working_set_bytes{namespace=~"${nsA}|${nsB}"}`);
  const podLevel = ours.filter((s) => s.metric.id === parentA);
  t.equal(podLevel.length, 1, 'the pod cgroup is there too');
  t.equal(podLevel[0]?.metric.pod, podA, 'with its pod');
  t.notOk(podLevel[0] !== undefined && 'container' in podLevel[0].metric, "and no container label (empty, not the exporter's)");
  t.equal(ours.filter((s) => s.metric.container === EXPORTER_POD.container).length, 0, 'no test series took container="podvisor"');
  for (const l of ['exported_namespace', 'exported_pod', 'exported_container']) {
    t.same(await q(`count({job="podvisor", ${l}=~".+"})`), [], `honor_labels: no ${l}`);
  }
  t.match((await q('podvisor_build_info'))[0]?.metric ?? {}, EXPORTER_POD, "the exporter's own metrics do carry its pod's labels");

  // ---- node and system cgroups do not inherit the exporter pod's labels
  const root = await q('container_memory_working_set_bytes{id="/"}');
  t.equal(root.length, 1, 'the root cgroup series exists');
  const rootLabels = root[0]?.metric ?? {};
  t.notOk(
    'namespace' in rootLabels || 'pod' in rootLabels || 'container' in rootLabels,
    `id="/" has no namespace/pod/container: ${JSON.stringify(rootLabels)}`,
  );
  t.match(rootLabels, { job: 'podvisor', node: NODE, metrics_path: '/metrics/cadvisor', service: 'podvisor', endpoint: 'http-metrics' });
  t.ok(
    ((await q('count(container_memory_working_set_bytes{job="podvisor", namespace=""})'))[0]?.value ?? 0) >= 1,
    'node/system cgroups are there without a namespace',
  );
  t.same(await q('count(container_memory_working_set_bytes{namespace="podvisor"})'), [], 'no container_memory_working_set_bytes{namespace="podvisor"}');
  t.same(await q(`count({__name__=~"container_.*", pod="${EXPORTER_POD.pod}"})`), [], "no container_* series with the exporter's pod");
  t.same(await q('count({__name__=~"container_.*", namespace="podvisor"})'), [], "no container_* series with the exporter's namespace");
  t.same(await q('count({__name__=~"container_.*", container="podvisor"})'), [], "no container_* series with the exporter's container");
  const cpuAll = (await q('count(container_cpu_usage_seconds_total{job="podvisor"})'))[0]?.value ?? 0;
  const cpuRelabeled = (await q(`count(container_cpu_usage_seconds_total{metrics_path="/metrics/cadvisor", node="${NODE}"})`))[0]?.value ?? 0;
  t.ok(cpuAll > 0 && cpuRelabeled === cpuAll, `every container_cpu_usage_seconds_total series (${cpuAll}) carries metrics_path and node`);

  // ---- metricRelabelings
  const dropRe = NODE_DROPPED.join('|');
  for (const f of NODE_DROPPED) {
    t.ok(new RegExp(`\\n${f}\\{[^\\n]*,pod="",namespace=""\\} `).test(raw), `the exporter does emit ${f} for node/system cgroups (pod="", namespace="")`);
  }
  t.same(
    await q(`count by (__name__) ({__name__=~"${dropRe}", job="podvisor", pod="", namespace=""})`),
    [],
    'the ;; rule: none of those families without pod and namespace',
  );
  const kept = (await q(`count by (__name__) ({__name__=~"${dropRe}", namespace="${nsA}"})`)).map((s) => s.metric.__name__ ?? '').sort();
  t.same(kept, [...NODE_DROPPED].sort(), "while every one of them is kept for the pod's containers");
  t.same(await q('container_blkio_device_usage_total{container!=""}'), [], 'container_blkio_device_usage_total only where container is empty');
  t.same(
    await q('count({__name__=~"container_(network_tcp_usage_total|network_udp_usage_total|tasks_state|cpu_load_average_10s)"})'),
    [],
    'rule 1 families absent',
  );

  // ---- kubernetes-mixin / kube-prometheus / prometheus-adapter expressions
  t.same(keysIn(await q(cpuRule), [nsA, nsB]), expected, 'the CPU recording-rule expression returns the test containers');
  for (const f of MEMORY_RULE_FAMILIES) {
    const rows = (await q(`${f}{${sel}, image!=""}`)).filter((s) => s.metric.namespace === nsA || s.metric.namespace === nsB);
    t.same(rows.map(key).sort(), expected, `the ${f} recording-rule expression returns the test containers`);
    t.ok(
      rows.every((s) => s.metric.id !== undefined && s.metric.image !== undefined && s.metric.name !== undefined),
      'keeping id, name, image',
    );
  }
  // CPUThrottlingHigh (cpuThrottlingPercent 25), cadvisorSelector pointed at podvisor.
  const periods = (selector: string): string =>
    `sum without (id, metrics_path, name, image, endpoint, job, node) (topk by (cluster, namespace, pod, container, instance) (1, increase(${selector}[5m])))`;
  const throttlingExpr = `${periods(`container_cpu_cfs_throttled_periods_total{container!="", ${sel}}`)} / on (cluster, namespace, pod, container, instance) group_left ${periods(`container_cpu_cfs_periods_total{${sel}}`)} > ( 25 / 100 )`;
  const throttling = (await q(throttlingExpr)).filter((s) => s.metric.namespace === nsA || s.metric.namespace === nsB);
  t.same(throttling.map(key), [`${nsA}/${podA}/app`], `CPUThrottlingHigh fires for the busy container only (ratio ${throttling[0]?.value.toFixed(2) ?? '-'})`);
  const adapterCpu = `sum by (namespace, pod, container) (irate(container_cpu_usage_seconds_total{namespace="${nsA}",container!="",pod!=""}[120s]))`;
  t.same(keysIn(await q(adapterCpu), [nsA]), expected.slice(0, 2), "prometheus-adapter's containerQuery (cpu)");
  const recorded = await poll(
    'the recorded series',
    async () => {
      const cpu = keysIn(await q('node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m'), [nsA, nsB]);
      const mem = keysIn(await q('node_namespace_pod_container:container_memory_working_set_bytes'), [nsA, nsB]);
      return cpu.length === 3 && mem.length === 3 ? { cpu, mem } : undefined;
    },
    { timeoutMs: 60_000, everyMs: 500 },
  );
  t.same(recorded, { cpu: expected, mem: expected }, 'the recording rules record the test containers');

  // ---- scrape hygiene
  const scraped = (await q('scrape_samples_scraped{job="podvisor"}'))[0]?.value ?? 0;
  const post = (await q('scrape_samples_post_metric_relabeling{job="podvisor"}'))[0]?.value ?? 0;
  const series = (await q('count({job="podvisor"})'))[0]?.value ?? 0;
  t.ok(post > 0 && post < scraped, `scrape_samples_post_metric_relabeling ${post} of ${scraped} scraped (${series} series of job="podvisor" in the head)`);
  const minUp = (await q('min_over_time(up{job="podvisor"}[5m])')).map((s) => s.value);
  t.same(minUp, [1], 'no failed scrape since the start', minUp[0] === 1 ? {} : { diagnosis: await diagnose() });
  // Wait for a self-scrape after every check above, so the counters cover all the podvisor scrapes seen.
  const checkedAt = Date.now() / 1000;
  await poll(
    'a self-scrape of Prometheus after the checks',
    async () => (((await q('timestamp(prometheus_target_scrapes_sample_duplicate_timestamp_total)'))[0]?.value ?? 0) > checkedAt ? true : undefined),
    { timeoutMs: 30_000, everyMs: 250 },
  );
  for (const m of [
    'prometheus_target_scrapes_sample_duplicate_timestamp_total',
    'prometheus_target_scrapes_sample_out_of_order_total',
    'prometheus_target_scrapes_sample_out_of_bounds_total',
    'prometheus_rule_evaluation_failures_total',
  ]) {
    const v = (await q(`sum(${m})`))[0]?.value;
    t.equal(v, 0, `${m} == 0`);
  }
  t.notMatch(prom.log(), /level=(warn|error)[^\n]*scrape_pool=podvisor/, "no scrape warnings for podvisor in Prometheus's log");
  t.comment(
    `scrape_duration_seconds ${duration.toFixed(3)} s (max ${maxDuration.toFixed(3)} s), ${series} series, ` +
      `${post}/${scraped} samples post metric relabeling, test took ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});
