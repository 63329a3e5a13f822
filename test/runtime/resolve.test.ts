import t from 'tap';
import { extraLabels, resolveCgroup, sanitizeLabelName, type LabelSource } from '../../src/runtime/resolve.js';
import type { RuntimeContainer, RuntimeName } from '../../src/model/runtime.js';

const UID = '8b6e3e5c-1f0a-4c57-9a1e-2d4f6b7c8d90';
const ID = 'a'.repeat(64);
const SANDBOX = 'b'.repeat(64);

function container(id: string, extra: Partial<RuntimeContainer> = {}): RuntimeContainer {
  return {
    runtime: 'containerd',
    id,
    name: id,
    image: 'docker.io/library/nginx:1.25',
    labels: {
      'io.kubernetes.pod.name': 'web-0',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': UID,
      'io.kubernetes.container.name': 'nginx',
      'app.kubernetes.io/name': 'web',
    },
    env: { path: '/bin', shop_mode: 'prod' },
    kind: 'container',
    networkOwner: false,
    ...extra,
  };
}

/** A factory whose cache holds `containers`; lookups are recorded; ids in `looking` are pending. */
function source(runtime: RuntimeName, containers: RuntimeContainer[], looking: readonly string[] = []): LabelSource & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    runtime,
    lookups,
    pending: (id) => looking.includes(id),
    get: (id) => containers.find((c) => c.id === id),
    lookup: (id) => {
      lookups.push(id);
      return containers.find((c) => c.id === id);
    },
    byCgroupPath: (path) => containers.find((c) => c.cgroupsPath === path),
    pod: (uid) => {
      const c = containers.find((x) => x.labels['io.kubernetes.pod.uid'] === uid);
      return c === undefined ? undefined : { pod: c.labels['io.kubernetes.pod.name'] ?? '', namespace: c.labels['io.kubernetes.pod.namespace'] ?? '' };
    },
  };
}

t.test('containers get the kubelet labels from the runtime that owns them', async (t) => {
  const docker = source('docker', []);
  const containerd = source('containerd', [
    container(ID),
    container(SANDBOX, {
      kind: 'sandbox',
      networkOwner: true,
      labels: { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': UID },
      image: 'registry.k8s.io/pause:3.9',
    }),
  ]);
  const factories = [docker, containerd];
  const systemd = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${ID}.scope`;
  const r = resolveCgroup(systemd, factories);
  t.same(r.labels, { name: ID, image: 'docker.io/library/nginx:1.25', container: 'nginx', pod: 'web-0', namespace: 'shop' });
  t.same(docker.lookups, [], 'a cri-containerd- scope is not looked up in Docker');
  const cgroupfs = resolveCgroup(`/kubepods/burstable/pod${UID}/${SANDBOX}`, factories);
  t.same(cgroupfs.labels, { name: SANDBOX, image: 'registry.k8s.io/pause:3.9', container: '', pod: 'web-0', namespace: 'shop' }, 'the sandbox: container=""');
  t.equal(cgroupfs.container?.networkOwner, true);
});

t.test('pod-level cgroups get pod and namespace, with container and image empty', async (t) => {
  const r = resolveCgroup(`/kubepods/burstable/pod${UID}`, [source('containerd', [container(ID)])]);
  t.same(r.labels, { name: '', image: '', container: '', pod: 'web-0', namespace: 'shop' });
  t.equal(r.container, undefined);
});

t.test('a cache miss degrades to raw labels and schedules a lookup; system cgroups stay raw', async (t) => {
  const docker = source('docker', []);
  const containerd = source('containerd', []);
  const r = resolveCgroup(`/kubepods/besteffort/pod${UID}/${ID}`, [docker, containerd]);
  t.same(r.labels, { name: '', image: '', container: '', pod: '', namespace: '' });
  t.same([docker.lookups, containerd.lookups], [[ID], [ID]], 'a bare id is looked up in every runtime');
  t.same(resolveCgroup('/system.slice/containerd.service', [docker, containerd]).labels.pod, '');
  t.same(
    resolveCgroup(`/kubepods.slice/kubepods-besteffort.slice/crio-conmon-${ID}.scope`, [docker, containerd]).container,
    undefined,
    'conmon is not a workload',
  );
  t.equal(docker.lookups.length, 1, 'conmon and system cgroups cause no lookups');
});

t.test('opt-in container_label_* / container_env_*: one name list per gather, stable under collisions', async (t) => {
  const a = container(ID);
  const b = container(SANDBOX, { labels: { 'app.kubernetes.io/name': 'db', 'app_kubernetes_io/name': 'clash' }, env: { shop_mode: 'dev' } });
  const white = extraLabels([a, undefined, b], {
    storeContainerLabels: false,
    whitelistedContainerLabels: ['app.kubernetes.io/name'],
    envMetadataWhitelist: ['shop_'],
  });
  t.same(white.names, ['container_env_shop_mode', 'container_label_app_kubernetes_io_name']);
  t.same(
    white.values,
    [
      ['prod', 'web'],
      ['', ''],
      ['dev', 'db'],
    ],
    'raw cgroups get empty values',
  );
  const all = extraLabels([a, b], { storeContainerLabels: true, whitelistedContainerLabels: [], envMetadataWhitelist: [] });
  t.ok(all.names.includes('container_label_io_kubernetes_pod_name'));
  t.equal(all.values[1]?.[all.names.indexOf('container_label_app_kubernetes_io_name')], 'db', 'of two keys that sanitize alike, the first in sort order wins');
  t.equal(sanitizeLabelName('io.kubernetes/pod-name'), 'io_kubernetes_pod_name');
  t.same(extraLabels([a], { storeContainerLabels: false, whitelistedContainerLabels: [], envMetadataWhitelist: [] }), { names: [], values: [[]] });
});

t.test('a cgroup the runtime named (containerd spec cgroupsPath) resolves whatever its name', async (t) => {
  const plain = container('not-an-id', { name: 'redis', cgroupsPath: '/default/redis' });
  const r = resolveCgroup('/default/redis', [source('containerd', [plain])]);
  t.equal(r.labels.name, 'redis');
  t.equal(r.container?.id, 'not-an-id');
});

t.test('containerd’s moby copy of a Docker container defers to Docker: its labels, or held while Docker looks it up', async (t) => {
  const path = `/kubepods/burstable/pod${UID}/${ID}`;
  const docker = source('docker', [container(ID, { runtime: 'docker', name: 'k8s_app', image: 'nginx:1.25' })]);
  const mobyCopy = container(ID, { runtime: 'containerd', namespace: 'moby', name: ID, image: '', labels: {}, cgroupsPath: path });
  const moby = source('containerd', [mobyCopy]);
  t.equal(resolveCgroup(path, [docker, moby]).labels.name, 'k8s_app', 'Docker knows it');
  t.equal(resolveCgroup(path, [moby, docker]).labels.name, 'k8s_app', 'whatever the order');
  const looking = source('docker', [], [ID]);
  const held = resolveCgroup(path, [looking, moby]);
  t.same([held.pending, held.labels.name], [true, ''], 'Docker is still looking it up: pending, not labelled by the copy');
  t.same(looking.lookups, [ID], 'and Docker was asked');
  t.equal(resolveCgroup(path, [source('docker', []), moby]).labels.name, ID, 'Docker does not know it (down, or not its own): the copy serves');
  t.equal(resolveCgroup(path, [moby]).labels.name, ID, 'no Docker factory: the copy serves');
  const k8s = source('containerd', [{ ...mobyCopy, namespace: 'k8s.io' }]);
  t.equal(resolveCgroup(path, [source('docker', [], [ID]), k8s]).labels.name, ID, 'a k8s.io container is containerd’s own: no deferring');
});
