import t from 'tap';
import path from 'node:path';
import { hostPath } from '../../src/host/paths.js';

t.test('hostPath is path.join: same result for every combination of awkward segments', async (t) => {
  const segs = ['', '/', '.', '..', 'a', 'b.c', '/x', 'x/', '//', '/./', 'a/../b', '.hidden', '..x', 'x..', '...', '/sys/fs/cgroup', 'memory.stat'];
  const roots = ['/', '/rootfs', '/rootfs/', 'relative', '', '/a/..', ...segs];
  let cases = 0;
  const mismatches: string[] = [];
  for (const root of roots) {
    for (const a of segs) {
      for (const b of segs) {
        for (const parts of [[a], [a, b], ...segs.slice(0, 6).map((c) => [a, b, c])]) {
          cases++;
          const want = path.join(root, ...parts);
          const got = hostPath(root, ...parts);
          if (got !== want) mismatches.push(`${JSON.stringify([root, ...parts])}: ${got} instead of ${want}`);
        }
      }
    }
  }
  t.ok(cases > 30_000, `${cases} combinations`);
  t.same(mismatches.slice(0, 5), [], 'no combination differs from path.join');
  t.equal(hostPath('/rootfs', '/sys/fs/cgroup', 'kubepods/pod1', 'memory.stat'), '/rootfs/sys/fs/cgroup/kubepods/pod1/memory.stat');
  t.equal(hostPath('/', 'proc', '12', 'fd'), '/proc/12/fd');
});
