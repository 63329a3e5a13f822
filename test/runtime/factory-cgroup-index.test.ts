import t from 'tap';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { silentLogger } from '../../src/log.js';
import { container, FakeClient, hexId, until } from './fixtures/fake-client.js';

t.test('containers are found by the cgroup path the runtime named, and dropped with them', async (t) => {
  const client = new FakeClient({ runtime: 'containerd' });
  const id = hexId(7);
  client.add(container(id, { runtime: 'containerd', cgroupsPath: `kubepods-besteffort-pod9.slice:cri-containerd:${id}` }), container('plain', { runtime: 'containerd', cgroupsPath: '/default/plain' }));
  const f = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => f.close());
  f.start();
  await until(() => f.status().up, 2000, 'registration');
  t.equal(f.byCgroupPath(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/cri-containerd-${id}.scope`)?.id, id);
  t.equal(f.byCgroupPath('/default/plain')?.id, 'plain');
  t.equal(f.byCgroupPath('/default/other'), undefined);
  client.containers.delete('plain');
  client.push({ id: 'plain', action: 'destroy' });
  await until(() => f.get('plain') === undefined, 2000, 'destroy');
  t.equal(f.byCgroupPath('/default/plain'), undefined, 'the index follows the cache');
});
