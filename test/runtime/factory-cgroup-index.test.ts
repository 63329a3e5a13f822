import t from 'tap';
import { RuntimeFactory } from '../../src/runtime/factory.js';
import { silentLogger } from '../../src/log.js';
import { container, FakeClient, hexId } from './fixtures/fake-client.js';
import { until } from '../support/poll.js';
import type { RuntimeContainer } from '../../src/model/runtime.js';

t.test('containers are found by the cgroup path the runtime named, and dropped with them', async (t) => {
  const client = new FakeClient({ runtime: 'containerd' });
  const id = hexId(7);
  client.add(
    container(id, { runtime: 'containerd', cgroupsPath: `kubepods-besteffort-pod9.slice:cri-containerd:${id}` }),
    container('plain', { runtime: 'containerd', cgroupsPath: '/default/plain' }),
  );
  const f = new RuntimeFactory(client, { callTimeoutMs: 1000, log: silentLogger });
  t.teardown(() => f.close());
  f.start();
  await until('registration', () => f.status().up);
  t.equal(f.byCgroupPath(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/cri-containerd-${id}.scope`)?.id, id);
  t.equal(f.byCgroupPath('/default/plain')?.id, 'plain');
  t.equal(f.byCgroupPath('/default/other'), undefined);
  client.containers.delete('plain');
  client.push({ id: 'plain', action: 'destroy' });
  await until('destroy', () => f.get('plain') === undefined);
  t.equal(f.byCgroupPath('/default/plain'), undefined, 'the index follows the cache');
});

t.test('a resync keeps what the list cannot show (CRI-O lists nothing) until an inspect says it is gone', async (t) => {
  class NoList extends FakeClient {
    override list(): Promise<RuntimeContainer[]> {
      this.listCalls++;
      return Promise.resolve([]);
    }
  }
  const client = new NoList({ runtime: 'crio', noEvents: true });
  const id = hexId(9);
  client.add(container(id, { runtime: 'crio' }));
  const f = new RuntimeFactory(client, { callTimeoutMs: 1000, resyncMs: 20, log: silentLogger });
  t.teardown(() => f.close());
  f.start();
  await until('registration', () => f.status().up);
  f.lookup(id);
  await until('inspect after the miss', () => f.get(id) !== undefined);
  const lists = client.listCalls;
  await until('three resyncs', () => client.listCalls >= lists + 3);
  t.ok(f.get(id) !== undefined, 'still cached after resyncs that listed nothing');
  client.containers.delete(id);
  await until('dropped once an inspect says it is gone', () => f.get(id) === undefined);
  t.pass('gone');
});
