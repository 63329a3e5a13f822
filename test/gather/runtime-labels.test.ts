/**
 * Runtime factories in a gather: labels on container and pod cgroups, network only on the namespace owner, opt-in
 * container_label_* on every series, and a CRI-O container held back on a cache miss and labelled once looked up
 * (through the real CRI-O client against a fake CRI-O).
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { Gatherer } from '../../src/gather/gatherer.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { renderSnapshot } from '../../src/metrics/index.js';
import { assemble, encodeFamilies } from '../../src/metrics/exposition.js';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { CrioClient } from '../../src/runtime/crio/client.js';
import { silentLogger } from '../../src/log.js';
import type { ExtraLabelOptions } from '../../src/runtime/resolve.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';
import { container, FakeClient } from '../runtime/fixtures/fake-client.js';
import { until } from '../support/poll.js';
import { FakeCrio } from '../runtime/fixtures/fake-crio.js';

const UID = '8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';
const POD = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`;
const APP_ID = '3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4';
const PAUSE_ID = 'be3ea3108af459f5e4bf81fb3a6928eaa31727350cb0abc69fa3d05cd9f9f4cf';
const APP = `${POD}/cri-containerd-${APP_ID}.scope`;
const PAUSE = `${POD}/cri-containerd-${PAUSE_ID}.scope`;
const POD_LABELS = { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': UID };

function fixture(t: Test): string {
  const root = copyFixtureHost('v2-systemd');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

function gatherer(root: string, runtimes: RuntimeFactory[], extraLabels?: ExtraLabelOptions): Gatherer {
  return new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    runtimes,
    ...(extraLabels === undefined ? {} : { extraLabels }),
  });
}

t.test('containerd pod: labels, pod cgroup, network on the sandbox only, opt-in labels', async (t) => {
  const root = fixture(t);
  const client = new FakeClient({ runtime: 'containerd', version: { version: '1.7.0-beta.3', apiVersion: '' } });
  client.add(
    container(APP_ID, {
      runtime: 'containerd',
      name: APP_ID,
      image: 'docker.io/library/nginx:1.25',
      labels: { ...POD_LABELS, 'io.kubernetes.container.name': 'nginx', tier: 'front "end"' },
      kind: 'container',
      networkOwner: false,
    }),
    container(PAUSE_ID, { runtime: 'containerd', name: PAUSE_ID, image: 'registry.k8s.io/pause:3.9', labels: POD_LABELS, kind: 'sandbox', networkOwner: true }),
  );
  const factory = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('registration', () => factory.status().up);

  const snap = await gatherer(root, [factory], { storeContainerLabels: false, whitelistedContainerLabels: ['tier'], envMetadataWhitelist: [] }).gather();
  const byId = (id: string) => snap.containers.find((c) => c.id === id);
  t.same(byId(APP)?.labels, { name: APP_ID, image: 'docker.io/library/nginx:1.25', container: 'nginx', pod: 'web-0', namespace: 'shop' });
  t.same(byId(PAUSE)?.labels, { name: PAUSE_ID, image: 'registry.k8s.io/pause:3.9', container: '', pod: 'web-0', namespace: 'shop' });
  t.same(byId(POD)?.labels, { name: '', image: '', container: '', pod: 'web-0', namespace: 'shop' });
  t.equal(byId(APP)?.network, undefined, 'the app container shares the sandbox namespace: no network series');
  t.same(
    byId(PAUSE)?.network?.map((i) => i.name),
    ['eth0'],
    'the sandbox reports the pod network, though it sorts after the app',
  );
  t.same(
    snap.runtimes?.map((r) => [r.runtime, r.up, r.parsedVersion]),
    [['containerd', true, '1.7.0']],
  );

  const text = assemble([encodeFamilies(renderSnapshot(snap))], 'text').toString('utf8');
  const series = text.split('\n').filter((l) => l.startsWith('container_'));
  const missing = series.filter((l) => !/,container_label_tier="(?:[^"\\]|\\.)*"[,}]/.test(l));
  t.same(missing, [], 'every container series carries the opt-in label');
  t.match(
    text,
    new RegExp(
      `container_memory_usage_bytes\\{id="${APP.replace(/\./g, '\\.')}",name="${APP_ID}",image="docker\\.io/library/nginx:1\\.25",container="nginx",pod="web-0",namespace="shop",container_label_tier="front \\\\"end\\\\""\\} \\d+`,
    ),
    'escaped label values',
  );
  t.match(text, /\npodvisor_runtime_up\{runtime="containerd"\} 1\n/);
  t.match(text, /\npodvisor_runtime_info\{runtime="containerd",version="1\.7\.0-beta\.3",parsed_version="1\.7\.0",api_version=""\} 1\n/);
});

t.test('CRI-O: a miss holds the container back until the background inspect fills its labels', async (t) => {
  const root = fixture(t);
  const id = 'c'.repeat(64);
  const scope = `${POD}/crio-${id}.scope`;
  fs.cpSync(path.join(root, 'sys/fs/cgroup', APP), path.join(root, 'sys/fs/cgroup', scope), { recursive: true });
  fs.cpSync(path.join(root, 'sys/fs/cgroup', APP), path.join(root, 'sys/fs/cgroup', `${POD}/crio-conmon-${id}.scope`), { recursive: true });
  const crio = await new FakeCrio().start();
  t.teardown(() => crio.stop());
  crio.containers.set(id, {
    name: `k8s_app_web-0_shop_${UID}_0`,
    pid: 4242,
    image: 'quay.io/example/app:2',
    // eslint-disable-next-line no-loss-of-precision -- a nanosecond timestamp past 2^53, as the runtime sends it
    created_time: 1700000000123456789,
    labels: { ...POD_LABELS, 'io.kubernetes.container.name': 'app' },
    annotations: { 'io.kubernetes.cri-o.ContainerType': 'container' },
    log_path: '/var/log/pods/x/app/0.log',
    root: '/var/lib/containers/storage/overlay/l/merged',
  });
  const factory = new RuntimeFactory(new CrioClient({ endpoint: crio.socketPath, timeoutMs: 1000 }), { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => factory.close());
  factory.start();
  await until('CRI-O registration', () => factory.status().up);
  const g = gatherer(root, [factory]);
  const first = await g.gather();
  t.equal(
    first.containers.find((c) => c.id === scope),
    undefined,
    'first gather: being looked up, so left out rather than exposed unlabelled',
  );
  t.same(first.labelHold, { held: 1, expired: 0 }, 'and counted as held');
  await until('the background inspect', () => factory.get(id) !== undefined);
  const second = await g.gather();
  t.same(second.containers.find((c) => c.id === scope)?.labels, {
    name: `k8s_app_web-0_shop_${UID}_0`,
    image: 'quay.io/example/app:2',
    container: 'app',
    pod: 'web-0',
    namespace: 'shop',
  });
  t.equal(second.containers.find((c) => c.id === scope)?.startTimeSeconds, 1700000000, 'start time from the runtime');
  t.equal(second.containers.find((c) => c.id === `${POD}/crio-conmon-${id}.scope`)?.labels.pod, '', 'conmon stays raw');
  t.equal(crio.requests.filter((r) => r.url === `/containers/${id}`).length, 1, 'inspected once, then served from cache');
});

t.test('disk usage: absent until measured, then from containerd snapshots, also for Docker with the containerd store', async (t) => {
  const { DiskScheduler } = await import('../../src/disk/scheduler.js');
  const { Filesystems } = await import('../../src/disk/filesystems.js');
  const root = fixture(t);
  class Snapshotting extends FakeClient {
    snapshotUsage(_ns: string, _snapshotter: string, key: string): Promise<{ size: number; inodes: number }> {
      return Promise.resolve({ size: key === PAUSE_ID ? 4096 : 1_048_576, inodes: 7 });
    }
  }
  const docker = new FakeClient({ runtime: 'docker' });
  // Docker with the containerd image store: no upper dir in inspect.
  docker.add(container(PAUSE_ID, { runtime: 'docker', name: 'pause', labels: POD_LABELS, kind: 'sandbox' }));
  const containerd = new Snapshotting({ runtime: 'containerd' });
  containerd.add(
    container(APP_ID, {
      runtime: 'containerd',
      name: APP_ID,
      labels: POD_LABELS,
      networkOwner: false,
      namespace: 'k8s.io',
      snapshotter: 'overlayfs',
      snapshotKey: APP_ID,
    }),
    container(PAUSE_ID, { runtime: 'containerd', name: PAUSE_ID, labels: {}, namespace: 'moby', snapshotter: 'overlayfs', snapshotKey: PAUSE_ID }),
  );
  const factories = [docker, containerd].map((c) => new RuntimeFactory(c, { callTimeoutMs: 1000, log: silentLogger }));
  const scheduler = new DiskScheduler({ concurrency: 2, intervalMs: 60_000 });
  t.teardown(async () => {
    await scheduler.close();
    await Promise.all(factories.map((f) => f.close()));
  });
  for (const f of factories) f.start();
  await until('registration', () => factories.every((f) => f.status().up));
  scheduler.start();
  const g = new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    runtimes: factories,
    disk: { scheduler, filesystems: new Filesystems({ rootfs: '/' }) },
  });
  const first = await g.gather();
  t.equal(first.containers.find((c) => c.id === APP)?.fs, undefined, 'absent (not 0) until the first measurement');
  await until('measurements', () => scheduler.get(APP_ID) !== undefined && scheduler.get(PAUSE_ID) !== undefined);
  const second = await g.gather();
  t.match(second.containers.find((c) => c.id === APP)?.fs, { usageBytes: 1_048_576, inodes: 7 });
  t.match(
    second.containers.find((c) => c.id === PAUSE)?.fs,
    { usageBytes: 4096, inodes: 7 },
    'the Docker container measured through containerd’s moby snapshot',
  );
  t.equal(second.containers.find((c) => c.id === POD)?.fs, undefined, 'the pod cgroup has no writable layer of its own');
});
