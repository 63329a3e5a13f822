import t from 'tap';
import { envName, helpText, parseArgs, parseDuration, parseListenAddress, FLAGS } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

function run(argv: string[], env: Record<string, string> = {}) {
  const r = parseArgs(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.config;
}

t.test('defaults', async (t) => {
  const c = run([]);
  t.equal(c.listenHost, '0.0.0.0', 'all interfaces by default, not loopback');
  t.equal(c.listenPort, 8080);
  t.equal(c.rootfs, '/');
  t.same(c.rawCgroupPrefixAllowlist, []);
  t.equal(c.minGatherIntervalMs, 0);
  t.equal(c.gatherInWorker, false);
  t.equal(c.gatherThreads, 1, 'no read-ahead thread by default: it costs RSS and gains nothing under a one-core limit');
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
  const h = helpText();
  for (const f of FLAGS) {
    t.match(h, `--${f.flag}`);
    t.match(h, envName(f.flag));
  }
  t.match(h, 'default 0.0.0.0:8080');
});

t.test('bad input is one clear ConfigError', async (t) => {
  t.throws(() => parseArgs(['--nope'], {}), new ConfigError('unknown flag --nope (see --help)'));
  t.throws(() => parseArgs(['--gather-threads=3'], {}), new ConfigError('--gather-threads: "3" must be 1 or 2'));
  t.equal(run(['--gather-threads=2']).gatherThreads, 2);
  t.throws(() => parseArgs(['--listen-address=8080'], {}), /not host:port/);
  t.throws(() => parseArgs([], { PODVISOR_MIN_GATHER_INTERVAL: 'soon' }), /PODVISOR_MIN_GATHER_INTERVAL: "soon" is not a duration/);
  t.throws(() => parseArgs(['--raw-cgroup-prefix-allowlist=kubepods'], {}), /must be an absolute cgroup path/);
  t.throws(() => parseArgs(['--log-level=loud'], {}), /log-level/);
  t.throws(() => parseArgs(['--rootfs'], {}), /needs a value/);
  t.throws(() => parseArgs(['stray'], {}), /unexpected argument/);
});

t.test('durations and addresses', async (t) => {
  t.equal(parseDuration('500ms', 'x'), 500);
  t.equal(parseDuration('10s', 'x'), 10_000);
  t.equal(parseDuration('1.5m', 'x'), 90_000);
  t.equal(parseDuration('2', 'x'), 2000, 'bare numbers are seconds');
  t.same(parseListenAddress(':8080', 'x'), { host: '0.0.0.0', port: 8080 });
  t.same(parseListenAddress('[::]:9100', 'x'), { host: '::', port: 9100 });
  t.throws(() => parseListenAddress('host:99999', 'x'));
});

t.test('--disk-walk-cpu-percent: a percentage of one core, 0.5 by default', async (t) => {
  t.equal(run([], {}).disk?.cpuBudget, 0.005);
  t.equal(run(['--disk-walk-cpu-percent=2'], {}).disk?.cpuBudget, 0.02);
  t.equal(run([], { PODVISOR_DISK_WALK_CPU_PERCENT: '1' }).disk?.cpuBudget, 0.01);
  for (const bad of ['0', '-1', '101', 'half']) {
    t.throws(() => run([`--disk-walk-cpu-percent=${bad}`], {}), { message: /--disk-walk-cpu-percent: ".*" is not a percentage above 0 and at most 100/ });
  }
});
