/** The container cache keeps its pod and cgroup-path indexes in step through set, delete and replaceAll. */
import t from 'tap';
import { ContainerIndex } from '../../src/runtime/container-index.js';
import { container, hexId } from './fixtures/fake-client.js';

const podLabels = (name: string, uid: string, namespace = 'default') => ({
  'io.kubernetes.pod.uid': uid,
  'io.kubernetes.pod.name': name,
  'io.kubernetes.pod.namespace': namespace,
});

t.test('replacing a container moves it in both indexes', async (t) => {
  const idx = new ContainerIndex();
  const id = hexId(1);
  idx.set(container(id, { labels: podLabels('web-0', 'uid-a'), cgroupsPath: '/kubepods/a' }));
  t.same(idx.pod('uid-a'), { pod: 'web-0', namespace: 'default' });
  t.equal(idx.byCgroupPath('/kubepods/a')?.id, id);

  idx.set(container(id, { labels: podLabels('web-1', 'uid-b', 'shop'), cgroupsPath: 'kubepods-pod9.slice:cri-containerd:abc' }));
  t.equal(idx.size, 1);
  t.equal(idx.pod('uid-a'), undefined, 'the old pod is gone with its only container');
  t.equal(idx.byCgroupPath('/kubepods/a'), undefined, 'the old cgroup path is gone');
  t.same(idx.pod('uid-b'), { pod: 'web-1', namespace: 'shop' });
  t.equal(idx.byCgroupPath('/kubepods.slice/kubepods-pod9.slice/cri-containerd-abc.scope')?.id, id, 'systemd cgroupsPath laid out');

  idx.set(container(id, { labels: {} }));
  t.equal(idx.pod('uid-b'), undefined, 'labels dropped: no pod');
  t.equal(idx.byCgroupPath('/kubepods.slice/kubepods-pod9.slice/cri-containerd-abc.scope'), undefined, 'cgroupsPath dropped');
  t.equal(idx.get(id)?.id, id);
});

t.test('a pod stays while any of its containers is cached; its name follows the latest container', async (t) => {
  const idx = new ContainerIndex();
  idx.set(container(hexId(1), { kind: 'sandbox', labels: podLabels('web-0', 'uid-a') }));
  idx.set(container(hexId(2), { labels: podLabels('web-0-renamed', 'uid-a') }));
  t.same(idx.pod('uid-a'), { pod: 'web-0-renamed', namespace: 'default' });
  idx.delete(hexId(1));
  t.same(idx.pod('uid-a'), { pod: 'web-0-renamed', namespace: 'default' });
  idx.delete(hexId(404));
  t.equal(idx.size, 1, 'deleting an unknown id changes nothing');
  idx.delete(hexId(2));
  t.equal(idx.pod('uid-a'), undefined);
  t.equal(idx.size, 0);
});

t.test('incomplete pod labels are not indexed', async (t) => {
  const idx = new ContainerIndex();
  idx.set(container(hexId(1), { labels: { 'io.kubernetes.pod.uid': 'uid-a', 'io.kubernetes.pod.name': 'web-0' } }));
  idx.set(container(hexId(2), { labels: { ...podLabels('web-1', 'uid-b'), 'io.kubernetes.pod.name': '' } }));
  t.equal(idx.pod('uid-a'), undefined);
  t.equal(idx.pod('uid-b'), undefined);
  idx.delete(hexId(1));
  idx.delete(hexId(2));
  t.equal(idx.size, 0);
});

t.test('a cgroup path taken over by another container stays with it when the first goes', async (t) => {
  const idx = new ContainerIndex();
  idx.set(container('old', { cgroupsPath: '/default/shared' }));
  idx.set(container('new', { cgroupsPath: '/default/shared' }));
  t.equal(idx.byCgroupPath('/default/shared')?.id, 'new');
  idx.delete('old');
  t.equal(idx.byCgroupPath('/default/shared')?.id, 'new');
  idx.delete('new');
  t.equal(idx.byCgroupPath('/default/shared'), undefined);

  idx.set(container('odd', { cgroupsPath: 'not-a-cgroups-path' }));
  t.equal(idx.get('odd')?.id, 'odd', 'an unreadable cgroupsPath is cached, just not indexed');
  t.equal(idx.byCgroupPath('not-a-cgroups-path'), undefined);
});

t.test('replaceAll rebuilds the cache and both indexes from the list alone', async (t) => {
  const idx = new ContainerIndex();
  idx.set(container(hexId(1), { labels: podLabels('a-0', 'uid-a'), cgroupsPath: '/a' }));
  idx.set(container(hexId(2), { labels: podLabels('b-0', 'uid-b'), cgroupsPath: '/b' }));
  idx.replaceAll([
    container(hexId(2), { labels: podLabels('b-0', 'uid-b'), cgroupsPath: '/b2' }),
    container(hexId(3), { labels: podLabels('c-0', 'uid-c'), cgroupsPath: '/c' }),
  ]);
  t.equal(idx.size, 2);
  t.same([...idx.ids()], [hexId(2), hexId(3)]);
  t.equal(idx.has(hexId(1)), false);
  t.equal(idx.pod('uid-a'), undefined);
  t.equal(idx.byCgroupPath('/a'), undefined);
  t.equal(idx.byCgroupPath('/b'), undefined);
  t.equal(idx.byCgroupPath('/b2')?.id, hexId(2));
  t.equal(idx.byCgroupPath('/c')?.id, hexId(3));
  t.same(idx.pod('uid-c'), { pod: 'c-0', namespace: 'default' });

  // Deleting after a replaceAll leaves nothing behind in either index.
  idx.delete(hexId(2));
  idx.delete(hexId(3));
  t.equal(idx.pod('uid-b'), undefined);
  t.equal(idx.pod('uid-c'), undefined);
  t.equal(idx.byCgroupPath('/b2'), undefined);
  t.equal(idx.byCgroupPath('/c'), undefined);
  idx.replaceAll([]);
  t.equal(idx.size, 0);
});
