/**
 * Flags with environment-variable twins: `--listen-address` / `PODVISOR_LISTEN_ADDRESS`.
 * A flag beats its variable, which beats the default.
 *
 * FLAGS is the single source of truth: each entry declares its name, its type (which parses a value, bounds it and
 * says what is allowed), its default (written as on the command line, and parsed like any given value) and its help.
 * parseArgs and `--help` both read it; a bad value is one line: `<--flag or PODVISOR_FLAG>: "<value>" is not <allowed>`.
 */
import { ConfigError } from './errors.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { CADVISOR_ONLY_KINDS, METRIC_KINDS, type MetricKind } from './model/kinds.js';
import type { RuntimeConfig } from './runtime/index.js';
import type { SecurityOptions } from './http/security.js';
import type { AcceleratorOptions } from './gather/setup.js';

export interface Config {
  listenHost: string;
  listenPort: number;
  rootfs: string;
  rawCgroupPrefixAllowlist: string[];
  /** --runtime-containers-only: `/`, the runtimes' containers, their pod-level cgroups and the allowlisted prefixes. */
  runtimeContainersOnly: boolean;
  /** The metric kinds on, from --enable-metrics / --disable-metrics with cAdvisor's semantics. */
  kinds: MetricKind[];
  minGatherIntervalMs: number;
  /** --max-result-age */
  maxResultAgeMs: number;
  /** --gather-ahead */
  gatherAhead: boolean;
  defaultScrapeTimeoutMs: number;
  scrapeTimeoutOffsetMs: number;
  gatherTimeoutMs: number;
  machineInfoIntervalMs: number;
  gatherInWorker: boolean;
  /** --gather-threads: 1, or 2 with a read-ahead thread. */
  gatherThreads: 1 | 2;
  logLevel: LogLevel;
  runtimes: RuntimeConfig;
  /** Undefined when --no-disk-usage. */
  disk?: { concurrency: number; intervalMs: number; cpuBudget: number };
  /** TLS, the web config file and Kubernetes authentication/authorization (all off by default: plain HTTP). */
  security: SecurityOptions;
  /** The `accelerator` kind's sources (used only when the kind is on). */
  accelerator: AcceleratorOptions;
}

// ---------------------------------------------------------------------------------------------------------------
// Types of flag values

/** How a flag's text (as given on the command line or in the environment) becomes a value of type T. */
export interface FlagType<T> {
  /** `--name=<name>` in --help. */
  readonly name: string;
  /** What is allowed, as a noun phrase: `"<value>" is not <allowed>`, and `allowed: <allowed>` in --help. */
  readonly allowed: string;
  /** False for a type that takes any text (a string, a list without an item check): --help then shows no `allowed:`. */
  readonly bounded: boolean;
  /** The value, or undefined when the text is not allowed. */
  parse(text: string): T | undefined;
}

/** A lower bound: exclusive (`above`) or inclusive (`atLeast`). */
type Lower = { readonly above: number } | { readonly atLeast: number };
/** An upper bound: exclusive (`below`) or inclusive (`atMost`). */
type Upper = { readonly below: number } | { readonly atMost: number };

function fitsLower(n: number, b: Lower): boolean {
  return 'above' in b ? n > b.above : n >= b.atLeast;
}
function fitsUpper(n: number, b: Upper): boolean {
  return 'below' in b ? n < b.below : n <= b.atMost;
}
function lowerText(b: Lower, show: (n: number) => string = String): string {
  return 'above' in b ? `above ${show(b.above)}` : `at least ${show(b.atLeast)}`;
}
function upperText(b: Upper): string {
  return 'below' in b ? `below ${b.below}` : `at most ${b.atMost}`;
}

/** Any text, taken as given. */
function text(): FlagType<string> {
  return { name: 'string', allowed: 'any text', bounded: false, parse: (s) => s };
}

const TRUE: readonly string[] = ['true', '1', 'yes', 'on'];
const FALSE: readonly string[] = ['false', '0', 'no', 'off'];

/** `true`/`false` (or 1/0, yes/no, on/off). On the command line `--name` alone is true and `--no-name` false. */
function bool(): FlagType<boolean> {
  return {
    name: 'bool',
    allowed: 'true or false (or 1/0, yes/no, on/off)',
    bounded: true,
    parse(s) {
      const v = s.trim().toLowerCase();
      return TRUE.includes(v) ? true : FALSE.includes(v) ? false : undefined;
    },
  };
}

/** A whole number from min to max, both included. */
function integer(min: number, max: number): FlagType<number> {
  return {
    name: 'integer',
    allowed: `a whole number from ${min} to ${max}`,
    bounded: true,
    parse(s) {
      if (!/^-?\d+$/.test(s.trim())) return undefined;
      const n = Number(s);
      return n >= min && n <= max ? n : undefined;
    },
  };
}

/** A decimal number within the bounds. */
function decimal(lower: Lower, upper: Upper): FlagType<number> {
  return {
    name: 'number',
    allowed: `a number ${lowerText(lower)} and ${upperText(upper)}`,
    bounded: true,
    parse(s) {
      if (!/^-?(?:\d+(?:\.\d*)?|\.\d+)$/.test(s.trim())) return undefined;
      const n = Number(s);
      return Number.isFinite(n) && fitsLower(n, lower) && fitsUpper(n, upper) ? n : undefined;
    },
  };
}

const DURATION_EXAMPLES = 'such as 500ms, 10s or 5m';

/** Milliseconds of `90`, `500ms`, `10s`, `1.5m`, `1h` (a bare number is seconds), or undefined. */
function durationMs(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (m === null) return undefined;
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  const ms = Math.round(Number(m[1]) * factor);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The longest duration any flag takes: every duration ends up in a timer or a deadline, and Node's timers fire at once
 * past 2^31-1 ms (24.8 days). A day is far beyond any sane value of these flags.
 */
const MAX_DURATION_MS = 24 * 3_600_000;

/** A duration, in milliseconds, within the lower bound (the syntax has no negative durations) and at most 24h. */
function duration(lower: Lower): FlagType<number> {
  const anyDuration = 'atLeast' in lower && lower.atLeast <= 0;
  const range = anyDuration ? 'of at most 24h' : `${lowerText(lower, (ms) => (ms === 0 ? '0' : `${ms}ms`))} and at most 24h`;
  return {
    name: 'duration',
    allowed: `a duration ${range}, ${DURATION_EXAMPLES}`,
    bounded: true,
    parse(s) {
      const ms = durationMs(s);
      return ms !== undefined && fitsLower(ms, lower) && ms <= MAX_DURATION_MS ? ms : undefined;
    },
  };
}

/** Comma-separated, items trimmed, empty items dropped; every item must pass `item` when given. */
function list(item?: { readonly each: string; readonly test: (item: string) => boolean }): FlagType<string[]> {
  return {
    name: 'list',
    allowed: item === undefined ? 'a comma-separated list' : `a comma-separated list of ${item.each}`,
    bounded: item !== undefined,
    parse(s) {
      const items = s
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
      return item === undefined || items.every(item.test) ? items : undefined;
    },
  };
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces, 0.0.0.0). */
function address(): FlagType<{ host: string; port: number }> {
  return {
    name: 'address',
    allowed: 'host:port, [v6]:port or :port, with a port from 0 to 65535',
    bounded: true,
    parse(s) {
      const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s.trim());
      if (m === null) return undefined;
      const port = Number(m[3]);
      if (port > 65535) return undefined;
      const host = m[1] ?? m[2] ?? '';
      return { host: host === '' ? '0.0.0.0' : host, port };
    },
  };
}

/** One of the given words, exactly. */
function oneOf<const V extends string>(values: readonly V[]): FlagType<V> {
  return {
    name: 'enum',
    allowed: `one of ${values.join(', ')}`,
    bounded: true,
    parse: (s) => values.find((v) => v === s.trim()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Metric kinds

function isKind(k: string): k is MetricKind {
  return METRIC_KINDS.some((m) => m === k);
}
function isCadvisorOnlyKind(k: string): boolean {
  return CADVISOR_ONLY_KINDS.some((m) => m === k);
}

/** The default of --disable-metrics: every kind outside the kubelet's set. */
const DEFAULT_DISABLED: readonly MetricKind[] = ['percpu', 'memory_numa', 'cpuset', 'hugetlb', 'tcp', 'udp', 'sched'];

/**
 * cAdvisor's semantics: a non-empty --enable-metrics is the set; otherwise every kind not in --disable-metrics (which
 * replaces the default ignore list rather than adding to it).
 */
export function resolveKinds(enable: readonly string[], disable: readonly string[]): MetricKind[] {
  if (enable.length > 0) return METRIC_KINDS.filter((k) => enable.includes(k));
  return METRIC_KINDS.filter((k) => !disable.includes(k));
}

// ---------------------------------------------------------------------------------------------------------------
// The table

export interface FlagDef<T> {
  /** `--<flag>`; its environment twin is envName(flag). */
  readonly flag: string;
  readonly type: FlagType<T>;
  /** Written as on the command line; parsed by `type` like any given value. */
  readonly default: string;
  readonly help: string;
}

/** Keeps each entry's literal flag name and value type (the `const` type parameter) for `Values` below. */
function table<const T extends readonly FlagDef<unknown>[]>(entries: T): T {
  return entries;
}

export const FLAGS = table([
  {
    flag: 'listen-address',
    type: address(),
    default: '0.0.0.0:8080',
    help: 'Address to serve /metrics, /metrics/cadvisor, /healthz and /readyz on (all interfaces by default so Prometheus can reach it).',
  },
  { flag: 'rootfs', type: text(), default: '/', help: 'Root of the host filesystem; /proc and /sys are read under it (use /rootfs in a DaemonSet).' },
  {
    flag: 'raw-cgroup-prefix-allowlist',
    type: list({ each: 'cgroup paths, each starting with / (such as /kubepods)', test: (p) => p.startsWith('/') }),
    default: '',
    help: 'Cgroup path prefixes to report (empty: all). The root cgroup / is always reported.',
  },
  {
    flag: 'runtime-containers-only',
    type: bool(),
    default: 'false',
    help: "Report only the root cgroup /, the containers a runtime (Docker, containerd, CRI-O) knows, their pod-level cgroups, and the cgroups under --raw-cgroup-prefix-allowlist; nothing else (cAdvisor's --docker_only, for every runtime).",
  },
  {
    flag: 'enable-metrics',
    type: list({
      each: `metric kinds (${METRIC_KINDS.join(', ')}; cAdvisor's ${CADVISOR_ONLY_KINDS.join(', ')} are not exported by podvisor)`,
      test: isKind,
    }),
    default: '',
    help: "Metric kinds to export, replacing the default set (cAdvisor's --enable_metrics). Empty: every kind except those in --disable-metrics.",
  },
  {
    flag: 'disable-metrics',
    type: list({ each: `metric kinds (${[...METRIC_KINDS, ...CADVISOR_ONLY_KINDS].join(', ')})`, test: (k) => isKind(k) || isCadvisorOnlyKind(k) }),
    default: DEFAULT_DISABLED.join(','),
    help: "Metric kinds not to export when --enable-metrics is empty; replaces this default list, as cAdvisor's --disable_metrics does. The default leaves the kubelet's set (cpu, memory, diskIO, disk, network, process, oom_event, pressure) and accelerator (GPU metrics, on only where NVML is found). cAdvisor's other kinds (advtcp, app, cpuLoad, cpu_topology, perf_event, referenced_memory, resctrl) are accepted here and never exported.",
  },
  {
    flag: 'min-gather-interval',
    type: duration({ atLeast: 0 }),
    default: '0s',
    help: 'Reuse a gather younger than this for new scrapes (0: every scrape that finds no gather in flight starts one).',
  },
  {
    flag: 'max-result-age',
    type: duration({ atLeast: 0 }),
    default: '90s',
    help: "When a scrape's gather cannot finish by its deadline, answer with the newest result if it is at most this old (0: never; then a 503). The default covers a 1m scrape interval plus its 10s timeout, so a gather slower than the timeout still answers every scrape, with data one interval old, inside Prometheus' 5m staleness window.",
  },
  {
    flag: 'gather-ahead',
    type: bool(),
    default: 'true',
    help: 'Learn when each scraper comes back (Prometheus scrapes at a fixed interval and offset) and gather just before, so its scrape answers at once from data under a second old. Other scrapes gather as usual.',
  },
  {
    flag: 'default-scrape-timeout',
    type: duration({ above: 0 }),
    default: '10s',
    help: 'Scrape deadline when the request carries no X-Prometheus-Scrape-Timeout-Seconds header.',
  },
  {
    flag: 'scrape-timeout-offset',
    type: duration({ atLeast: 0 }),
    default: '500ms',
    help: 'Answer this long before the scraper\'s deadline, so a late gather is a clear 503 and not a "context deadline exceeded".',
  },
  {
    flag: 'gather-timeout',
    type: duration({ above: 0 }),
    default: '60s',
    help: 'Abandon (and restart the worker of) a gather that runs longer than this.',
  },
  { flag: 'machine-info-interval', type: duration({ above: 0 }), default: '5m', help: 'How often machine_* facts (cores, memory) are re-read.' },
  {
    flag: 'gather-in-worker',
    type: bool(),
    default: 'false',
    help: 'Read cgroup and /proc files on a worker thread (a second V8 isolate: ~50 MiB more RSS at 200 containers) instead of on the HTTP thread in 10 ms slices.',
  },
  {
    flag: 'gather-threads',
    type: integer(1, 2),
    default: '1',
    help: "Threads reading cgroup and /proc files in a gather: 1, or 2 (a second thread reads ahead the cgroups that took 70% of the last gather's reads: gather ~1/3 faster at 200 containers when a second core is free, but 20-40 MiB more RSS, and no gain under a CPU limit of one core).",
  },
  { flag: 'log-level', type: oneOf(LOG_LEVELS), default: 'info', help: 'The lowest level of log lines written to stderr.' },
  {
    flag: 'nvml-library',
    type: text(),
    default: '',
    help: "NVIDIA's NVML library for the accelerator kind (GPU metrics). Empty: libnvidia-ml.so.1 is looked for under --rootfs in the usual host and GPU Operator driver paths; not found, the kind is off with one info line. A path given here that cannot be loaded is a startup error.",
  },
  {
    flag: 'accelerator-interval',
    type: duration({ above: 0 }),
    default: '10s',
    help: 'How often NVML is polled for the accelerator kind, in the background (a scrape reads the last poll; cAdvisor averaged the last 10 s).',
  },
  {
    flag: 'accelerator-timeout',
    type: duration({ above: 0 }),
    default: '5s',
    help: 'Timeout of each NVML call. A call past it marks the accelerator collector down (no GPU series, podvisor_accelerator_up{source="nvml"} 0) until it returns; scrapes and /healthz never wait on it.',
  },
  {
    flag: 'pod-resources-socket',
    type: text(),
    default: '/var/lib/kubelet/pod-resources/kubelet.sock',
    help: "The kubelet's PodResources API socket: which container each GPU (or MIG device, or time-slicing replica) is allocated to. Empty turns it off; a socket that does not exist is skipped without an error.",
  },
  {
    flag: 'pod-resources-interval',
    type: duration({ above: 0 }),
    default: '10s',
    help: "How often the kubelet's PodResources API is asked (List), in the background; the kubelet rate-limits it.",
  },
  {
    flag: 'pod-resources-timeout',
    type: duration({ above: 0 }),
    default: '5s',
    help: "Timeout of each call to the kubelet's PodResources API.",
  },
  {
    flag: 'docker-endpoint',
    type: text(),
    default: 'unix:///var/run/docker.sock',
    help: 'Docker Engine API endpoint (unix:///path or tcp://host:port); empty turns the Docker factory off.',
  },
  {
    flag: 'containerd-address',
    type: text(),
    default: '/run/containerd/containerd.sock',
    help: 'containerd socket; empty turns the containerd factory off.',
  },
  {
    flag: 'containerd-namespaces',
    type: list(),
    default: 'k8s.io,moby',
    help: 'containerd namespaces whose containers are looked up (k8s.io: Kubernetes CRI; moby: Docker with the containerd store).',
  },
  {
    flag: 'crio-endpoint',
    type: text(),
    default: '/var/run/crio/crio.sock',
    help: 'CRI-O socket (its HTTP inspect API); empty turns the CRI-O factory off.',
  },
  {
    flag: 'runtime-timeout',
    type: duration({ above: 0 }),
    default: '2s',
    help: 'Timeout of every runtime call. Runtime calls never sit on the scrape path: labels come from a cache.',
  },
  {
    flag: 'runtime-startup-grace',
    type: duration({ atLeast: 0 }),
    default: '10s',
    help: "At startup, /readyz and the first scrapes wait for each runtime's first container list; a runtime that gives no answer for this long is given up on (its containers are served without labels until it registers). A runtime whose socket does not exist is not waited for.",
  },
  {
    flag: 'label-hold',
    type: duration({ atLeast: 0 }),
    default: '10s',
    help: 'A new container whose runtime has not answered its lookup yet is left out of scrapes for at most this long, rather than exposed without labels; past it, it is exposed with empty labels and counted in podvisor_container_label_hold_expired_total.',
  },
  {
    flag: 'store-container-labels',
    type: bool(),
    default: 'false',
    help: 'Export every runtime label as container_label_<key> on every series (the union over all containers: can be large).',
  },
  {
    flag: 'whitelisted-container-labels',
    type: list(),
    default: '',
    help: 'Runtime labels to export as container_label_<key> when --store-container-labels is off.',
  },
  {
    flag: 'disk-usage',
    type: bool(),
    default: 'true',
    help: "Measure containers' writable layers (container_fs_usage_bytes) in the background; never on the scrape path.",
  },
  { flag: 'disk-walk-concurrency', type: integer(1, 64), default: '2', help: 'Disk usage measurements running at once, node-wide.' },
  {
    flag: 'disk-usage-interval',
    type: duration({ above: 0 }),
    default: '1m',
    help: "How often each container's disk usage is re-measured (with jitter; slow or failing ones back off up to 20x).",
  },
  {
    flag: 'disk-walk-cpu-percent',
    type: decimal({ above: 0 }, { atMost: 100 }),
    default: '0.5',
    help: 'Re-measurements of disk usage take at most this percentage of one core on average (first measurements are never held back); on nodes with millions of files this, not the interval, sets the pace.',
  },
  { flag: 'env-metadata-whitelist', type: list(), default: '', help: 'Environment variable name prefixes to export as container_env_<key>.' },
  {
    flag: 'web.config.file',
    type: text(),
    default: '',
    help: "Prometheus exporter-toolkit web configuration (the file node_exporter's --web.config.file takes): tls_server_config, http_server_config.headers, basic_auth_users, rate_limit. Certificates, keys, CAs, users and headers are picked up on change without a restart. Empty: none.",
  },
  {
    flag: 'tls',
    type: oneOf(['auto', 'on', 'off']),
    default: 'auto',
    help: 'Serve HTTPS. auto: when the web config has tls_server_config, or when --authentication=kubernetes (bearer tokens never cross the network in clear text); on: always; off: never (a warning with token authentication). Without a configured certificate a self-signed one is generated at start, as the kubelet does.',
  },
  {
    flag: 'authentication',
    type: oneOf(['none', 'kubernetes']),
    default: 'none',
    help: "kubernetes: every request except /healthz and /readyz needs a bearer token that the API server accepts (TokenReview), or a client certificate verified against the web config's client_ca_file (CN is the user, O the groups). Answers 401 otherwise.",
  },
  {
    flag: 'authorization',
    type: oneOf(['none', 'kubernetes']),
    default: 'none',
    help: 'kubernetes: each authenticated request is checked with a SubjectAccessReview as the kubelet checks its own: resource nodes, name --node-name, subresource metrics for /metrics*, stats for /stats*, proxy otherwise, verb from the method. So the RBAC that lets Prometheus and metrics-server read the kubelet (get nodes/metrics) works unchanged. Answers 403 when denied. Needs --authentication=kubernetes.',
  },
  {
    flag: 'auth-token-audiences',
    type: list(),
    default: '',
    help: "Audiences a bearer token must be valid for (TokenReview spec.audiences; one must come back in status.audiences). Empty: the API server's own audience.",
  },
  {
    flag: 'node-name',
    type: text(),
    default: '',
    help: 'The Kubernetes node this agent runs on: the name in SubjectAccessReviews. Set it from the downward API (spec.nodeName); empty: the host name.',
  },
  {
    flag: 'kubeconfig',
    type: text(),
    default: '',
    help: "kubeconfig for the API server that reviews tokens (token, token file or client certificate users). Empty: in-cluster, from the pod's ServiceAccount (its token is re-read as it rotates).",
  },
  {
    flag: 'kube-api-timeout',
    type: duration({ above: 0 }),
    default: '3s',
    help: 'Timeout of each TokenReview and SubjectAccessReview. A request whose review fails or times out is refused (401 or 403); /healthz never waits for the API server.',
  },
  {
    flag: 'authentication-token-webhook-cache-ttl',
    type: duration({ atLeast: 0 }),
    default: '2m',
    help: "How long a TokenReview's answer (accepted or refused) is reused, as the kubelet's flag of the same name. Errors are never cached.",
  },
  {
    flag: 'authorization-webhook-cache-authorized-ttl',
    type: duration({ atLeast: 0 }),
    default: '5m',
    help: "How long an allowed SubjectAccessReview is reused (the kubelet's default).",
  },
  {
    flag: 'authorization-webhook-cache-unauthorized-ttl',
    type: duration({ atLeast: 0 }),
    default: '30s',
    help: "How long a denied SubjectAccessReview is reused (the kubelet's default).",
  },
]);

type Entry = (typeof FLAGS)[number];
type FlagName = Entry['flag'];
/** Every flag's parsed value, by flag name, typed by its entry's FlagType. */
type Values = { readonly [E in Entry as E['flag']]: E['type'] extends FlagType<infer T> ? T : never };

export function envName(flag: string): string {
  return `PODVISOR_${flag.toUpperCase().replace(/[-.]/g, '_')}`;
}

function shownDefault(def: string): string {
  return def === '' ? '""' : def;
}

export function helpText(): string {
  const lines = [
    'Usage: podvisor [flags]',
    '',
    'A cAdvisor-compatible container metrics exporter.',
    '',
    'Flags (each also read from the environment variable shown; a flag beats its variable, which beats the default):',
  ];
  for (const f of FLAGS) {
    const also = f.type.name === 'bool' ? `, --${f.flag}, --no-${f.flag}` : '';
    lines.push(`  --${f.flag}=<${f.type.name}>${also}  (${envName(f.flag)}, default ${shownDefault(f.default)})`);
    if (f.type.bounded) lines.push(`      allowed: ${f.type.allowed}`);
    lines.push(`      ${f.help}`);
  }
  lines.push('  --help, -h  Print this text and exit.', '  --version   Print the version and exit.');
  return lines.join('\n') + '\n';
}

/** The one shape of a bad value: where it came from, the value as given, and what is allowed. */
function notAllowed(source: string, value: string, allowed: string): ConfigError {
  return new ConfigError(`${source}: ${JSON.stringify(value)} is not ${allowed}`);
}

const ANY_DURATION_TYPE = duration({ atLeast: 0 });
const ADDRESS_TYPE = address();

/** `90`, `500ms`, `10s`, `1.5m`, `1h`: milliseconds. A bare number is seconds. `what` names the source in the error. */
export function parseDuration(s: string, what: string): number {
  const ms = ANY_DURATION_TYPE.parse(s);
  if (ms === undefined) throw notAllowed(what, s, ANY_DURATION_TYPE.allowed);
  return ms;
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). `what` names the source in the error. */
export function parseListenAddress(s: string, what: string): { host: string; port: number } {
  const a = ADDRESS_TYPE.parse(s);
  if (a === undefined) throw notAllowed(what, s, ADDRESS_TYPE.allowed);
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

export type ParseResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

type Collected = { kind: 'flags'; given: ReadonlyMap<string, string> } | { kind: 'help' } | { kind: 'version' };

/** The flags on the command line, by name, as text (the last of a repeated flag wins); or help, or version. */
function collect(argv: readonly string[]): Collected {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (flags look like --listen-address=0.0.0.0:8080; see --help)`);
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const value = eq === -1 ? undefined : body.slice(eq + 1);
    const def = FLAGS.find((f) => f.flag === name);
    if (def === undefined) {
      const negated = name.startsWith('no-') ? FLAGS.find((f) => f.flag === name.slice(3) && f.type.name === 'bool') : undefined;
      if (negated === undefined) throw new ConfigError(`unknown flag --${name} (see --help)`);
      if (value !== undefined) throw new ConfigError(`flag --${name} takes no value`);
      given.set(negated.flag, 'false');
    } else if (value !== undefined) {
      given.set(name, value);
    } else if (def.type.name === 'bool') {
      given.set(name, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`flag --${name} needs a value`);
      given.set(name, next);
      i++;
    }
  }
  return { kind: 'flags', given };
}

/** One entry's value: the flag, else its non-empty environment twin, else the default; parsed by the entry's type. */
function resolve(f: FlagDef<unknown>, given: ReadonlyMap<string, string>, env: Readonly<Record<string, string | undefined>>): unknown {
  const fromFlag = given.get(f.flag);
  const fromEnv = env[envName(f.flag)];
  const [source, value] =
    fromFlag !== undefined
      ? [`--${f.flag}`, fromFlag]
      : fromEnv !== undefined && fromEnv !== ''
        ? [envName(f.flag), fromEnv]
        : [`the default of --${f.flag}`, f.default];
  const parsed = f.type.parse(value);
  if (parsed === undefined) throw notAllowed(source, value, f.type.allowed);
  return parsed;
}

function resolveAll(given: ReadonlyMap<string, string>, env: Readonly<Record<string, string | undefined>>): Values {
  const values: Partial<Record<FlagName, unknown>> = {};
  for (const f of FLAGS) values[f.flag] = resolve(f, given, env);
  // The one cast: a loop cannot build a mapped type key by key. Every key is set just above, each to what its own
  // entry's type parsed, which is what Values says it holds.
  return values as Values;
}

/** --gather-threads is an integer from 1 to 2 in the table; Config keeps it as the literal type. */
function threadCount(n: number): 1 | 2 {
  if (n === 1 || n === 2) return n;
  throw new Error(`internal: --gather-threads ${n} passed bounds of 1 to 2`);
}

function toConfig(v: Values): Config {
  return {
    listenHost: v['listen-address'].host,
    listenPort: v['listen-address'].port,
    rootfs: v.rootfs,
    rawCgroupPrefixAllowlist: v['raw-cgroup-prefix-allowlist'],
    runtimeContainersOnly: v['runtime-containers-only'],
    kinds: resolveKinds(v['enable-metrics'], v['disable-metrics']),
    minGatherIntervalMs: v['min-gather-interval'],
    maxResultAgeMs: v['max-result-age'],
    gatherAhead: v['gather-ahead'],
    defaultScrapeTimeoutMs: v['default-scrape-timeout'],
    scrapeTimeoutOffsetMs: v['scrape-timeout-offset'],
    gatherTimeoutMs: v['gather-timeout'],
    machineInfoIntervalMs: v['machine-info-interval'],
    gatherInWorker: v['gather-in-worker'],
    gatherThreads: threadCount(v['gather-threads']),
    logLevel: v['log-level'],
    ...(v['disk-usage']
      ? { disk: { concurrency: v['disk-walk-concurrency'], intervalMs: v['disk-usage-interval'], cpuBudget: v['disk-walk-cpu-percent'] / 100 } }
      : {}),
    runtimes: {
      dockerEndpoint: v['docker-endpoint'],
      containerdAddress: v['containerd-address'],
      containerdNamespaces: v['containerd-namespaces'],
      crioEndpoint: v['crio-endpoint'],
      timeoutMs: v['runtime-timeout'],
      startupGraceMs: v['runtime-startup-grace'],
      labelHoldMs: v['label-hold'],
      extraLabels: {
        storeContainerLabels: v['store-container-labels'],
        whitelistedContainerLabels: v['whitelisted-container-labels'],
        envMetadataWhitelist: v['env-metadata-whitelist'],
      },
    },
    security: securityConfig(v),
    accelerator: {
      nvmlLibrary: v['nvml-library'].trim(),
      intervalMs: v['accelerator-interval'],
      timeoutMs: v['accelerator-timeout'],
      podResourcesSocket: v['pod-resources-socket'].trim(),
      podResourcesIntervalMs: v['pod-resources-interval'],
      podResourcesTimeoutMs: v['pod-resources-timeout'],
    },
  };
}

function securityConfig(v: Values): SecurityOptions {
  if (v.authorization === 'kubernetes' && v.authentication !== 'kubernetes') {
    throw new ConfigError('--authorization=kubernetes needs --authentication=kubernetes: a SubjectAccessReview is made for an authenticated user');
  }
  return {
    webConfigFile: v['web.config.file'],
    tls: v.tls,
    authentication: v.authentication,
    authorization: v.authorization,
    tokenAudiences: v['auth-token-audiences'],
    nodeName: v['node-name'].trim(),
    kubeconfig: v.kubeconfig,
    kubeApiTimeoutMs: v['kube-api-timeout'],
    authnCacheTtlMs: v['authentication-token-webhook-cache-ttl'],
    authzAllowedTtlMs: v['authorization-webhook-cache-authorized-ttl'],
    authzDeniedTtlMs: v['authorization-webhook-cache-unauthorized-ttl'],
  };
}

/** argv without the node and script paths; env is process.env or a test's. Throws one ConfigError on a bad input. */
export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const collected = collect(argv);
  if (collected.kind !== 'flags') return collected;
  return { kind: 'run', config: toConfig(resolveAll(collected.given, env)) };
}
