/**
 * Disk usage against the real daemons: a Docker container that wrote 5,000 files and 20 MiB is measured within 2% of
 * `du` over the same dirs (upper dir + /var/lib/docker/containers/<id>); a containerd container's usage comes from
 * Snapshots/Usage. Scrapes never wait for a walk: until the first measurement a container has no fs sample.
 */
import t from 'tap';
import crypto from 'node:crypto';
import { requireDaemon, removeCtrContainer, run } from '../support/daemons.js';
import { startExporter } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { poll, until } from '../support/poll.js';

/** Scrapes and CLI calls are costly: every 500 ms, for up to 60 s (first walks on a loaded machine take a while). */
const SLOW = { everyMs: 500, timeoutMs: 60_000 };

function sample(body: string, name: string, id: string): { device: string; value: number } | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{id="${id}"`));
  if (line === undefined) return undefined;
  return { device: /device="([^"]*)"/.exec(line)?.[1] ?? '', value: Number(line.split(' ').pop()) };
}

t.test('Docker: container_fs_usage_bytes within 2% of du over the same dirs', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const uid = crypto.randomUUID();
  const name = `podvisor-disk-${uid.slice(0, 8)}`;
  t.teardown(async () => {
    await run('docker', ['rm', '-f', name], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(`/kubepods/burstable/pod${uid}`);
  });
  const script =
    'mkdir /data && cd /data && i=0; while [ $i -lt 5000 ]; do echo $i > f$i; i=$((i+1)); done; dd if=/dev/urandom of=/data/big bs=1M count=20 2>/dev/null; sync; touch /ready; exec sleep 600';
  const id = (
    await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        name,
        '--cgroup-parent',
        `/kubepods/burstable/pod${uid}`,
        '--label',
        'io.kubernetes.pod.name=disk-0',
        '--label',
        'io.kubernetes.pod.namespace=podvisor-e2e',
        '--label',
        'io.kubernetes.container.name=writer',
        'podvisor-test:1',
        'sh',
        '-c',
        script,
      ],
      { timeoutMs: 60_000 },
    )
  ).stdout.trim();
  await until('the container to finish writing', async () => await run('docker', ['exec', name, 'ls', '/ready']).then(() => true), SLOW);
  const cg = `/kubepods/burstable/pod${uid}/${id}`;
  const ex = await startExporter(['--disk-usage-interval=2s', `--raw-cgroup-prefix-allowlist=${cg}`, '--containerd-address=', '--crio-endpoint=']);
  t.teardown(() => ex.stop());
  const body = await poll(
    'a disk usage sample',
    async () => {
      const b = await (await fetch(`${ex.url}/metrics`)).text();
      return sample(b, 'container_fs_usage_bytes', cg) === undefined ? undefined : b;
    },
    SLOW,
  );
  const upper = (await run('docker', ['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name])).stdout.trim();
  const du = Number((await run('du', ['-s', '-B1', '-x', '-c', upper, `/var/lib/docker/containers/${id}`])).stdout.trim().split('\n').pop()?.split('\t')[0]);
  const ours = sample(body, 'container_fs_usage_bytes', cg);
  t.ok(ours !== undefined && du > 20 * 1024 * 1024, `du says ${du} bytes`);
  t.ok(Math.abs((ours?.value ?? 0) - du) / du <= 0.02, `podvisor ${ours?.value} vs du ${du}: within 2%`);
  t.match(ours?.device ?? '', /^\/dev\//, 'the device holding the upper dir');
  t.ok((sample(body, 'container_fs_inodes_total', cg)?.value ?? 0) >= 5000, 'inodes used counts the 5,000 files');
  t.ok((sample(body, 'container_fs_limit_bytes', cg)?.value ?? 0) > du, 'limit: the backing filesystem size');
  t.ok((sample(body, 'container_fs_usage_bytes', '/')?.value ?? 0) > 0, 'the root cgroup reports the filesystem totals');
  t.match(body, /\npodvisor_disk_walks_total\{result="ok"\} [1-9]/);
  t.match(body, /\npodvisor_disk_walk_files_total [1-9]/);
});

t.test('containerd: usage from Snapshots/Usage, no walk', async (t) => {
  if (!(await requireDaemon(t, 'containerd'))) return;
  const id = crypto.randomBytes(32).toString('hex');
  const uid = crypto.randomUUID();
  const cg = `/kubepods/besteffort/pod${uid}/${id}`;
  t.teardown(async () => {
    await removeCtrContainer(id);
    removeCgroupDirs(cg);
    removeCgroupDirs(`/kubepods/besteffort/pod${uid}`);
  });
  await run(
    'ctr',
    [
      '-n',
      'k8s.io',
      'run',
      '-d',
      '--cgroup',
      cg,
      '--label',
      'io.kubernetes.pod.name=snap-0',
      '--label',
      'io.kubernetes.pod.namespace=podvisor-e2e',
      '--label',
      'io.kubernetes.container.name=writer',
      'docker.io/library/podvisor-test:1',
      id,
      'sh',
      '-c',
      'dd if=/dev/zero of=/blob bs=1M count=8 2>/dev/null; touch /ready; exec sleep 600',
    ],
    { timeoutMs: 60_000 },
  );
  // The exporter starts once the 8 MiB are written, so its first measurement is taken after them.
  let probe = 0;
  await until(
    'the container to finish writing',
    async () => run('ctr', ['-n', 'k8s.io', 'task', 'exec', '--exec-id', `ready-${probe++}`, id, 'sh', '-c', 'test -f /ready']).then(() => true),
    SLOW,
  );
  const ex = await startExporter(['--disk-usage-interval=2s', `--raw-cgroup-prefix-allowlist=${cg}`, '--docker-endpoint=', '--crio-endpoint=']);
  t.teardown(() => ex.stop());
  const body = await poll(
    'a snapshot usage sample',
    async () => {
      const b = await (await fetch(`${ex.url}/metrics`)).text();
      return sample(b, 'container_fs_usage_bytes', cg) === undefined ? undefined : b;
    },
    SLOW,
  );
  const ctrUsage = (await run('ctr', ['-n', 'k8s.io', 'snapshots', 'usage', id])).stdout;
  t.comment(ctrUsage.trim());
  t.ok((sample(body, 'container_fs_usage_bytes', cg)?.value ?? 0) >= 8 * 1024 * 1024, 'the 8 MiB written show up');
  t.match(body, /\npodvisor_disk_walk_files_total 0\n/, 'no file was walked: the runtime measured it');
});
