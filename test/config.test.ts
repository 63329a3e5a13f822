import t from 'tap';
import { envName, helpText, parseArgs, parseDuration, parseListenAddress, FLAGS, type Config } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

function run(argv: string[], env: Record<string, string> = {}) {
  const r = parseArgs(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.config;
}

/** The ConfigError's message, or "(accepted)". */
function rejection(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseArgs(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return '(accepted)';
}

/** The defaults, written out: a changed default fails here. */
const DEFAULTS: Config = {
  listenHost: '0.0.0.0',
  listenPort: 8080,
  rootfs: '/',
  rawCgroupPrefixAllowlist: [],
  runtimeContainersOnly: false,
  kinds: ['accelerator', 'cpu', 'memory', 'diskIO', 'disk', 'network', 'process', 'oom_event', 'pressure'],
  minGatherIntervalMs: 0,
  maxResultAgeMs: 90_000,
  gatherAhead: true,
  defaultScrapeTimeoutMs: 10_000,
  scrapeTimeoutOffsetMs: 500,
  gatherTimeoutMs: 60_000,
  machineInfoIntervalMs: 300_000,
  gatherInWorker: false,
  gatherThreads: 1,
  logLevel: 'info',
  disk: { concurrency: 2, intervalMs: 60_000, cpuBudget: 0.005 },
  runtimes: {
    dockerEndpoint: 'unix:///var/run/docker.sock',
    containerdAddress: '/run/containerd/containerd.sock',
    containerdNamespaces: ['k8s.io', 'moby'],
    crioEndpoint: '/var/run/crio/crio.sock',
    timeoutMs: 2000,
    startupGraceMs: 10_000,
    labelHoldMs: 10_000,
    extraLabels: { storeContainerLabels: false, whitelistedContainerLabels: [], envMetadataWhitelist: [] },
  },
  security: {
    webConfigFile: '',
    tls: 'auto',
    authentication: 'none',
    authorization: 'none',
    tokenAudiences: [],
    nodeName: '',
    kubeconfig: '',
    kubeApiTimeoutMs: 3000,
    authnCacheTtlMs: 120_000,
    authzAllowedTtlMs: 300_000,
    authzDeniedTtlMs: 30_000,
  },
  accelerator: {
    nvmlLibrary: '',
    intervalMs: 10_000,
    timeoutMs: 5000,
    podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
    podResourcesIntervalMs: 10_000,
    podResourcesTimeoutMs: 5000,
  },
};

t.test('defaults', async (t) => {
  const c = run([]);
  t.equal(c.listenHost, '0.0.0.0', 'all interfaces by default, not loopback');
  t.equal(c.listenPort, 8080);
  t.equal(c.rootfs, '/');
  t.same(c.rawCgroupPrefixAllowlist, []);
  t.equal(c.minGatherIntervalMs, 0);
  t.equal(c.gatherInWorker, false);
  t.equal(c.gatherThreads, 1, 'no read-ahead thread by default: it costs RSS and gains nothing under a one-core limit');
  t.same(c, DEFAULTS, 'every default as documented');
});

t.test('every FLAGS entry parses its own default, as a flag and as an environment twin', async (t) => {
  for (const f of FLAGS) {
    t.not(f.type.parse(f.default), undefined, `--${f.flag}: its type accepts its default ${JSON.stringify(f.default)}`);
    t.same(run([`--${f.flag}=${f.default}`]), DEFAULTS, `--${f.flag}=${f.default} is the default`);
    if (f.default !== '') t.same(run([], { [envName(f.flag)]: f.default }), DEFAULTS, `${envName(f.flag)}=${f.default} is the default`);
  }
});

/** The bool flags, which never take the next argument as their value. */
const BOOLS = ['runtime-containers-only', 'gather-ahead', 'gather-in-worker', 'store-container-labels', 'disk-usage'];

const DISK = { concurrency: 2, intervalMs: 60_000, cpuBudget: 0.005 };
const RUNTIMES = DEFAULTS.runtimes;
const LABELS = RUNTIMES.extraLabels;
const NO_DISK: Config = { ...DEFAULTS };
delete NO_DISK.disk;

/**
 * Per flag, a valid value other than its default and the configuration it gives, written out: a flag wired to the
 * wrong field, or added to the table without a line here, fails below.
 */
const SECURITY = DEFAULTS.security;
const ACCEL = DEFAULTS.accelerator;
const NON_DEFAULT: Record<string, [string, Config]> = {
  'listen-address': ['127.0.0.1:9100', { ...DEFAULTS, listenHost: '127.0.0.1', listenPort: 9100 }],
  rootfs: ['/rootfs', { ...DEFAULTS, rootfs: '/rootfs' }],
  'raw-cgroup-prefix-allowlist': [' /kubepods, ,/docker,', { ...DEFAULTS, rawCgroupPrefixAllowlist: ['/kubepods', '/docker'] }],
  'runtime-containers-only': ['true', { ...DEFAULTS, runtimeContainersOnly: true }],
  'enable-metrics': ['udp,cpu', { ...DEFAULTS, kinds: ['cpu', 'udp'] }],
  'disable-metrics': [
    'memory_numa,tcp,udp,advtcp,sched,process,hugetlb,referenced_memory,cpu_topology,resctrl,cpuset',
    { ...DEFAULTS, kinds: ['accelerator', 'cpu', 'percpu', 'memory', 'diskIO', 'disk', 'network', 'oom_event', 'pressure'] },
  ],
  'min-gather-interval': ['2s', { ...DEFAULTS, minGatherIntervalMs: 2000 }],
  'max-result-age': ['0', { ...DEFAULTS, maxResultAgeMs: 0 }],
  'gather-ahead': ['false', { ...DEFAULTS, gatherAhead: false }],
  'default-scrape-timeout': ['3s', { ...DEFAULTS, defaultScrapeTimeoutMs: 3000 }],
  'scrape-timeout-offset': ['0', { ...DEFAULTS, scrapeTimeoutOffsetMs: 0 }],
  'gather-timeout': ['1.5m', { ...DEFAULTS, gatherTimeoutMs: 90_000 }],
  'machine-info-interval': ['1h', { ...DEFAULTS, machineInfoIntervalMs: 3_600_000 }],
  'gather-in-worker': ['true', { ...DEFAULTS, gatherInWorker: true }],
  'gather-threads': ['2', { ...DEFAULTS, gatherThreads: 2 }],
  'log-level': ['debug', { ...DEFAULTS, logLevel: 'debug' }],
  'nvml-library': [
    ' /run/nvidia/driver/usr/lib64/libnvidia-ml.so.1 ',
    { ...DEFAULTS, accelerator: { ...ACCEL, nvmlLibrary: '/run/nvidia/driver/usr/lib64/libnvidia-ml.so.1' } },
  ],
  'accelerator-interval': ['30s', { ...DEFAULTS, accelerator: { ...ACCEL, intervalMs: 30_000 } }],
  'accelerator-timeout': ['1s', { ...DEFAULTS, accelerator: { ...ACCEL, timeoutMs: 1000 } }],
  'pod-resources-socket': [
    '/var/lib/k0s/kubelet/pod-resources/kubelet.sock',
    { ...DEFAULTS, accelerator: { ...ACCEL, podResourcesSocket: '/var/lib/k0s/kubelet/pod-resources/kubelet.sock' } },
  ],
  'pod-resources-interval': ['1m', { ...DEFAULTS, accelerator: { ...ACCEL, podResourcesIntervalMs: 60_000 } }],
  'pod-resources-timeout': ['2s', { ...DEFAULTS, accelerator: { ...ACCEL, podResourcesTimeoutMs: 2000 } }],
  'docker-endpoint': ['tcp://127.0.0.1:2375', { ...DEFAULTS, runtimes: { ...RUNTIMES, dockerEndpoint: 'tcp://127.0.0.1:2375' } }],
  'containerd-address': ['/x.sock', { ...DEFAULTS, runtimes: { ...RUNTIMES, containerdAddress: '/x.sock' } }],
  'containerd-namespaces': ['k8s.io', { ...DEFAULTS, runtimes: { ...RUNTIMES, containerdNamespaces: ['k8s.io'] } }],
  'crio-endpoint': ['/y.sock', { ...DEFAULTS, runtimes: { ...RUNTIMES, crioEndpoint: '/y.sock' } }],
  'runtime-timeout': ['500ms', { ...DEFAULTS, runtimes: { ...RUNTIMES, timeoutMs: 500 } }],
  'runtime-startup-grace': ['0', { ...DEFAULTS, runtimes: { ...RUNTIMES, startupGraceMs: 0 } }],
  'label-hold': ['1m', { ...DEFAULTS, runtimes: { ...RUNTIMES, labelHoldMs: 60_000 } }],
  'store-container-labels': ['on', { ...DEFAULTS, runtimes: { ...RUNTIMES, extraLabels: { ...LABELS, storeContainerLabels: true } } }],
  'whitelisted-container-labels': [
    'app,team',
    { ...DEFAULTS, runtimes: { ...RUNTIMES, extraLabels: { ...LABELS, whitelistedContainerLabels: ['app', 'team'] } } },
  ],
  'disk-usage': ['false', NO_DISK],
  'disk-walk-concurrency': ['64', { ...DEFAULTS, disk: { ...DISK, concurrency: 64 } }],
  'disk-usage-interval': ['5m', { ...DEFAULTS, disk: { ...DISK, intervalMs: 300_000 } }],
  'disk-walk-cpu-percent': ['100', { ...DEFAULTS, disk: { ...DISK, cpuBudget: 1 } }],
  'env-metadata-whitelist': ['APP_', { ...DEFAULTS, runtimes: { ...RUNTIMES, extraLabels: { ...LABELS, envMetadataWhitelist: ['APP_'] } } }],
  'web.config.file': ['/etc/podvisor/web.yml', { ...DEFAULTS, security: { ...SECURITY, webConfigFile: '/etc/podvisor/web.yml' } }],
  tls: ['on', { ...DEFAULTS, security: { ...SECURITY, tls: 'on' } }],
  authentication: ['kubernetes', { ...DEFAULTS, security: { ...SECURITY, authentication: 'kubernetes' } }],
  authorization: ['none', DEFAULTS],
  'auth-token-audiences': ['podvisor,other', { ...DEFAULTS, security: { ...SECURITY, tokenAudiences: ['podvisor', 'other'] } }],
  'node-name': ['node-7', { ...DEFAULTS, security: { ...SECURITY, nodeName: 'node-7' } }],
  kubeconfig: ['/etc/kubeconfig', { ...DEFAULTS, security: { ...SECURITY, kubeconfig: '/etc/kubeconfig' } }],
  'kube-api-timeout': ['1500ms', { ...DEFAULTS, security: { ...SECURITY, kubeApiTimeoutMs: 1500 } }],
  'authentication-token-webhook-cache-ttl': ['0', { ...DEFAULTS, security: { ...SECURITY, authnCacheTtlMs: 0 } }],
  'authorization-webhook-cache-authorized-ttl': ['1m', { ...DEFAULTS, security: { ...SECURITY, authzAllowedTtlMs: 60_000 } }],
  'authorization-webhook-cache-unauthorized-ttl': ['10s', { ...DEFAULTS, security: { ...SECURITY, authzDeniedTtlMs: 10_000 } }],
};

t.test('every FLAGS entry reaches its own Config field, from the flag and from its environment twin alike', async (t) => {
  t.same(
    Object.keys(NON_DEFAULT),
    FLAGS.map((f) => f.flag),
    'a line above for every flag in the table, in its order',
  );
  for (const [flag, [value, expected]] of Object.entries(NON_DEFAULT)) {
    t.strictSame(run([`--${flag}=${value}`]), expected, `--${flag}=${value}`);
    if (!BOOLS.includes(flag)) t.strictSame(run([`--${flag}`, value]), expected, `--${flag} ${value}`);
    t.strictSame(run([], { [envName(flag)]: value }), expected, `${envName(flag)}=${value}`);
  }
});

t.test('flags, both spellings, beat environment twins', async (t) => {
  const c = run(['--listen-address=127.0.0.1:9999', '--rootfs', '/rootfs', '--gather-in-worker'], {
    PODVISOR_LISTEN_ADDRESS: '0.0.0.0:1',
    PODVISOR_MIN_GATHER_INTERVAL: '2s',
    PODVISOR_RAW_CGROUP_PREFIX_ALLOWLIST: '/kubepods, /docker',
  });
  t.equal(c.listenHost, '127.0.0.1');
  t.equal(c.listenPort, 9999);
  t.equal(c.rootfs, '/rootfs');
  t.equal(c.gatherInWorker, true);
  t.equal(c.minGatherIntervalMs, 2000, 'env twin used when no flag');
  t.same(c.rawCgroupPrefixAllowlist, ['/kubepods', '/docker'], 'list entries trimmed');
});

t.test('help and version', async (t) => {
  t.same(parseArgs(['--help'], {}), { kind: 'help' });
  t.same(parseArgs(['--version'], {}), { kind: 'version' });
  t.same(parseArgs(['-h'], {}), { kind: 'help' });
  t.same(parseArgs(['--gather-threads=9', '--help'], {}), { kind: 'help' }, 'help before any value is checked');
  const h = helpText();
  for (const f of FLAGS) {
    t.match(h, `--${f.flag}`);
    t.match(h, envName(f.flag));
  }
  t.match(h, 'default 0.0.0.0:8080');
});

/** The lines --help prints for one flag: its `--name=<type>` line up to the next flag's. */
function helpBlock(h: string, flag: string): string[] {
  const lines = h.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  --${flag}=<`));
  if (start === -1) return [];
  const end = lines.findIndex((l, i) => i > start && l.startsWith('  --'));
  return lines.slice(start, end === -1 ? undefined : end);
}

t.test('--help shows, per flag, its type, environment twin, default, what is allowed, and its help', async (t) => {
  const h = helpText();
  for (const f of FLAGS) {
    const block = helpBlock(h, f.flag);
    const def = f.default === '' ? '""' : f.default;
    t.match(block[0] ?? '', `--${f.flag}=<${f.type.name}>`, `--${f.flag}: its type`);
    t.match(block[0] ?? '', `(${envName(f.flag)}, default ${def})`, `--${f.flag}: environment twin and default`);
    const allowed = block.filter((l) => l.startsWith('      allowed: '));
    t.same(allowed, f.type.bounded ? [`      allowed: ${f.type.allowed}`] : [], `--${f.flag}: what is allowed, when bounded`);
    t.equal(block.at(-1), `      ${f.help}`, `--${f.flag}: help text`);
  }
  // Written out, so that a changed bound fails here and not only in the table.
  t.same(helpBlock(h, 'disk-walk-concurrency').slice(0, 2), [
    '  --disk-walk-concurrency=<integer>  (PODVISOR_DISK_WALK_CONCURRENCY, default 2)',
    '      allowed: a whole number from 1 to 64',
  ]);
  t.same(helpBlock(h, 'gather-threads')[1], '      allowed: a whole number from 1 to 2');
  t.same(helpBlock(h, 'disk-walk-cpu-percent')[1], '      allowed: a number above 0 and at most 100');
  t.same(helpBlock(h, 'log-level')[1], '      allowed: one of debug, info, warn, error');
  t.same(helpBlock(h, 'gather-timeout')[1], '      allowed: a duration above 0 and at most 24h, such as 500ms, 10s or 5m');
  t.same(helpBlock(h, 'min-gather-interval')[1], '      allowed: a duration of at most 24h, such as 500ms, 10s or 5m');
  t.same(helpBlock(h, 'listen-address')[1], '      allowed: host:port, [v6]:port or :port, with a port from 0 to 65535');
  t.same(helpBlock(h, 'raw-cgroup-prefix-allowlist')[1], '      allowed: a comma-separated list of cgroup paths, each starting with / (such as /kubepods)');
  t.same(helpBlock(h, 'disk-usage')[0], '  --disk-usage=<bool>, --disk-usage, --no-disk-usage  (PODVISOR_DISK_USAGE, default true)');
  t.same(helpBlock(h, 'disk-usage')[1], '      allowed: true or false (or 1/0, yes/no, on/off)');
  t.equal(helpBlock(h, 'rootfs').length, 2, '--rootfs takes any text: no allowed line');
});

t.test('what --help calls allowed is what the parser allows', async (t) => {
  for (const f of FLAGS) {
    // "?" fits no bounded type (not a bool, number, duration, address, level or absolute path) and any unbounded one.
    const expected = f.type.bounded ? `--${f.flag}: "?" is not ${f.type.allowed}` : '(accepted)';
    t.equal(rejection([`--${f.flag}=?`]), expected, `--${f.flag}=?`);
    t.ok(helpText().includes(f.type.bounded ? `allowed: ${f.type.allowed}\n` : `--${f.flag}=<`), `--${f.flag}: the same words in --help`);
  }
});

t.test('bad input is one clear ConfigError', async (t) => {
  t.equal(rejection(['--nope']), 'unknown flag --nope (see --help)');
  t.equal(rejection(['--gather-threads=3']), '--gather-threads: "3" is not a whole number from 1 to 2');
  t.equal(run(['--gather-threads=2']).gatherThreads, 2);
  t.equal(rejection(['--listen-address=8080']), '--listen-address: "8080" is not host:port, [v6]:port or :port, with a port from 0 to 65535');
  t.equal(
    rejection([], { PODVISOR_MIN_GATHER_INTERVAL: 'soon' }),
    'PODVISOR_MIN_GATHER_INTERVAL: "soon" is not a duration of at most 24h, such as 500ms, 10s or 5m',
  );
  t.equal(
    rejection(['--raw-cgroup-prefix-allowlist=kubepods']),
    '--raw-cgroup-prefix-allowlist: "kubepods" is not a comma-separated list of cgroup paths, each starting with / (such as /kubepods)',
  );
  t.equal(rejection(['--log-level=loud']), '--log-level: "loud" is not one of debug, info, warn, error');
  t.equal(rejection(['--rootfs']), 'flag --rootfs needs a value');
  t.equal(rejection(['--rootfs', '--gather-in-worker']), 'flag --rootfs needs a value', 'the next flag is not taken as the value');
  t.equal(rejection(['stray']), 'unexpected argument "stray" (flags look like --listen-address=0.0.0.0:8080; see --help)');
  t.equal(rejection(['-v']), 'unexpected argument "-v" (flags look like --listen-address=0.0.0.0:8080; see --help)');
});

/** [flag, bad value, what is allowed]: written out, not read from FLAGS. */
const BAD: [string, string, string][] = [
  ['gather-in-worker', 'maybe', 'true or false (or 1/0, yes/no, on/off)'],
  ['disk-usage', '2', 'true or false (or 1/0, yes/no, on/off)'],
  ['gather-threads', '3', 'a whole number from 1 to 2'],
  ['gather-threads', '0', 'a whole number from 1 to 2'],
  ['disk-walk-concurrency', '0', 'a whole number from 1 to 64'],
  ['disk-walk-concurrency', '65', 'a whole number from 1 to 64'],
  ['disk-walk-concurrency', '-1', 'a whole number from 1 to 64'],
  ['disk-walk-cpu-percent', '0', 'a number above 0 and at most 100'],
  ['disk-walk-cpu-percent', '100.01', 'a number above 0 and at most 100'],
  ['disk-walk-cpu-percent', 'half', 'a number above 0 and at most 100'],
  ['min-gather-interval', 'soon', 'a duration of at most 24h, such as 500ms, 10s or 5m'],
  ['scrape-timeout-offset', '-1s', 'a duration of at most 24h, such as 500ms, 10s or 5m'],
  ['min-gather-interval', '10 s', 'a duration of at most 24h, such as 500ms, 10s or 5m'],
  ['gather-timeout', '0', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['default-scrape-timeout', '0s', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['machine-info-interval', '0ms', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['runtime-timeout', '0.4ms', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['disk-usage-interval', '0m', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['disk-usage-interval', '24.001h', 'a duration above 0 and at most 24h, such as 500ms, 10s or 5m'],
  ['min-gather-interval', '1441m', 'a duration of at most 24h, such as 500ms, 10s or 5m'],
  ['raw-cgroup-prefix-allowlist', '/kubepods, docker', 'a comma-separated list of cgroup paths, each starting with / (such as /kubepods)'],
  ['listen-address', 'localhost', 'host:port, [v6]:port or :port, with a port from 0 to 65535'],
  ['listen-address', 'host:65536', 'host:port, [v6]:port or :port, with a port from 0 to 65535'],
  ['log-level', 'INFO', 'one of debug, info, warn, error'],
];

t.test('a bad value of each type: one line naming the flag or variable, the value as given, and what is allowed', async (t) => {
  for (const [flag, bad, allowed] of BAD) {
    t.equal(rejection([`--${flag}=${bad}`]), `--${flag}: "${bad}" is not ${allowed}`, `--${flag}=${bad}`);
    const spaced = BOOLS.includes(flag)
      ? `unexpected argument "${bad}" (flags look like --listen-address=0.0.0.0:8080; see --help)`
      : `--${flag}: "${bad}" is not ${allowed}`;
    t.equal(rejection([`--${flag}`, bad]), spaced, `--${flag} ${bad} (a bool never takes the next argument)`);
    t.equal(rejection([], { [envName(flag)]: bad }), `${envName(flag)}: "${bad}" is not ${allowed}`, `${envName(flag)}=${bad}`);
    t.equal(rejection([`--${flag}=${NON_DEFAULT[flag]?.[0] ?? '?'}`], { [envName(flag)]: bad }), '(accepted)', `--${flag} hides its bad twin`);
  }
  t.equal(rejection(['--disk-walk-concurrency=']), '--disk-walk-concurrency: "" is not a whole number from 1 to 64', 'an empty flag value is a value');
  t.same(run([], { PODVISOR_DISK_WALK_CONCURRENCY: '' }), DEFAULTS, 'an empty variable is not');
});

t.test('integer flags reject 1.5 and 2x', async (t) => {
  t.same(
    FLAGS.filter((f) => f.type.name === 'bool').map((f) => f.flag),
    BOOLS,
  );
  const integers = FLAGS.filter((f) => f.type.name === 'integer').map((f) => f.flag);
  t.same(integers, ['gather-threads', 'disk-walk-concurrency']);
  for (const flag of integers) {
    for (const bad of ['1.5', '2x', '2.0', '1e1']) {
      t.match(
        rejection([`--${flag}=${bad}`]),
        new RegExp(`^--${flag}: "${bad.replace('.', '\\.')}" is not a whole number from 1 to \\d+$`),
        `--${flag}=${bad}`,
      );
    }
  }
});

t.test('bounds at the edges: inclusive ends accepted, exclusive ends rejected (above)', async (t) => {
  t.equal(run(['--gather-threads=1']).gatherThreads, 1);
  t.equal(run(['--gather-threads=2']).gatherThreads, 2);
  t.equal(run(['--disk-walk-concurrency=1']).disk?.concurrency, 1);
  t.equal(run(['--disk-walk-concurrency=64']).disk?.concurrency, 64);
  t.equal(run(['--disk-walk-cpu-percent=100']).disk?.cpuBudget, 1, 'at most 100: 100 is allowed');
  t.equal(run(['--disk-walk-cpu-percent=0.01']).disk?.cpuBudget, 0.0001, 'above 0: just above is allowed');
  t.equal(run(['--gather-timeout=1ms']).gatherTimeoutMs, 1);
  t.equal(run(['--default-scrape-timeout=1ms']).defaultScrapeTimeoutMs, 1);
  t.equal(run(['--machine-info-interval=1ms']).machineInfoIntervalMs, 1);
  t.equal(run(['--runtime-timeout=1ms']).runtimes.timeoutMs, 1);
  t.equal(run(['--disk-usage-interval=1ms']).disk?.intervalMs, 1);
  t.equal(run(['--min-gather-interval=0']).minGatherIntervalMs, 0, 'may be 0');
  t.equal(run(['--scrape-timeout-offset=0ms']).scrapeTimeoutOffsetMs, 0, 'may be 0');
  t.equal(run(['--listen-address=:65535']).listenPort, 65535);
  t.equal(run(['--listen-address=:0']).listenPort, 0);
});

t.test('--no-<bool>', async (t) => {
  t.equal(run(['--no-disk-usage']).disk, undefined);
  t.equal(run(['--no-gather-in-worker'], { PODVISOR_GATHER_IN_WORKER: 'true' }).gatherInWorker, false, 'beats the environment twin');
  t.equal(run(['--gather-in-worker', '--no-gather-in-worker']).gatherInWorker, false, 'the last one wins');
  t.equal(run(['--no-gather-in-worker', '--gather-in-worker']).gatherInWorker, true, 'the last one wins');
  t.equal(run(['--no-store-container-labels', '--store-container-labels=yes']).runtimes.extraLabels.storeContainerLabels, true);
  t.equal(run([], { PODVISOR_DISK_USAGE: 'off' }).disk, undefined);
  t.equal(rejection(['--no-rootfs']), 'unknown flag --no-rootfs (see --help)', 'only bool flags have a --no- form');
  t.equal(rejection(['--no-disk-usage=false']), 'flag --no-disk-usage takes no value');
  t.equal(
    rejection(['--disk-usage', 'false']),
    'unexpected argument "false" (flags look like --listen-address=0.0.0.0:8080; see --help)',
    'a bool takes no separate value',
  );
});

t.test('durations and addresses', async (t) => {
  t.equal(parseDuration('500ms', 'x'), 500);
  t.equal(parseDuration('10s', 'x'), 10_000);
  t.equal(parseDuration('1.5m', 'x'), 90_000);
  t.equal(parseDuration('2', 'x'), 2000, 'bare numbers are seconds');
  t.equal(parseDuration('1h', 'x'), 3_600_000);
  t.equal(parseDuration('0', 'x'), 0);
  t.throws(() => parseDuration('soon', '--x'), new ConfigError('--x: "soon" is not a duration of at most 24h, such as 500ms, 10s or 5m'));
  t.same(parseListenAddress(':8080', 'x'), { host: '0.0.0.0', port: 8080 });
  t.same(parseListenAddress('[::]:9100', 'x'), { host: '::', port: 9100 });
  t.same(parseListenAddress(' 10.0.0.1:80 ', 'x'), { host: '10.0.0.1', port: 80 });
  t.throws(() => parseListenAddress('host:99999', 'x'), new ConfigError('x: "host:99999" is not host:port, [v6]:port or :port, with a port from 0 to 65535'));
});

t.test('--disk-walk-cpu-percent: a percentage of one core, 0.5 by default', async (t) => {
  t.equal(run([], {}).disk?.cpuBudget, 0.005);
  t.equal(run(['--disk-walk-cpu-percent=2'], {}).disk?.cpuBudget, 0.02);
  t.equal(run([], { PODVISOR_DISK_WALK_CPU_PERCENT: '1' }).disk?.cpuBudget, 0.01);
  for (const bad of ['0', '-1', '101', 'half']) {
    t.equal(rejection([`--disk-walk-cpu-percent=${bad}`]), `--disk-walk-cpu-percent: "${bad}" is not a number above 0 and at most 100`);
  }
});

t.test("metric kinds: cAdvisor's semantics, validated by name", async (t) => {
  t.same(
    run([]).kinds,
    ['accelerator', 'cpu', 'memory', 'diskIO', 'disk', 'network', 'process', 'oom_event', 'pressure'],
    "the kubelet's set, and accelerator (on only where NVML is found), by default",
  );
  t.same(run(['--disable-metrics=']).kinds.length, 16, 'an empty ignore list: every kind');
  t.same(run(['--enable-metrics=accelerator']).kinds, ['accelerator'], 'accelerator is a podvisor kind now');
  t.same(run(['--disable-metrics=tcp']).kinds.includes('percpu'), true, '--disable-metrics replaces the default list, it does not add to it');
  t.same(run(['--enable-metrics=cpu,percpu', '--disable-metrics=cpu']).kinds, ['cpu', 'percpu'], '--enable-metrics wins over --disable-metrics');
  t.match(
    rejection(['--enable-metrics=cpu,cpuLoad']),
    /^--enable-metrics: "cpu,cpuLoad" is not a comma-separated list of metric kinds \(accelerator, cpu, percpu, memory, .*pressure; cAdvisor's advtcp, app, cpuLoad, .* are not exported by podvisor\)$/,
    'a kind podvisor does not export is refused by name, with the valid kinds',
  );
  t.match(
    rejection(['--disable-metrics=cpu,bogus']),
    /^--disable-metrics: "cpu,bogus" is not a comma-separated list of metric kinds \(accelerator, cpu, .*resctrl\)$/,
  );
  t.same(run(['--disable-metrics=advtcp,cpuLoad']).kinds.length, 16, "cAdvisor's other kinds are accepted by --disable-metrics and change nothing");
});

t.test('security flags: the web config flag keeps its dotted name, its twin has underscores; authorization needs authentication', async (t) => {
  t.equal(envName('web.config.file'), 'PODVISOR_WEB_CONFIG_FILE');
  t.equal(run([], { PODVISOR_WEB_CONFIG_FILE: '/w.yml' }).security.webConfigFile, '/w.yml');
  t.same(run(['--authentication=kubernetes', '--authorization=kubernetes']).security, {
    ...DEFAULTS.security,
    authentication: 'kubernetes',
    authorization: 'kubernetes',
  });
  t.equal(
    rejection(['--authorization=kubernetes']),
    '--authorization=kubernetes needs --authentication=kubernetes: a SubjectAccessReview is made for an authenticated user',
  );
  t.equal(rejection(['--tls=maybe']), '--tls: "maybe" is not one of auto, on, off');
  t.equal(rejection(['--authentication=webhook']), '--authentication: "webhook" is not one of none, kubernetes');
  t.equal(run(['--node-name=  node-9 ']).security.nodeName, 'node-9', 'the node name is trimmed');
});
