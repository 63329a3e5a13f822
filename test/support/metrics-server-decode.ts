/**
 * What metrics-server makes of a /metrics/resource body: a port of its decoder and of its CPU rate, to check that
 * podvisor's body gives metrics-server what the kubelet's does. Written from kubernetes-sigs/metrics-server
 * `pkg/scraper/client/resource/decode.go` (decodeBatch, timeseriesMatchesName, parseContainerLabels,
 * checkContainerMetrics; read at 4436807e, the v0.6-era file that reads exactly the five names below, as §2.4 of
 * /work/shared/reference/resource-metrics.md says of v0.9.0) and `pkg/storage/types.go` (resourceUsage). Its rules, kept
 * here on purpose, quirks included:
 *
 * - the body is parsed as Prometheus text; any line it cannot parse fails the whole node (an error here);
 * - a series is one of the five names when its raw text (`name{labels}`) starts with the name followed by `{` or the
 *   end; everything else is skipped: `resource_scrape_error`, `pod_*`, swap;
 * - labels are found by searching the raw series text for `container="`, `pod="` and `namespace="` and reading to the
 *   next `"`: values are not unescaped, a missing label is not noticed (the Go slice arithmetic is kept);
 * - the sample's timestamp (ms), else the request time; the node's timestamp is the last node series parsed;
 * - CPU seconds × 1e9 truncated to an integer (nanocore-seconds), memory bytes truncated, start time × 1e9 ns;
 * - the node is dropped when no node series was seen, or its CPU or memory is 0;
 * - a container whose point is all zero is skipped; any other with CPU 0 or memory 0 drops its whole pod.
 *
 * Numbers are JS numbers: exact up to 2^53 (104 core-days of nanoseconds), enough for tests.
 */

export interface MetricsPoint {
  /** Nanoseconds since the epoch, 0 when none (Go's zero time is not the epoch, but no test needs that). */
  startTimeNs: number;
  /** Milliseconds since the epoch; undefined: never set (Go's zero time). */
  timestampMs: number | undefined;
  /** Cumulative CPU in nanocore-seconds. */
  cpuNs: number;
  memoryBytes: number;
}

export interface MetricsBatch {
  node: MetricsPoint | undefined;
  /** `namespace/pod` → container name → its point. */
  pods: Map<string, Map<string, MetricsPoint>>;
}

const NODE_CPU = 'node_cpu_usage_seconds_total';
const NODE_MEMORY = 'node_memory_working_set_bytes';
const CONTAINER_CPU = 'container_cpu_usage_seconds_total';
const CONTAINER_MEMORY = 'container_memory_working_set_bytes';
const CONTAINER_START = 'container_start_time_seconds';

/** One sample line of a text 0.0.4 body. */
export interface Series {
  /** The series as written: `name{labels}` (or `name`). */
  raw: string;
  name: string;
  /** Label values unescaped (metrics-server itself reads them raw: see decodeResourceBody). */
  labels: Record<string, string>;
  value: number;
  timestampMs: number | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Go float text as textparse reads it (strconv.ParseFloat, plus the exposition's Inf/NaN spellings). */
function parseGoFloat(s: string, line: string): number {
  if (/^[+-]?(?:inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s) && !/^[+-]?0[xX][0-9a-fA-F]+$/.test(s))
    throw new Error(`failed parsing metrics: bad value ${JSON.stringify(s)} in ${line}`);
  return Number(s);
}

/** The sample lines of a text 0.0.4 body, strictly: what Prometheus' textparse would reject, this rejects. */
export function parseText(body: string): Series[] {
  const out: Series[] = [];
  for (const line of body.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)/.exec(line);
      if (m !== null && !METRIC_NAME.test(m[2] ?? '')) throw new Error(`failed parsing metrics: bad ${m[1]} line: ${line}`);
      if (m?.[1] === 'TYPE' && !/^#\s+TYPE\s+\S+\s+(counter|gauge|histogram|summary|untyped)\s*$/.test(line))
        throw new Error(`failed parsing metrics: bad TYPE line: ${line}`);
      continue;
    }
    const name = METRIC_NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`failed parsing metrics: not a series: ${line}`);
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ') i++;
        if (line[i] === '}') break;
        const label = LABEL_NAME.exec(line.slice(i))?.[0];
        if (label === undefined) throw new Error(`failed parsing metrics: bad label name at column ${i}: ${line}`);
        i += label.length;
        if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`failed parsing metrics: expected =" at column ${i}: ${line}`);
        i += 2;
        let value = '';
        for (;;) {
          const ch = line[i];
          if (ch === undefined) throw new Error(`failed parsing metrics: unterminated label value: ${line}`);
          if (ch === '\\') {
            const next = line[i + 1];
            if (next !== '\\' && next !== '"' && next !== 'n') throw new Error(`failed parsing metrics: bad escape at column ${i}: ${line}`);
            value += next === 'n' ? '\n' : next;
            i += 2;
            continue;
          }
          i++;
          if (ch === '"') break;
          value += ch;
        }
        labels[label] = value;
        while (line[i] === ' ') i++;
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`failed parsing metrics: expected , or } at column ${i}: ${line}`);
      }
      i++;
    }
    const raw = line.slice(0, i);
    const rest = line.slice(i).trim().split(/\s+/);
    if (line[i] !== ' ' && line[i] !== '\t') throw new Error(`failed parsing metrics: no value: ${line}`);
    if (rest.length < 1 || rest.length > 2) throw new Error(`failed parsing metrics: expected a value and an optional timestamp: ${line}`);
    const value = parseGoFloat(rest[0] ?? '', line);
    let timestampMs: number | undefined;
    if (rest[1] !== undefined) {
      if (!/^-?\d+$/.test(rest[1])) throw new Error(`failed parsing metrics: bad timestamp ${JSON.stringify(rest[1])}: ${line}`);
      timestampMs = Number(rest[1]);
    }
    out.push({ raw, name, labels, value, timestampMs });
  }
  return out;
}

function matchesName(raw: string, name: string): boolean {
  return raw.startsWith(name) && (raw.length === name.length || raw[name.length] === '{');
}

/** Go's bytes.Index + slicing of parseContainerLabels, kept as is (a missing tag gives index -1 + its length). */
function labelAfter(labels: string, tag: string): string {
  const i = labels.indexOf(tag) + tag.length;
  const j = labels.slice(i).indexOf('"');
  if (j < 0) throw new Error(`metrics-server would panic: no closing quote after ${tag} in ${labels}`);
  return labels.slice(i, i + j);
}

function containerLabels(labels: string): { podKey: string; container: string } {
  const container = labelAfter(labels, 'container="');
  const pod = labelAfter(labels, 'pod="');
  const namespace = labelAfter(labels, 'namespace="');
  return { podKey: `${namespace}/${pod}`, container };
}

const empty = (): MetricsPoint => ({ startTimeNs: 0, timestampMs: undefined, cpuNs: 0, memoryBytes: 0 });

/** Go's uint64(float64): truncation (negative and NaN values are undefined behaviour there; 0 here). */
function toUint(v: number): number {
  return Number.isFinite(v) && v > 0 ? Math.trunc(v) : 0;
}

/** decodeBatch: what metrics-server keeps of one node's body, scraped at `requestTimeMs`. */
export function decodeResourceBody(body: string, requestTimeMs: number): MetricsBatch {
  const node = empty();
  let nodeSeen = false;
  const pods = new Map<string, Map<string, MetricsPoint>>();
  const point = (raw: string, name: string): MetricsPoint => {
    const { podKey, container } = containerLabels(raw.slice(name.length));
    let containers = pods.get(podKey);
    if (containers === undefined) {
      containers = new Map<string, MetricsPoint>();
      pods.set(podKey, containers);
    }
    let p = containers.get(container);
    if (p === undefined) containers.set(container, (p = empty()));
    return p;
  };
  for (const s of parseText(body)) {
    const ts = s.timestampMs ?? requestTimeMs;
    if (matchesName(s.raw, NODE_CPU)) {
      node.cpuNs = toUint(s.value * 1e9);
      node.timestampMs = ts;
      nodeSeen = true;
    } else if (matchesName(s.raw, NODE_MEMORY)) {
      node.memoryBytes = toUint(s.value);
      node.timestampMs = ts;
      nodeSeen = true;
    } else if (matchesName(s.raw, CONTAINER_CPU)) {
      const p = point(s.raw, CONTAINER_CPU);
      p.cpuNs = toUint(s.value * 1e9);
      p.timestampMs = ts;
    } else if (matchesName(s.raw, CONTAINER_MEMORY)) {
      const p = point(s.raw, CONTAINER_MEMORY);
      p.memoryBytes = toUint(s.value);
      p.timestampMs = ts;
    } else if (matchesName(s.raw, CONTAINER_START)) {
      // The start time does not set the point's timestamp.
      point(s.raw, CONTAINER_START).startTimeNs = Math.trunc(s.value * 1e9);
    }
  }
  const batch: MetricsBatch = { node: undefined, pods: new Map() };
  if (nodeSeen && node.timestampMs !== undefined && node.cpuNs !== 0 && node.memoryBytes !== 0) batch.node = node;
  for (const [podKey, containers] of pods) {
    if (containers.size === 0) continue;
    const kept = checkContainers(containers);
    if (kept !== undefined) batch.pods.set(podKey, kept);
  }
  return batch;
}

/** checkContainerMetrics: all-zero points are skipped; one with CPU or memory 0 drops the pod (undefined). */
function checkContainers(containers: Map<string, MetricsPoint>): Map<string, MetricsPoint> | undefined {
  const out = new Map<string, MetricsPoint>();
  for (const [name, p] of containers) {
    if (p.startTimeNs === 0 && p.timestampMs === undefined && p.cpuNs === 0 && p.memoryBytes === 0) continue;
    if (p.cpuNs === 0 || p.memoryBytes === 0) return undefined;
    out.set(name, p);
  }
  return out;
}

/** resourceUsage: CPU in nanocores over the window between two points, and the newer memory; throws as it errors. */
export function resourceUsage(last: MetricsPoint, prev: MetricsPoint): { nanoCores: number; memoryBytes: number; windowMs: number } {
  if (last.startTimeNs < prev.startTimeNs) throw new Error('unexpected decrease in startTime of node/container');
  if (last.cpuNs < prev.cpuNs) throw new Error('unexpected decrease in cumulative CPU usage value');
  if (last.timestampMs === undefined || prev.timestampMs === undefined) throw new Error('a point without a timestamp');
  const windowMs = last.timestampMs - prev.timestampMs;
  return { nanoCores: Math.trunc((last.cpuNs - prev.cpuNs) / (windowMs / 1000)), memoryBytes: last.memoryBytes, windowMs };
}
