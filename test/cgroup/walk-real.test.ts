import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { listCgroups } from '../../src/cgroup/discover.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import type { CgroupLayout } from '../../src/cgroup/types.js';

// Discovery on real cgroupfs, where leaves are found by their link count (2 + subdirectories) instead of a readdir.
// The test creates its own tree `podvisor-walk-<pid>/...` in the v1 pids hierarchy and on the cgroup2 mount, never
// moves a process, and removes the tree in teardown. It writes to no cgroup it did not create.

const TOP = `/podvisor-walk-${process.pid}`;
// Leaves at several depths, a parent with one child (a pod), a parent with several, a name with a dot.
const TREE = ['/a', '/a/b', '/a/b/c.scope', '/a/d', '/a/e', '/f', '/f/g'].map((p) => `${TOP}${p}`);

const layout = detectLayout(fs.readFileSync('/proc/self/mountinfo', 'utf8'), '/');
const isRoot = process.getuid?.() === 0;
const mounts: [string, string | undefined][] = [
  ['cgroup v1 (pids)', layout.v1.get('pids')],
  ['cgroup2', layout.v2],
];

if (!isRoot && process.env.CI === 'true') {
  t.fail('walk-real needs root in CI to create cgroups; run the suite as root');
} else if (!isRoot) {
  t.plan(0, 'skipped: needs root to create cgroups (CI=true makes this a failure)');
} else {
  for (const [name, root] of mounts) {
    t.test(`${name}: the walk finds every cgroup of a tree, leaves by link count`, async (t) => {
      if (root === undefined) {
        if (process.env.CI === 'true') t.fail(`no ${name} mount on this host`);
        return;
      }
      const dirs = [TOP, ...TREE].map((p) => path.join(root, p));
      t.teardown(() => {
        for (const d of [path.join(root, TOP, 'a', 'd', 'new'), ...dirs].reverse().sort((x, y) => y.length - x.length)) {
          if (fs.existsSync(d)) fs.rmdirSync(d);
        }
      });
      for (const d of dirs) fs.mkdirSync(d);
      t.equal(fs.statSync(path.join(root, TOP, 'a', 'd')).nlink, 2, 'a leaf cgroup has link count 2');
      t.equal(fs.statSync(path.join(root, TOP, 'a')).nlink, 5, 'a parent: 2 + its 3 subdirectories');

      const only: CgroupLayout = name === 'cgroup2' ? { mode: 'v2', v1: new Map(), v2: root } : { mode: 'v1', v1: new Map([['pids', root]]) };
      const readdirs = t.capture(fs, 'readdirSync', fs.readdirSync);
      t.strictSame(listCgroups(only, [`${TOP}/`, TOP]), ['/', TOP, ...TREE].sort());
      const listed = readdirs().map((c) => path.relative(root, String(c.args[0])));
      t.notOk(
        listed.some((d) => d.endsWith('/d') || d.endsWith('/e') || d.endsWith('c.scope') || d.endsWith('/g')),
        'no readdir of a leaf',
      );

      fs.mkdirSync(path.join(root, TOP, 'a', 'd', 'new'));
      t.ok(listCgroups(only, [TOP]).includes(`${TOP}/a/d/new`), 'a leaf that grows a child is walked into');
      fs.rmdirSync(path.join(root, TOP, 'a', 'd', 'new'));
    });
  }
}
