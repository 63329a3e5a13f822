import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Filesystems, majorMinor } from '../../src/disk/filesystems.js';
import { planUsage } from '../../src/disk/usage.js';
import type { RuntimeContainer } from '../../src/model/runtime.js';
import { repoUrl, runAsNobody } from './nobody.js';

function makedev(major: bigint, minor: bigint): bigint {
  return (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
}

t.test('majorMinor decodes st_dev as glibc does', async (t) => {
  t.equal(majorMinor(makedev(8n, 1n)), '8:1');
  t.equal(majorMinor(makedev(254n, 0n)), '254:0');
  t.equal(majorMinor(makedev(259n, 70000n)), '259:70000');
  t.equal(majorMinor(makedev(4096n, 3n)), '4096:3');
});

t.test('filesystems of this host match df, cached', async (t) => {
  let now = 0;
  const f = new Filesystems({ rootfs: '/', now: () => now });
  const [source = '', size = ''] =
    execFileSync('df', ['-B1', '--output=source,size', '/'], { encoding: 'utf8' }).trim().split('\n')[1]?.trim().split(/\s+/) ?? [];
  const root = f.of('/');
  if (source.startsWith('/dev/')) {
    t.equal(root?.device, source, 'device label: the mount source');
    t.ok(
      f.all().some((x) => x.device === source),
      'block filesystems include the root one',
    );
  }
  t.equal(root?.capacityBytes, Number(size), 'capacity as df reports it');
  t.ok((root?.inodes ?? 0) >= (root?.inodesFree ?? Infinity), 'inodes ≥ free inodes');
  const statfs = fs.statfsSync;
  let calls = 0;
  fs.statfsSync = ((...a: Parameters<typeof statfs>) => {
    calls++;
    return statfs(...a);
  }) as typeof statfs;
  t.teardown(() => {
    fs.statfsSync = statfs;
  });
  f.of('/');
  f.of('/');
  t.equal(calls, 0, 'statfs is cached');
  now += 31_000;
  f.of('/');
  t.equal(calls, 1, 'and refreshed after 30 s');
  t.equal(f.of('/no/such/dir'), undefined);
});

function ctr(over: Partial<RuntimeContainer>): RuntimeContainer {
  return { runtime: 'docker', id: 'a'.repeat(64), name: 'x', image: 'i', labels: {}, kind: 'container', networkOwner: true, ...over };
}

t.test('planUsage: snapshot usage for containerd, walks of upper + log dir for Docker, upper dir for CRI-O', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-usage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const id = 'b'.repeat(64);
  fs.mkdirSync(path.join(dir, 'diff'));
  fs.writeFileSync(path.join(dir, 'diff/data'), Buffer.alloc(64 * 1024, 1));
  fs.mkdirSync(path.join(dir, id));
  fs.writeFileSync(path.join(dir, id, `${id}-json.log`), Buffer.alloc(32 * 1024, 1));
  const noSnapshots = { canMeasureSnapshot: () => false, snapshotUsage: async () => ({ bytes: 0, inodes: 0 }) };
  const signal = new AbortController().signal;

  const docker = planUsage(ctr({ id, upperDir: path.join(dir, 'diff'), logDir: path.join(dir, id) }), noSnapshots, '/');
  const d = await docker?.measure(signal);
  t.equal(docker?.dir, path.join(dir, 'diff'));
  t.ok((d?.bytes ?? 0) >= 96 * 1024, `upper dir + log dir (${d?.bytes})`);
  t.equal(d?.inodes, 4, 'diff, data, the log dir, the log');

  const crio = planUsage(ctr({ runtime: 'crio', upperDir: path.join(dir, 'diff'), logDir: path.join(dir, id) }), noSnapshots, '/');
  t.equal((await crio?.measure(signal))?.inodes, 2, 'CRI-O: the upper dir only');

  let asked = 0;
  const snapshots = {
    canMeasureSnapshot: () => true,
    snapshotUsage: async () => {
      asked++;
      return { bytes: 8192, inodes: 3 };
    },
  };
  const containerd = planUsage(ctr({ runtime: 'containerd', namespace: 'k8s.io', snapshotter: 'overlayfs', snapshotKey: id }), snapshots, '/');
  t.same(await containerd?.measure(signal), { bytes: 8192, inodes: 3 });
  t.equal(asked, 1);
  t.equal(containerd?.dir, '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs');
  t.equal(planUsage(ctr({}), noSnapshots, '/'), undefined, 'nothing known to measure: no plan, no sample');
});

t.test(
  'planUsage: a walk denied permission rejects with the dir and the fix, instead of resolving to the undercount',
  { skip: process.getuid?.() === 0 ? false : 'needs root to chown and to switch to uid 65534' },
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-usage-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.chmodSync(dir, 0o755);
    const upper = path.join(dir, 'diff');
    fs.mkdirSync(path.join(upper, 'home/app/data'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'home/app/data/db'), Buffer.alloc(1 << 20, 1));
    fs.chownSync(path.join(upper, 'home/app/data'), 1000, 1000);
    fs.chmodSync(path.join(upper, 'home/app/data'), 0o700);
    const got = runAsNobody(
      `import { planUsage } from ${repoUrl('src/disk/usage.ts')};\n` +
        `const plan = planUsage({ runtime: 'crio', id: 'x', name: 'x', image: 'i', labels: {}, kind: 'container', networkOwner: true, upperDir: ${JSON.stringify(upper)} },` +
        ` { canMeasureSnapshot: () => false, snapshotUsage: async () => ({ bytes: 0, inodes: 0 }) }, '/');\n` +
        `const out = await plan.measure(new AbortController().signal).then((value) => ({ value }), (e) => ({ name: e.name, code: e.code, message: e.message, dir: e.dir, denied: e.denied, deniedPath: e.deniedPath }));\n` +
        `console.log(JSON.stringify(out));\n`,
    );
    t.same(got, {
      name: 'DiskPermissionError',
      code: 'PODVISOR_DISK_PERMISSION',
      message: `permission denied reading 1 entry under ${upper}: podvisor needs CAP_DAC_READ_SEARCH (see deploy/README.md)`,
      dir: upper,
      denied: 1,
      deniedPath: path.join(upper, 'home/app/data'),
    });
    const asRoot = await planUsage(
      ctr({ runtime: 'crio', upperDir: upper }),
      { canMeasureSnapshot: () => false, snapshotUsage: async () => ({ bytes: 0, inodes: 0 }) },
      '/',
    )?.measure(new AbortController().signal);
    t.equal(asRoot?.inodes, 5, 'with CAP_DAC_READ_SEARCH (root here) the same tree measures: diff, home, app, data, db');
  },
);
