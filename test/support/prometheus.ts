/**
 * A real Prometheus for end-to-end tests: the ServiceMonitor in deploy/ translated into a scrape config the way
 * prometheus-operator would generate it (camelCase operator fields -> Prometheus snake_case), the `prometheus` binary
 * started on a free loopback port with a temp config and TSDB, and its HTTP API read through small type guards.
 *
 *   const sm = scrapeConfigFromServiceMonitor(YAML.parse(text), { interval: '2s', target: '127.0.0.1:1234', ... })
 *   const prom = await startPrometheus({ scrape_configs: [sm.scrapeConfig] })
 *   t.teardown(() => prom.stop())
 *   const rows = await query(prom.url, 'up')
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { freePort } from './exporter.js';
import { poll } from './poll.js';

// ---------------------------------------------------------------- type guards

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isStringRecord(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

// ---------------------------------------------------------------- durations

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** Seconds in a Prometheus duration (`500ms`, `10s`, `1m30s`). */
export function durationSeconds(d: string): number {
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(d)) throw new Error(`not a Prometheus duration: ${JSON.stringify(d)}`);
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? Number.NaN);
  return total;
}

// ---------------------------------------------------------------- ServiceMonitor -> scrape config

/** prometheus-operator RelabelConfig field -> Prometheus relabel_config field. */
const RELABEL_FIELDS: Record<string, string> = {
  sourceLabels: 'source_labels',
  separator: 'separator',
  targetLabel: 'target_label',
  regex: 'regex',
  modulus: 'modulus',
  replacement: 'replacement',
  action: 'action',
};

/** One operator relabeling (`relabelings` / `metricRelabelings` entry) as a Prometheus relabel config. */
export function relabelConfig(r: unknown, where: string): Record<string, unknown> {
  if (!isRecord(r)) throw new Error(`${where}: not an object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    const to = RELABEL_FIELDS[k];
    if (to === undefined) throw new Error(`${where}: field ${k} is not translated by test/support/prometheus.ts`);
    if (k === 'sourceLabels' && !isStringArray(v)) throw new Error(`${where}.sourceLabels: not a list of strings`);
    // The operator accepts `Replace`/`replace` etc.; Prometheus wants lower case.
    out[to] = k === 'action' && typeof v === 'string' ? v.toLowerCase() : v;
  }
  return out;
}

export interface ServiceMonitorScrape {
  /** The `job` label: the value of the Service's `jobLabel` label, which the selector requires. */
  job: string;
  /** The endpoint's port name: prometheus-operator's `endpoint` target label. */
  endpoint: string;
  /** The endpoint's path (`metrics_path`, and the `metrics_path` label when relabeled from `__metrics_path__`). */
  metricsPath: string;
  /** The ServiceMonitor's own interval and timeout, in seconds (before the test's shorter interval). */
  smIntervalSeconds: number;
  smTimeoutSeconds: number;
  /** Timeout actually used: min(ServiceMonitor's scrapeTimeout, the test's interval). */
  timeoutSeconds: number;
  scrapeConfig: Record<string, unknown>;
}

/** Endpoint fields the translation understands; any other fails loudly, so the test never silently diverges. */
const ENDPOINT_FIELDS = new Set([
  'port',
  'path',
  'interval',
  'scrapeTimeout',
  'honorLabels',
  'honorTimestamps',
  'scheme',
  'params',
  'relabelings',
  'metricRelabelings',
]);

/**
 * The scrape config prometheus-operator generates for the (single) endpoint of `sm`, for one static target.
 * `interval` replaces the ServiceMonitor's interval (tests want a short one); scrape_timeout is the
 * ServiceMonitor's, capped at that interval (Prometheus refuses a timeout longer than the interval).
 * `targetLabels` are the labels the operator's own relabelings would put on a Pod target (namespace, pod,
 * container, service, endpoint) plus any `__meta_kubernetes_*` labels Kubernetes discovery would provide: static
 * labels starting with `__` are accepted by static_configs and, like discovered meta labels, are visible to
 * relabel_configs and dropped after it.
 */
export function scrapeConfigFromServiceMonitor(
  sm: unknown,
  opts: { interval: string; target: string; targetLabels: Record<string, string> },
): ServiceMonitorScrape {
  if (!isRecord(sm) || sm.kind !== 'ServiceMonitor' || !isRecord(sm.spec)) throw new Error('not a ServiceMonitor with a spec');
  const spec = sm.spec;
  const jobLabel = spec.jobLabel;
  if (typeof jobLabel !== 'string') throw new Error('ServiceMonitor: spec.jobLabel missing');
  const matchLabels = isRecord(spec.selector) ? spec.selector.matchLabels : undefined;
  const job = isStringRecord(matchLabels) ? matchLabels[jobLabel] : undefined;
  if (job === undefined) throw new Error(`ServiceMonitor: spec.selector.matchLabels has no ${jobLabel}, so the job name is unknown`);
  const endpoints = spec.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length !== 1) throw new Error('ServiceMonitor: expected exactly one endpoint');
  const ep: unknown = endpoints[0];
  if (!isRecord(ep)) throw new Error('ServiceMonitor: endpoint is not an object');
  for (const k of Object.keys(ep))
    if (!ENDPOINT_FIELDS.has(k)) throw new Error(`ServiceMonitor endpoint field ${k} is not translated by test/support/prometheus.ts`);
  if (typeof ep.port !== 'string') throw new Error('ServiceMonitor endpoint: port (name) missing');
  const smIntervalSeconds = durationSeconds(typeof ep.interval === 'string' ? ep.interval : '30s');
  const smTimeoutSeconds = durationSeconds(typeof ep.scrapeTimeout === 'string' ? ep.scrapeTimeout : '10s');
  const intervalSeconds = durationSeconds(opts.interval);
  const timeoutSeconds = Math.min(smTimeoutSeconds, intervalSeconds);
  const metricsPath = typeof ep.path === 'string' ? ep.path : '/metrics';
  const relabelings = Array.isArray(ep.relabelings) ? ep.relabelings : [];
  const metricRelabelings = Array.isArray(ep.metricRelabelings) ? ep.metricRelabelings : [];
  const scrapeConfig: Record<string, unknown> = {
    job_name: job,
    scrape_interval: opts.interval,
    scrape_timeout: Number.isInteger(timeoutSeconds) ? `${timeoutSeconds}s` : `${Math.round(timeoutSeconds * 1000)}ms`,
    metrics_path: metricsPath,
    scheme: typeof ep.scheme === 'string' ? ep.scheme : 'http',
    honor_labels: ep.honorLabels === true,
    ...(typeof ep.honorTimestamps === 'boolean' ? { honor_timestamps: ep.honorTimestamps } : {}),
    ...(isRecord(ep.params) ? { params: ep.params } : {}),
    static_configs: [{ targets: [opts.target], labels: { ...opts.targetLabels, endpoint: ep.port } }],
    relabel_configs: relabelings.map((r: unknown, i) => relabelConfig(r, `relabelings[${i}]`)),
    metric_relabel_configs: metricRelabelings.map((r: unknown, i) => relabelConfig(r, `metricRelabelings[${i}]`)),
  };
  return { job, endpoint: ep.port, metricsPath, smIntervalSeconds, smTimeoutSeconds, timeoutSeconds, scrapeConfig };
}

// ---------------------------------------------------------------- the process

export interface RunningPrometheus {
  url: string;
  port: number;
  dir: string;
  /** The last 64 KiB of its log (stderr). */
  log(): string;
  /** SIGTERM, SIGKILL after 10 s, then remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Writes `config` (plus `rules` as rules.yml, referenced from rule_files) to a temp dir, checks it with
 * `promtool check config`, starts `prometheus` on a free loopback port and waits for /-/ready.
 * `config` may be a function of the chosen port (for a self-scrape job).
 */
export async function startPrometheus(
  config: Record<string, unknown> | ((port: number) => Record<string, unknown>),
  rules?: Record<string, unknown>,
): Promise<RunningPrometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-prom-'));
  const cleanupDir = (): void => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const port = await freePort();
    const cfg = { ...(typeof config === 'function' ? config(port) : config) };
    if (rules !== undefined) {
      fs.writeFileSync(path.join(dir, 'rules.yml'), YAML.stringify(rules));
      cfg.rule_files = [path.join(dir, 'rules.yml')];
    }
    const file = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(file, YAML.stringify(cfg));
    const check = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile('promtool', ['check', 'config', file], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, out: `${stdout}${stderr}`.trim() || (err?.message ?? '') }),
      );
    });
    if (check.code !== 0) {
      throw new Error(
        `promtool check config rejected the generated config: ${check.out
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .join(' | ')}\n${YAML.stringify(cfg)}`,
      );
    }
    const proc = spawn(
      'prometheus',
      [`--config.file=${file}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=info'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    proc.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-65_536);
    });
    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      proc.on('exit', () => resolve());
      proc.on('error', (e) => {
        spawnError = e;
        resolve();
      });
    });
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      if (spawnError === undefined && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      cleanupDir();
    };
    const url = `http://127.0.0.1:${port}`;
    const lastLines = (): string => log.trim().split('\n').slice(-3).join(' | ');
    try {
      await poll('prometheus to be ready (/-/ready 200)', async () => ((await fetch(`${url}/-/ready`)).status === 200 ? true : undefined), {
        timeoutMs: 60_000,
        everyMs: 100,
        describe: lastLines,
        giveUp: () =>
          spawnError !== undefined || proc.exitCode !== null || proc.signalCode !== null
            ? `prometheus exited during start-up: ${spawnError?.message ?? lastLines()}`
            : undefined,
      });
    } catch (err) {
      await stop();
      throw err;
    }
    return { url, port, dir, log: () => log, stop };
  } catch (err) {
    cleanupDir();
    throw err;
  }
}

// ---------------------------------------------------------------- the HTTP API

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

function isVectorSample(v: unknown): v is { metric: Record<string, string>; value: [number, string] } {
  return (
    isRecord(v) &&
    isStringRecord(v.metric) &&
    Array.isArray(v.value) &&
    v.value.length === 2 &&
    typeof v.value[0] === 'number' &&
    typeof v.value[1] === 'string'
  );
}

async function apiData(url: string): Promise<unknown> {
  const r = await fetch(url);
  const body: unknown = await r.json().catch(() => undefined);
  if (!isRecord(body)) throw new Error(`${url}: HTTP ${r.status}, not a JSON object`);
  if (body.status !== 'success') throw new Error(`${url}: ${String(body.errorType)}: ${String(body.error)}`);
  return body.data;
}

/** An instant query; rejects on a query error or a result that is not a vector. */
export async function query(promUrl: string, expr: string): Promise<Sample[]> {
  const data = await apiData(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (!isRecord(data) || data.resultType !== 'vector' || !Array.isArray(data.result)) throw new Error(`${expr}: not a vector result`);
  return data.result.map((s: unknown) => {
    if (!isVectorSample(s)) throw new Error(`${expr}: malformed sample ${JSON.stringify(s)}`);
    return { metric: s.metric, value: Number(s.value[1]) };
  });
}

export interface ActiveTarget {
  scrapePool: string;
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrapeDuration: number;
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
}

function isActiveTarget(v: unknown): v is ActiveTarget {
  return (
    isRecord(v) &&
    typeof v.scrapePool === 'string' &&
    typeof v.scrapeUrl === 'string' &&
    typeof v.health === 'string' &&
    typeof v.lastError === 'string' &&
    typeof v.lastScrapeDuration === 'number' &&
    isStringRecord(v.labels) &&
    isStringRecord(v.discoveredLabels)
  );
}

export async function activeTargets(promUrl: string): Promise<ActiveTarget[]> {
  const data = await apiData(`${promUrl}/api/v1/targets?state=active`);
  if (!isRecord(data) || !Array.isArray(data.activeTargets)) throw new Error('/api/v1/targets: no activeTargets');
  return data.activeTargets.map((x: unknown) => {
    if (!isActiveTarget(x)) throw new Error(`/api/v1/targets: malformed target ${JSON.stringify(x)}`);
    return x;
  });
}
