import t from 'tap';
import { errorMessage, ParseError } from '../../src/errors.js';
import { readCgroupStats } from '../../src/cgroup/read.js';
import type { CgroupLayout, CgroupReadContext } from '../../src/cgroup/types.js';
import type { CollectorName } from '../../src/model/cgroup.js';

// readCgroupStats against an in-memory context: what happens with absent, unreadable and malformed files.

type Content = string | Error;

function memoryContext(
  layout: CgroupLayout,
  files: Record<string, Content>,
  meminfo?: Content,
): { ctx: CgroupReadContext; errors: { collector: CollectorName; file: string; err: unknown }[]; reads: string[] } {
  const errors: { collector: CollectorName; file: string; err: unknown }[] = [];
  const reads: string[] = [];
  const ctx: CgroupReadContext = {
    layout,
    read(file) {
      reads.push(file);
      const content = files[file];
      if (content instanceof Error) throw content;
      return content;
    },
    onError(collector, file, err) {
      errors.push({ collector, file, err });
    },
    readMeminfo() {
      if (meminfo instanceof Error) throw meminfo;
      return meminfo;
    },
  };
  return { ctx, errors, reads };
}

function eio(file: string): Error {
  return Object.assign(new Error(`EIO: i/o error, read '${file}'`), { code: 'EIO' });
}

const V2: CgroupLayout = { mode: 'v2', v1: new Map(), v2: '/cg' };

t.test('v2: one bad file takes out only its own fields', async (t) => {
  const { ctx, errors } = memoryContext(V2, {
    '/cg/a/cpu.stat': 'usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\n',
    '/cg/a/memory.current': eio('/cg/a/memory.current'),
    '/cg/a/memory.peak': '8192\n',
    '/cg/a/memory.stat': 'anon 4096\nfile oops\n',
    '/cg/a/pids.current': 'max\n',
    '/cg/a/pids.max': '100\n',
    '/cg/a/cpu.max': '50000\n',
    '/cg/a/cpu.weight': '100\n',
    '/cg/a/io.stat': '8:0 rbytes=10 wbytes=20\n',
    '/cg/a/cpu.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull garbage\n',
    '/cg/a/memory.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n',
  });
  t.strictSame(readCgroupStats(ctx, '/a'), {
    cpu: { usageSeconds: 2, userSeconds: 1.5, systemSeconds: 0.5 },
    memory: { maxUsageBytes: 8192 },
    blkio: [{ major: 8, minor: 0, bytes: { Read: 10, Write: 20 } }],
    pids: { max: 100 },
    spec: { cpuShares: 2597 },
    pressure: { memory: { someSeconds: 0.000007 } },
  });
  t.strictSame(
    errors.map((e) => [e.collector, e.file, e.err instanceof ParseError ? 'ParseError' : errorMessage(e.err)]),
    [
      ['memory', '/cg/a/memory.current', "EIO: i/o error, read '/cg/a/memory.current'"],
      ['memory', '/cg/a/memory.stat', 'ParseError'],
      ['pids', '/cg/a/pids.current', 'ParseError'],
      ['spec', '/cg/a/cpu.max', 'ParseError'],
      ['pressure', '/cg/a/cpu.pressure', 'ParseError'],
    ],
  );
  const statErr = errors[1]?.err;
  t.ok(statErr instanceof ParseError && statErr.file === '/cg/a/memory.stat');
});

t.test("v2 root: usage is memory.stat anon + file (the kubelet's), swap from /proc/meminfo", async (t) => {
  const meminfo = 'MemTotal: 1000 kB\nMemFree: 400 kB\nSwapTotal: 200 kB\nSwapFree: 50 kB\n';
  const files = { '/cg/memory.stat': 'anon 409600\nfile 204800\ninactive_file 100000\n' };

  const ok = memoryContext(V2, files, meminfo);
  t.strictSame(readCgroupStats(ok.ctx, '/').memory, {
    usageBytes: 409600 + 204800,
    workingSetBytes: 409600 + 204800 - 100000,
    rssBytes: 409600,
    cacheBytes: 204800,
    swapBytes: 150 * 1024,
    inactiveFileBytes: 100000,
  });
  t.strictSame(ok.errors, []);

  const bad = memoryContext(V2, files, 'MemTotal: lots\n');
  t.strictSame(
    readCgroupStats(bad.ctx, '/').memory,
    { usageBytes: 614400, workingSetBytes: 514400, rssBytes: 409600, cacheBytes: 204800, inactiveFileBytes: 100000 },
    'a bad /proc/meminfo takes out the swap only',
  );
  t.strictSame(
    bad.errors.map((e) => [e.collector, e.file, e.err instanceof ParseError]),
    [['memory', '/proc/meminfo', true]],
  );

  const failing = memoryContext(V2, files, eio('/proc/meminfo'));
  readCgroupStats(failing.ctx, '/');
  t.strictSame(
    failing.errors.map((e) => [e.collector, e.file]),
    [['memory', '/proc/meminfo']],
  );

  const absent = memoryContext(V2, {}, undefined);
  t.strictSame(readCgroupStats(absent.ctx, '/'), { spec: {} }, 'no meminfo and no files: nothing, no error');
  t.strictSame(absent.errors, []);

  const small = memoryContext(V2, { '/cg/memory.stat': 'anon 4096\nfile 4096\ninactive_file 999999999\n' }, meminfo);
  t.equal(readCgroupStats(small.ctx, '/').memory?.workingSetBytes, 0, 'working set floors at 0');

  const noFile = memoryContext(V2, { '/cg/memory.stat': 'anon 4096\n' }, meminfo);
  t.equal(readCgroupStats(noFile.ctx, '/').memory?.usageBytes, undefined, 'without `file` the usage is unknown, not anon alone');

  const child = memoryContext(V2, {}, meminfo);
  t.equal(readCgroupStats(child.ctx, '/a').memory, undefined, 'meminfo is only for the root');
});

t.test('v1: errors by collector; working set and blkio rules', async (t) => {
  const layout: CgroupLayout = {
    mode: 'v1',
    v1: new Map([
      ['cpu', '/c'],
      ['cpuacct', '/c'],
      ['memory', '/m'],
      ['blkio', '/b'],
      ['pids', '/p'],
    ]),
  };
  const { ctx, errors, reads } = memoryContext(layout, {
    '/c/x/cpuacct.usage': '1000000000\n',
    '/c/x/cpuacct.usage_percpu': 'garbage here\n',
    '/c/x/cpuacct.stat': 'user 150\nsystem 50\n',
    '/c/x/cpu.cfs_quota_us': '-1\n',
    '/c/x/cpu.cfs_period_us': eio('/c/x/cpu.cfs_period_us'),
    '/m/x/memory.usage_in_bytes': '10000\n',
    '/m/x/memory.stat': 'total_rss 4096\n',
    '/m/x/memory.limit_in_bytes': '9223372036854771712\n',
    '/m/x/memory.soft_limit_in_bytes': '4611686018427387904\n',
    '/m/x/memory.memsw.limit_in_bytes': '1073741824\n',
    '/b/x/blkio.io_service_bytes_recursive': 'Total 0\n',
    '/b/x/blkio.bfq.io_service_bytes_recursive': '8:0 Read 1\n8:0 Write 2\nTotal 3\n',
    '/b/x/blkio.throttle.io_service_bytes_recursive': '8:0 Read 100\nTotal 100\n',
    '/p/x/pids.current': '3\n',
    '/p/x/pids.max': 'max\n',
  });
  t.strictSame(
    readCgroupStats(ctx, '/x'),
    {
      cpu: { usageSeconds: 1, userSeconds: 1.5, systemSeconds: 0.5 },
      memory: { usageBytes: 10000, workingSetBytes: 10000, rssBytes: 4096 },
      blkio: [{ major: 8, minor: 0, bytes: { Read: 1, Write: 2 } }],
      pids: { current: 3, max: 0 },
      spec: { memoryLimitBytes: 0, memoryReservationBytes: 4611686018427387904, memorySwapLimitBytes: 1073741824 },
    },
    'no total_inactive_file: working set = usage; first blkio file with a device row wins',
  );
  t.notOk(reads.includes('/b/x/blkio.throttle.io_service_bytes_recursive'), 'later blkio files are not read');
  t.strictSame(
    errors.map((e) => [e.collector, e.file]),
    [
      ['cpu', '/c/x/cpuacct.usage_percpu'],
      ['spec', '/c/x/cpu.cfs_period_us'],
    ],
  );
});

t.test('v1: memory.stat absent means no working set; no blkio file means no blkio', async (t) => {
  const layout: CgroupLayout = { mode: 'v1', v1: new Map([['memory', '/m']]) };
  const { ctx, errors } = memoryContext(layout, { '/m/x/memory.usage_in_bytes': '10000\n' });
  t.strictSame(readCgroupStats(ctx, '/x'), { memory: { usageBytes: 10000 }, spec: {} });
  t.strictSame(errors, []);
});

t.test('hybrid: v1 stats plus PSI from the unified mount where the cgroup exists there', async (t) => {
  const layout: CgroupLayout = { mode: 'hybrid', v1: new Map([['pids', '/p']]), v2: '/u' };
  const { ctx, errors } = memoryContext(layout, {
    '/p/x/pids.current': '3\n',
    '/u/x/io.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n',
    '/u/pressure': 'unused',
  });
  t.strictSame(readCgroupStats(ctx, '/x'), {
    pids: { current: 3 },
    spec: {},
    pressure: { io: { someSeconds: 1.5, fullSeconds: 0.5 } },
  });
  t.strictSame(readCgroupStats(ctx, '/y'), { spec: {} }, 'not in the unified tree: no pressure key');
  t.strictSame(errors, []);
});

t.test('v2 mode without a cgroup2 mount reads nothing', async (t) => {
  const { ctx, reads } = memoryContext({ mode: 'v2', v1: new Map() }, {});
  t.strictSame(readCgroupStats(ctx, '/'), { spec: {} });
  t.strictSame(reads, []);
});
