import t from 'tap';
import { pagesizeName, readHugepageSizes } from '../../src/gather/hugepages.js';
import { detectOomSource } from '../../src/gather/oom-source.js';
import { isPodCgroup } from '../../src/gather/pod-cgroups.js';
import { SchedTracker, subtreeSums } from '../../src/gather/sched.js';
import { readUlimits } from '../../src/gather/ulimits.js';
import { readSockets } from '../../src/gather/sockets.js';
import type { Pending } from '../../src/gather/collector-errors.js';
import { ParseError } from '../../src/errors.js';
import { fixtureHost } from '../cgroup/fixtures/context.js';

t.test("huge page sizes as cgroup files and cAdvisor's pagesize label name them", async (t) => {
  t.equal(pagesizeName('hugepages-2048kB'), '2MB');
  t.equal(pagesizeName('hugepages-1048576kB'), '1GB');
  t.equal(pagesizeName('hugepages-64kB'), '64KB');
  t.equal(pagesizeName('hugepages-32768kB'), '32MB');
  t.equal(pagesizeName('hugepages-1536kB'), '1536KB', 'not a whole number of MB: kB');
  t.equal(pagesizeName('nr_hugepages'), undefined);
  t.strictSame(readHugepageSizes(fixtureHost('v2-systemd')), ['2MB', '1GB'], 'smallest first');
  t.strictSame(readHugepageSizes('/nonexistent'), [], 'no hugepages directory: none');
});

t.test('the OOM source: the kernel counter where /proc/vmstat has oom_kill (Linux >= 4.13), else /dev/kmsg', async (t) => {
  t.equal(detectOomSource('nr_free_pages 1\noom_kill 0\nnuma_hit 3\n'), 'kernel');
  t.equal(detectOomSource('nr_free_pages 1\nnuma_hit 3\n'), 'kmsg');
  t.equal(detectOomSource(undefined), 'kmsg', 'no /proc/vmstat: the kernel log');
});

t.test('pod cgroups, both drivers', async (t) => {
  t.ok(isPodCgroup('/kubepods/burstable/pod0d3e5b7a-9c21-4f68-b4a0-6e1f2c8d7b35'));
  t.ok(isPodCgroup('/kubepods/pod0d3e5b7a-9c21-4f68-b4a0-6e1f2c8d7b35'), 'guaranteed, cgroupfs');
  t.ok(isPodCgroup('/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8b6e3e5c_1f0a_4c57_9a1e_2d4f6b7c8d90.slice'));
  t.ok(isPodCgroup('/kubepods.slice/kubepods-pod5f0c9e41_2a7b_4d36_8e15_b9a4c7d2e603.slice'), 'guaranteed, systemd');
  t.notOk(isPodCgroup('/kubepods/burstable'));
  t.notOk(isPodCgroup('/kubepods.slice/kubepods-burstable.slice'));
  t.notOk(isPodCgroup('/system.slice/podman.service'));
  t.notOk(isPodCgroup('/docker/44b317d826b2d53c344ee49e3fe4686613870c72d811dfd8ec1645d4579f6a47'));
});

t.test("schedstat sums keep an exited process's last reading, as cAdvisor's", async (t) => {
  const files = new Map<string, string>([
    ['/proc/10/schedstat', '1000000000 500000000 10\n'],
    ['/proc/11/schedstat', '2000000000 0 5\n'],
  ]);
  const read = (f: string): string | undefined => files.get(f);
  const tracker = new SchedTracker();
  const pending: Pending = [];
  t.equal(tracker.read('/a', [], '/proc', read, pending), undefined, 'nothing read yet: absent, not 0');
  t.strictSame(tracker.read('/a', [10, 11], '/proc', read, pending), { runSeconds: 3, runqueueSeconds: 0.5, runPeriods: 15 });
  files.delete('/proc/11/schedstat');
  files.set('/proc/10/schedstat', '1500000000 500000000 12\n');
  t.strictSame(
    tracker.read('/a', [10, 11], '/proc', read, pending),
    { runSeconds: 3.5, runqueueSeconds: 0.5, runPeriods: 17 },
    'pid 11 exited after the listing',
  );
  t.strictSame(tracker.read('/a', [10], '/proc', read, pending), { runSeconds: 3.5, runqueueSeconds: 0.5, runPeriods: 17 }, 'and stays counted');
  files.set('/proc/10/schedstat', 'garbage\n');
  t.equal(tracker.read('/a', [10], '/proc', read, pending), undefined, 'a malformed file: no sample');
  t.equal(pending.length, 1);
  t.ok(pending[0]?.[2] instanceof ParseError);
  t.equal(pending[0]?.[0], 'sched');
  tracker.keepOnly(new Set());
  t.equal(tracker.read('/a', [], '/proc', read, []), undefined, 'a forgotten cgroup starts over');
});

t.test('ulimits and sockets: missing is absent, malformed is a counted error', async (t) => {
  const pending: Pending = [];
  t.equal(
    readUlimits(() => undefined, '/proc', 1, pending),
    undefined,
    'process gone',
  );
  t.equal(
    readUlimits(() => 'nonsense', '/proc', 1, pending),
    undefined,
  );
  t.strictSame(
    pending.map(([c, f]) => [c, f]),
    [['process', '/proc/1/limits']],
  );
  const sockets: Pending = [];
  t.equal(
    readSockets(() => undefined, '/proc', 7, { tcp: true, udp: true }, sockets),
    undefined,
    'no files (no IPv4 or IPv6 at all): nothing',
  );
  t.equal(
    readSockets(
      () => {
        throw new Error('EIO');
      },
      '/proc',
      7,
      { tcp: true, udp: false },
      sockets,
    ),
    undefined,
  );
  t.strictSame(
    sockets.map(([c, f]) => [c, f]),
    [
      ['network', '/proc/7/net/tcp'],
      ['network', '/proc/7/net/tcp6'],
    ],
    'udp off: its files are not read',
  );
});

t.test('schedstat sums over a subtree: own processes plus every reported cgroup below', async (t) => {
  const one = { runSeconds: 1, runqueueSeconds: 0.5, runPeriods: 2 };
  const ids = ['/', '/kubepods', '/kubepods/pod1', '/kubepods/pod1/a', '/kubepods/pod1/b', '/system.slice/x'];
  const own = new Map([
    ['/', one],
    ['/kubepods/pod1/a', one],
    ['/kubepods/pod1/b', { runSeconds: 2, runqueueSeconds: 0, runPeriods: 1 }],
    ['/system.slice/x', one],
  ]);
  const total = subtreeSums(own, ids);
  t.strictSame(total.get('/kubepods/pod1'), { runSeconds: 3, runqueueSeconds: 0.5, runPeriods: 3 }, 'a pod: its containers');
  t.strictSame(total.get('/kubepods'), { runSeconds: 3, runqueueSeconds: 0.5, runPeriods: 3 });
  t.strictSame(total.get('/'), { runSeconds: 5, runqueueSeconds: 1.5, runPeriods: 7 }, '/ adds /system.slice/x through its unreported parent');
  t.strictSame(total.get('/kubepods/pod1/a'), one, 'a leaf: its own');
  t.equal(subtreeSums(new Map(), ids).size, 0, 'nothing read: nothing');
});
