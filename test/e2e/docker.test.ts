/**
 * Against the real Docker Engine: Kubernetes-shaped containers (`--cgroup-parent /kubepods/burstable/pod<uid>`)
 * show every core family, with the six kubelet labels, in the exporter's /metrics; a removed one disappears.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requireDaemon, run } from '../support/daemons.js';
import { startExporter } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { until } from '../support/poll.js';

const IMAGE = 'podvisor-test:1';
/** The six kubelet labels, in podvisor's order, with any values (runtime factories fill them in). */
const BASE =
  /^\{id="(?:[^"\\]|\\.)*",name="(?:[^"\\]|\\.)*",image="(?:[^"\\]|\\.)*",container="(?:[^"\\]|\\.)*",pod="(?:[^"\\]|\\.)*",namespace="(?:[^"\\]|\\.)*"[,}]/;

/** Every sample line of `name` for cgroup `id`; each must carry the six labels. */
function samples(body: string, name: string, id: string): string[] {
  const start = `${name}{id="${id}"`;
  return body.split('\n').filter((l) => l.startsWith(start) && (l[start.length] === '}' || l[start.length] === ',') && BASE.test(l.slice(name.length)));
}

function value(line: string | undefined): number {
  return Number(line?.split(' ').pop());
}

t.test('Docker containers in /kubepods get every core family with the six labels', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const uid = crypto.randomUUID();
  const parent = `/kubepods/burstable/pod${uid}`;
  const names: string[] = [];
  t.teardown(async () => {
    if (names.length > 0) await run('docker', ['rm', '-f', ...names], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(parent);
  });
  const start = async (name: string, extra: string[], cmd: string): Promise<string> => {
    names.push(name);
    const { stdout } = await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        name,
        '--cgroup-parent',
        parent,
        '--label',
        `io.kubernetes.pod.name=${name}`,
        '--label',
        'io.kubernetes.pod.namespace=podvisor-e2e',
        '--label',
        `io.kubernetes.pod.uid=${uid}`,
        '--label',
        'io.kubernetes.container.name=app',
        ...extra,
        IMAGE,
        'sh',
        '-c',
        cmd,
      ],
      { timeoutMs: 60_000 },
    );
    return stdout.trim();
  };
  const suffix = uid.slice(0, 8);
  // One limited container doing real I/O and holding a socket; one unlimited and idle.
  // On cgroup v1 this kernel accounts block I/O in blk-throttle only for cgroups that have a throttle rule (and in
  // bfq only under the bfq scheduler), so the busy container gets a generous rule; I/O is then visible per cgroup.
  const disk = (await run('sh', ['-c', 'df --output=source /var/lib/docker | tail -1'])).stdout.trim();
  const busy = await start(
    `podvisor-e2e-busy-${suffix}`,
    ['--memory', '64m', '--cpus', '0.5', '--device-write-bps', `${disk}:1gb`, '--device-read-bps', `${disk}:1gb`],
    'dd if=/dev/zero of=/tmp/f bs=1M count=8 conv=fsync 2>/dev/null; dd if=/tmp/f of=/dev/null bs=1M iflag=direct 2>/dev/null; touch /tmp/dd-done; nc -l -p 8080 & exec sleep 3600',
  );
  const idle = await start(`podvisor-e2e-idle-${suffix}`, [], 'exec sleep 3600');

  const ex = await startExporter([`--raw-cgroup-prefix-allowlist=/kubepods/burstable/pod${uid}`]);
  t.teardown(() => ex.stop());
  // Both dd runs done (their I/O is synchronous: fsync, O_DIRECT, so it is accounted by now) and nc listening on 8080
  // (0x1F90), seen from inside the container, not through podvisor.
  await until(
    'the busy container to finish its I/O and listen on 8080',
    () =>
      run('docker', ['exec', names[0] ?? '', 'sh', '-c', 'test -f /tmp/dd-done && cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":1F90 "']).then(
        () => true,
      ),
    { everyMs: 250, timeoutMs: 60_000 },
  );
  const body = await (await fetch(`${ex.url}/metrics`)).text();

  const busyId = `${parent}/${busy}`;
  const idleId = `${parent}/${idle}`;
  const ids = [...new Set([...body.matchAll(/\{id="([^"]*)"/g)].map((m) => m[1]))].sort();
  t.same(ids, [`/`, parent, busyId, idleId].sort(), 'the allowlist narrows to / and this pod (machine series aside)');

  const always = [
    'container_cpu_usage_seconds_total',
    'container_cpu_user_seconds_total',
    'container_cpu_system_seconds_total',
    'container_memory_usage_bytes',
    'container_memory_max_usage_bytes',
    'container_memory_working_set_bytes',
    'container_memory_rss',
    'container_memory_cache',
    'container_memory_mapped_file',
    'container_memory_swap',
    'container_memory_failcnt',
    'container_memory_failures_total',
    'container_processes',
    'container_threads',
    'container_threads_max',
    'container_file_descriptors',
    'container_sockets',
    'container_spec_cpu_period',
    'container_spec_cpu_shares',
    'container_spec_memory_limit_bytes',
    'container_spec_memory_reservation_limit_bytes',
    'container_spec_memory_swap_limit_bytes',
    'container_start_time_seconds',
    'container_last_seen',
    'container_network_receive_bytes_total',
    'container_network_transmit_bytes_total',
    'container_network_receive_packets_total',
    'container_network_transmit_packets_total',
    'container_network_receive_errors_total',
    'container_network_transmit_errors_total',
    'container_network_receive_packets_dropped_total',
    'container_network_transmit_packets_dropped_total',
  ];
  for (const id of [busyId, idleId]) {
    for (const name of always) t.ok(samples(body, name, id).length > 0, `${name} for ${id.slice(-12)}`);
    const unified = `/sys/fs/cgroup/unified${id}`;
    if (fs.existsSync(`${unified}/cpu.pressure`)) {
      for (const r of ['cpu', 'memory', 'io']) {
        for (const k of ['stalled', 'waiting']) t.equal(samples(body, `container_pressure_${r}_${k}_seconds_total`, id).length, 1);
      }
    }
    t.same(
      samples(body, 'container_network_receive_bytes_total', id).map((l) => /interface="([^"]+)"/.exec(l)?.[1]),
      ['eth0'],
      'eth0 only: lo is skipped',
    );
  }
  // The limits we asked Docker for.
  t.equal(value(samples(body, 'container_spec_memory_limit_bytes', busyId)[0]), 64 * 1024 * 1024);
  t.equal(value(samples(body, 'container_spec_cpu_quota', busyId)[0]), 50_000);
  t.equal(value(samples(body, 'container_spec_cpu_period', busyId)[0]), 100_000);
  t.equal(value(samples(body, 'container_spec_memory_limit_bytes', idleId)[0]), 0, 'unlimited memory is 0, as cAdvisor');
  t.equal(samples(body, 'container_spec_cpu_quota', idleId).length, 0, 'no quota, no sample');
  t.ok(samples(body, 'container_cpu_cfs_periods_total', busyId).length === 1, 'cfs counters with a quota');
  t.equal(samples(body, 'container_cpu_cfs_periods_total', idleId).length, 0, 'no cfs counters without one');
  // Processes and sockets: sh (pid 1 of the container), nc and sleep; nc listens.
  t.ok(value(samples(body, 'container_processes', busyId)[0]) >= 2);
  t.ok(value(samples(body, 'container_sockets', busyId)[0]) >= 1, 'the listening nc socket is counted');
  // dd wrote 8 MiB with fsync: the write bytes show up on a device.
  const writes = samples(body, 'container_fs_writes_bytes_total', busyId);
  t.ok(writes.length >= 1, 'blkio rows for the container that wrote');
  t.ok(
    writes.some((l) => value(l) >= 8 * 1024 * 1024),
    `at least 8 MiB written: ${writes.join(' | ')}`,
  );
  t.ok(
    samples(body, 'container_fs_reads_bytes_total', busyId).some((l) => value(l) >= 8 * 1024 * 1024),
    'and 8 MiB read back',
  );
  t.match(writes[0] ?? '', new RegExp(`device="${disk}"`), 'the device label names the disk, from /proc/partitions');
  t.ok(samples(body, 'container_blkio_device_usage_total', busyId).some((l) => l.includes('operation="Write"')));
  // The pod cgroup itself is reported too, without network (it has no process of its own).
  t.ok(samples(body, 'container_memory_usage_bytes', parent).length === 1);
  t.equal(samples(body, 'container_network_receive_bytes_total', parent).length, 0);

  // The real node's whole body is promtool-clean.
  if (await requireDaemon(t, 'promtool')) {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    t.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'promtool check metrics: no findings');
    t.equal(lint.status, 0);
  }

  // 20 concurrent scrapes of the real process share gathers. The 20 connections are opened first (keep-alive), so the
  // scrapes usually arrive together; but on a loaded machine they can still trickle in over more than a gather. So:
  // whatever the load, every scrape starts a gather or joins the one in flight (exact accounting, each round); and a
  // round in which the 20 cost at most 2 gathers is awaited, for up to 10 rounds. Without sharing, none would be.
  const counter = (b: string, series: string): number => Number(new RegExp(`\\n${series} (\\d+)\\n`).exec(b)?.[1] ?? NaN);
  const gathers = (b: string): number => counter(b, 'podvisor_gathers_total\\{result="success"\\}') + counter(b, 'podvisor_gathers_total\\{result="error"\\}');
  const coalesced = (b: string): number => counter(b, 'podvisor_scrapes_coalesced_total');
  const scrape = async (): Promise<string> => (await fetch(`${ex.url}/metrics`)).text();
  await Promise.all(Array.from({ length: 20 }, () => fetch(`${ex.url}/healthz`).then((r) => r.text())));
  const rounds: { gathers: number; coalesced: number; allHaveBusy: boolean }[] = [];
  await until(
    'a round of 20 concurrent scrapes that costs at most 2 gathers',
    async () => {
      const before = await scrape();
      const bodies = await Promise.all(Array.from({ length: 20 }, scrape));
      // `after` runs a gather of its own (nothing is in flight once the 20 answered): the − 1 below.
      const after = await scrape();
      const round = {
        gathers: gathers(after) - gathers(before) - 1,
        coalesced: coalesced(after) - coalesced(before),
        allHaveBusy: bodies.every((b) => b.includes(busyId)),
      };
      rounds.push(round);
      return round.gathers <= 2;
    },
    {
      everyMs: 0,
      timeoutMs: 120_000,
      describe: () => JSON.stringify(rounds),
      giveUp: () => (rounds.length >= 10 ? `10 rounds: ${JSON.stringify(rounds)}` : undefined),
    },
  );
  t.comment(`rounds (gathers, coalesced): ${rounds.map((r) => `${r.gathers}+${r.coalesced}`).join(', ')}`);
  t.ok(
    rounds.every((r) => r.allHaveBusy),
    'every concurrent scrape got the containers',
  );
  t.same(
    rounds.map((r) => r.gathers + r.coalesced),
    rounds.map(() => 20),
    'each of the 20 scrapes started a gather or joined the one in flight',
  );

  // A removed container is simply gone at the next scrape.
  await run('docker', ['rm', '-f', names[1] ?? ''], { timeoutMs: 60_000 });
  const after = await (await fetch(`${ex.url}/metrics`)).text();
  t.equal(samples(after, 'container_memory_usage_bytes', idleId).length, 0, 'removed container disappears');
  t.equal(samples(after, 'container_memory_usage_bytes', busyId).length, 1);
});
