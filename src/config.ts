/**
 * Flags with environment-variable twins: `--listen-address` / `PODVISOR_LISTEN_ADDRESS`.
 * A flag beats its variable, which beats the default. `--help` prints every flag with its default.
 */
import { ConfigError } from './errors.js';
import type { LogLevel } from './log.js';
import type { RuntimeConfig } from './runtime/index.js';

export interface Config {
  listenHost: string;
  listenPort: number;
  rootfs: string;
  rawCgroupPrefixAllowlist: string[];
  minGatherIntervalMs: number;
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
}

type Kind = 'string' | 'duration' | 'bool' | 'list' | 'address' | 'level';

interface FlagDef {
  flag: string;
  kind: Kind;
  default: string;
  help: string;
}

export const FLAGS: readonly FlagDef[] = [
  {
    flag: 'listen-address',
    kind: 'address',
    default: '0.0.0.0:8080',
    help: 'Address to serve /metrics, /metrics/cadvisor, /healthz and /readyz on (host:port; all interfaces by default so Prometheus can reach it).',
  },
  { flag: 'rootfs', kind: 'string', default: '/', help: 'Root of the host filesystem; /proc and /sys are read under it (use /rootfs in a DaemonSet).' },
  {
    flag: 'raw-cgroup-prefix-allowlist',
    kind: 'list',
    default: '',
    help: 'Comma-separated cgroup path prefixes to report (empty: all). The root cgroup / is always reported.',
  },
  {
    flag: 'min-gather-interval',
    kind: 'duration',
    default: '0s',
    help: 'Reuse a gather younger than this for new scrapes (0: every scrape that finds no gather in flight starts one).',
  },
  {
    flag: 'default-scrape-timeout',
    kind: 'duration',
    default: '10s',
    help: 'Scrape deadline when the request carries no X-Prometheus-Scrape-Timeout-Seconds header.',
  },
  {
    flag: 'scrape-timeout-offset',
    kind: 'duration',
    default: '500ms',
    help: 'Answer this long before the scraper\'s deadline, so a late gather is a clear 503 and not a "context deadline exceeded".',
  },
  { flag: 'gather-timeout', kind: 'duration', default: '60s', help: 'Abandon (and restart the worker of) a gather that runs longer than this.' },
  { flag: 'machine-info-interval', kind: 'duration', default: '5m', help: 'How often machine_* facts (cores, memory) are re-read.' },
  {
    flag: 'gather-in-worker',
    kind: 'bool',
    default: 'false',
    help: 'Read cgroup and /proc files on a worker thread (a second V8 isolate: ~50 MiB more RSS at 200 containers) instead of on the HTTP thread in 10 ms slices.',
  },
  {
    flag: 'gather-threads',
    kind: 'string',
    default: '1',
    help: "Threads reading cgroup and /proc files in a gather: 1, or 2 (a second thread reads ahead the cgroups that took 70% of the last gather's reads: gather ~1/3 faster at 200 containers when a second core is free, but 20-40 MiB more RSS, and no gain under a CPU limit of one core).",
  },
  { flag: 'log-level', kind: 'level', default: 'info', help: 'debug, info, warn or error.' },
  {
    flag: 'docker-endpoint',
    kind: 'string',
    default: 'unix:///var/run/docker.sock',
    help: 'Docker Engine API endpoint (unix:///path or tcp://host:port); empty turns the Docker factory off.',
  },
  {
    flag: 'containerd-address',
    kind: 'string',
    default: '/run/containerd/containerd.sock',
    help: 'containerd socket; empty turns the containerd factory off.',
  },
  {
    flag: 'containerd-namespaces',
    kind: 'list',
    default: 'k8s.io,moby',
    help: 'containerd namespaces whose containers are looked up (k8s.io: Kubernetes CRI; moby: Docker with the containerd store).',
  },
  {
    flag: 'crio-endpoint',
    kind: 'string',
    default: '/var/run/crio/crio.sock',
    help: 'CRI-O socket (its HTTP inspect API); empty turns the CRI-O factory off.',
  },
  {
    flag: 'runtime-timeout',
    kind: 'duration',
    default: '2s',
    help: 'Timeout of every runtime call. Runtime calls never sit on the scrape path: labels come from a cache.',
  },
  {
    flag: 'store-container-labels',
    kind: 'bool',
    default: 'false',
    help: 'Export every runtime label as container_label_<key> on every series (the union over all containers: can be large).',
  },
  {
    flag: 'whitelisted-container-labels',
    kind: 'list',
    default: '',
    help: 'Runtime labels to export as container_label_<key> when --store-container-labels is off.',
  },
  {
    flag: 'disk-usage',
    kind: 'bool',
    default: 'true',
    help: "Measure containers' writable layers (container_fs_usage_bytes) in the background; never on the scrape path.",
  },
  { flag: 'disk-walk-concurrency', kind: 'string', default: '2', help: 'Disk usage measurements running at once, node-wide.' },
  {
    flag: 'disk-usage-interval',
    kind: 'duration',
    default: '1m',
    help: "How often each container's disk usage is re-measured (with jitter; slow or failing ones back off up to 20x).",
  },
  {
    flag: 'disk-walk-cpu-percent',
    kind: 'string',
    default: '0.5',
    help: 'Re-measurements of disk usage take at most this percentage of one core on average (first measurements are never held back); on nodes with millions of files this, not the interval, sets the pace.',
  },
  { flag: 'env-metadata-whitelist', kind: 'list', default: '', help: 'Environment variable name prefixes to export as container_env_<key>.' },
];

export function envName(flag: string): string {
  return `PODVISOR_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export function helpText(): string {
  const lines = [
    'Usage: podvisor [flags]',
    '',
    'A cAdvisor-compatible container metrics exporter.',
    '',
    'Flags (each also read from the environment variable shown):',
  ];
  for (const f of FLAGS) {
    const def = f.default === '' ? '""' : f.default;
    lines.push(`  --${f.flag}${f.kind === 'bool' ? '' : '=<value>'}  (${envName(f.flag)}, default ${def})`, `      ${f.help}`);
  }
  lines.push('  --help      Print this text and exit.', '  --version   Print the version and exit.');
  return lines.join('\n') + '\n';
}

/** `90`, `500ms`, `10s`, `1.5m`, `1h`: milliseconds. A bare number is seconds. */
export function parseDuration(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (m === null) throw new ConfigError(`${what}: "${s}" is not a duration (examples: 500ms, 10s, 5m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export function parseListenAddress(s: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(`${what}: "${s}" is not host:port (example: 0.0.0.0:8080)`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function parseBool(s: string, what: string): boolean {
  const v = s.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${what}: "${s}" is not a boolean (true or false)`);
}

export type ParseResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (flags look like --listen-address=0.0.0.0:8080; see --help)`);
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    let name = eq === -1 ? body : body.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    let def = FLAGS.find((f) => f.flag === name);
    if (def === undefined && name.startsWith('no-') && value === undefined) {
      def = FLAGS.find((f) => f.flag === name.slice(3) && f.kind === 'bool');
      if (def !== undefined) {
        name = def.flag;
        value = 'false';
      }
    }
    if (def === undefined) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (value === undefined) {
      if (def.kind === 'bool') value = 'true';
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new ConfigError(`flag --${name} needs a value`);
        value = next;
        i++;
      }
    }
    given.set(name, value);
  }

  const raw = (flag: string): { value: string; what: string } => {
    const def = FLAGS.find((f) => f.flag === flag);
    if (def === undefined) throw new Error(`internal: no flag ${flag}`);
    const fromFlag = given.get(flag);
    if (fromFlag !== undefined) return { value: fromFlag, what: `--${flag}` };
    const fromEnv = env[envName(flag)];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, what: envName(flag) };
    return { value: def.default, what: `--${flag}` };
  };
  const str = (flag: string): string => raw(flag).value;
  const dur = (flag: string): number => {
    const r = raw(flag);
    return parseDuration(r.value, r.what);
  };

  const listen = parseListenAddress(raw('listen-address').value, raw('listen-address').what);
  const allowlist = str('raw-cgroup-prefix-allowlist')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const p of allowlist) {
    if (!p.startsWith('/')) throw new ConfigError(`--raw-cgroup-prefix-allowlist: "${p}" must be an absolute cgroup path such as /kubepods`);
  }
  const level = str('log-level');
  if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') {
    throw new ConfigError(`--log-level: "${level}" is not one of debug, info, warn, error`);
  }
  const gatherTimeoutMs = dur('gather-timeout');
  if (gatherTimeoutMs <= 0) throw new ConfigError('--gather-timeout must be more than 0');
  const inWorker = raw('gather-in-worker');
  const list = (flag: string): string[] =>
    str(flag)
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
  const bool = (flag: string): boolean => {
    const r = raw(flag);
    return parseBool(r.value, r.what);
  };
  const runtimeTimeoutMs = dur('runtime-timeout');
  const gatherThreads = Number(str('gather-threads'));
  if (gatherThreads !== 1 && gatherThreads !== 2) throw new ConfigError(`--gather-threads: "${str('gather-threads')}" must be 1 or 2`);
  const walkConcurrency = Number(str('disk-walk-concurrency'));
  if (!Number.isInteger(walkConcurrency) || walkConcurrency < 1)
    throw new ConfigError(`--disk-walk-concurrency: "${str('disk-walk-concurrency')}" is not a whole number of at least 1`);
  const diskIntervalMs = dur('disk-usage-interval');
  if (diskIntervalMs <= 0) throw new ConfigError('--disk-usage-interval must be more than 0');
  const walkCpuPercent = Number(str('disk-walk-cpu-percent'));
  if (!Number.isFinite(walkCpuPercent) || walkCpuPercent <= 0 || walkCpuPercent > 100)
    throw new ConfigError(`--disk-walk-cpu-percent: "${str('disk-walk-cpu-percent')}" is not a percentage above 0 and at most 100`);
  if (runtimeTimeoutMs <= 0) throw new ConfigError('--runtime-timeout must be more than 0');
  return {
    kind: 'run',
    config: {
      listenHost: listen.host,
      listenPort: listen.port,
      rootfs: str('rootfs'),
      rawCgroupPrefixAllowlist: allowlist,
      minGatherIntervalMs: dur('min-gather-interval'),
      defaultScrapeTimeoutMs: dur('default-scrape-timeout'),
      scrapeTimeoutOffsetMs: dur('scrape-timeout-offset'),
      gatherTimeoutMs,
      machineInfoIntervalMs: dur('machine-info-interval'),
      gatherInWorker: parseBool(inWorker.value, inWorker.what),
      gatherThreads,
      logLevel: level,
      ...(bool('disk-usage') ? { disk: { concurrency: walkConcurrency, intervalMs: diskIntervalMs, cpuBudget: walkCpuPercent / 100 } } : {}),
      runtimes: {
        dockerEndpoint: str('docker-endpoint'),
        containerdAddress: str('containerd-address'),
        containerdNamespaces: list('containerd-namespaces'),
        crioEndpoint: str('crio-endpoint'),
        timeoutMs: runtimeTimeoutMs,
        extraLabels: {
          storeContainerLabels: bool('store-container-labels'),
          whitelistedContainerLabels: list('whitelisted-container-labels'),
          envMetadataWhitelist: list('env-metadata-whitelist'),
        },
      },
    },
  };
}
