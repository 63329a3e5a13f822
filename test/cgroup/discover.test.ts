import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { cgroupDirs, cgroupExists, listCgroups, procsFile } from '../../src/cgroup/discover.js';
import type { CgroupLayout } from '../../src/cgroup/types.js';
import { errnoCode } from '../../src/guards.js';

// Walk behaviour on small temporary trees; the fixture host trees are covered in v1-fixture and v2-fixture tests.

function v2Layout(root: string): CgroupLayout {
  return { mode: 'v2', v1: new Map(), v2: root };
}

t.test('only directories are cgroups', async (t) => {
  const root = t.testdir({
    'cgroup.procs': '',
    'cpu.stat': 'usage_usec 1\n',
    a: { 'cgroup.procs': '', b: { 'cgroup.procs': '' } },
    c: { 'cgroup.procs': '' },
  });
  t.strictSame(listCgroups(v2Layout(root), []), ['/', '/a', '/a/b', '/c']);
});

t.test('sorting is by code unit, root first', async (t) => {
  const root = t.testdir({ b: {}, 'a-x': {}, a: { z: {} }, A: {} });
  t.strictSame(listCgroups(v2Layout(root), []), ['/', '/A', '/a', '/a-x', '/a/z', '/b']);
});

t.test('a directory that vanishes mid-walk is skipped silently', async (t) => {
  const root = t.testdir({ keep: { child: {} }, vanish: { deeper: {} } });
  const real = fs.readdirSync;
  t.capture(fs, 'readdirSync', (dir: fs.PathLike, opts: { withFileTypes: true }) => {
    if (String(dir) === path.join(root, 'vanish')) fs.rmSync(String(dir), { recursive: true });
    return real(dir, opts);
  });
  const errors: string[] = [];
  t.strictSame(
    listCgroups(v2Layout(root), [], (dir) => errors.push(dir)),
    ['/', '/keep', '/keep/child'],
  );
  t.strictSame(errors, [], 'ENOENT is not an error');
});

t.test('other walk errors go to onError and skip that subtree; without onError they throw', async (t) => {
  const root = t.testdir({ ok: {}, locked: { inside: {} } });
  const real = fs.readdirSync;
  const locked = path.join(root, 'locked');
  t.capture(fs, 'readdirSync', (dir: fs.PathLike, opts: { withFileTypes: true }) => {
    if (String(dir) === locked) throw Object.assign(new Error(`EACCES: permission denied, scandir '${locked}'`), { code: 'EACCES' });
    return real(dir, opts);
  });
  const errors: { dir: string; code: string | undefined }[] = [];
  t.strictSame(
    listCgroups(v2Layout(root), [], (dir, err) => errors.push({ dir, code: errnoCode(err) })),
    ['/', '/ok'],
  );
  t.strictSame(errors, [{ dir: locked, code: 'EACCES' }]);
  t.throws(() => listCgroups(v2Layout(root), []), { code: 'EACCES' });
});

t.test('a hierarchy root that does not exist gives nothing', async (t) => {
  const root = t.testdir({});
  t.strictSame(listCgroups(v2Layout(path.join(root, 'missing')), []), []);
  t.strictSame(listCgroups({ mode: 'v2', v1: new Map() }, []), [], 'v2 mode without a v2 mount');
});

t.test('v1: union of the controller trees we read, each mount once; others ignored', async (t) => {
  const root = t.testdir({
    'cpu,cpuacct': { kubepods: { pod1: {} } },
    memory: { kubepods: { pod1: {} }, 'user.slice': {} },
    pids: { kubepods: { pod1: {} } },
    devices: { 'system.slice': { 'sshd.service': {} } },
    freezer: { 'frozen-only': {} },
    systemd: { 'session-1.scope': {} },
  });
  const dir = (name: string): string => path.join(root, name);
  const layout: CgroupLayout = {
    mode: 'v1',
    v1: new Map([
      ['cpu', dir('cpu,cpuacct')],
      ['cpuacct', dir('cpu,cpuacct')],
      ['memory', dir('memory')],
      ['pids', dir('pids')],
      ['devices', dir('devices')],
      ['freezer', dir('freezer')],
    ]),
  };
  const walked = t.capture(fs, 'readdirSync', fs.readdirSync);
  t.strictSame(listCgroups(layout, []), ['/', '/kubepods', '/kubepods/pod1', '/user.slice']);
  t.equal(walked().filter((c) => String(c.args[0]) === dir('cpu,cpuacct')).length, 1, 'the co-mounted cpu,cpuacct dir is walked once');
  for (const other of ['freezer', 'devices']) {
    t.notOk(
      walked().some((c) => String(c.args[0]).startsWith(dir(other))),
      `${other} is not a hierarchy podvisor reads stats from`,
    );
  }

  t.strictSame(cgroupDirs(layout, '/kubepods/pod1'), [
    path.join(dir('cpu,cpuacct'), 'kubepods/pod1'),
    path.join(dir('memory'), 'kubepods/pod1'),
    path.join(dir('pids'), 'kubepods/pod1'),
  ]);
  t.ok(cgroupExists(layout, '/user.slice'), 'exists in one hierarchy is enough');
  t.notOk(cgroupExists(layout, '/system.slice/sshd.service'), 'only in devices, whose files podvisor does not read');
  t.notOk(cgroupExists(layout, '/frozen-only'), 'only in a hierarchy we do not read');
  t.equal(procsFile(layout, '/kubepods/pod1'), path.join(dir('pids'), 'kubepods/pod1/cgroup.procs'), 'pids first');
  t.equal(procsFile(layout, '/user.slice'), path.join(dir('memory'), 'user.slice/cgroup.procs'));
  t.equal(procsFile(layout, '/nowhere'), undefined);
});

t.test('hybrid reads v1 trees, not the unified one', async (t) => {
  const root = t.testdir({ cpu: { a: {} }, unified: { 'only-unified': {} } });
  const layout: CgroupLayout = {
    mode: 'hybrid',
    v1: new Map([['cpu', path.join(root, 'cpu')]]),
    v2: path.join(root, 'unified'),
  };
  t.strictSame(listCgroups(layout, []), ['/', '/a']);
  t.strictSame(cgroupDirs(layout, '/a'), [path.join(root, 'cpu', 'a')]);
  t.equal(procsFile(layout, '/a'), path.join(root, 'cpu', 'a', 'cgroup.procs'));
  t.notOk(cgroupExists(layout, '/only-unified'));
});
