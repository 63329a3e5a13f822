import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { Gatherer } from '../../src/gather/gatherer.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { probeBlkioGroups } from '../../src/cgroup/v1.js';
import { silentLogger } from '../../src/log.js';
import type { CgroupReadContext } from '../../src/cgroup/types.js';
import { FileReader } from '../../src/host/file-reader.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';

const POD = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8b6e3e5c_1f0a_4c57_9a1e_2d4f6b7c8d90.slice';
const APP = `${POD}/cri-containerd-3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4.scope`;
const PAUSE = `${POD}/cri-containerd-be3ea3108af459f5e4bf81fb3a6928eaa31727350cb0abc69fa3d05cd9f9f4cf.scope`;

function gatherer(root: string, sliceMs?: number): Gatherer {
  return new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log: silentLogger,
    machineInfo: async () => PINNED_MACHINE,
    ...(sliceMs === undefined ? {} : { sliceMs }),
  });
}

function fixture(t: Test, name = 'v2-systemd'): string {
  const root = copyFixtureHost(name);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

t.test('network: the host namespace on / only, a shared pod namespace once', async (t) => {
  const snap = await gatherer(fixture(t)).gather();
  const withNet = snap.containers.filter((c) => c.network !== undefined).map((c) => c.id);
  t.ok(withNet.includes('/'), 'the root cgroup reports the host network');
  t.notOk(
    withNet.some((id) => id.startsWith('/system.slice')),
    'host-namespace services do not repeat it',
  );
  const pod = withNet.filter((id) => id.startsWith(`${POD}/`));
  t.equal(pod.length, 1, 'the pod namespace (shared by pause and app) is reported once');
  t.same(
    snap.containers.find((c) => c.id === pod[0])?.network?.map((i) => i.name),
    ['eth0'],
  );
  t.equal(snap.containers.find((c) => c.id === POD)?.network, undefined, 'the pod cgroup has no process of its own');
  t.same(snap.containers.find((c) => c.id === APP)?.processes, { processes: 2, fileDescriptors: 11, sockets: 3 }, 'fds and sockets summed over both processes');
  t.equal(snap.containers[0]?.id, '/', 'sorted, root first');
  t.same(snap.machine, PINNED_MACHINE);
  t.same(snap.collectorErrors, {}, 'a clean tree reads without errors');
});

t.test("network: when init's namespace cannot be read, kthreadd's (pid 2) names the host's, not our own", async (t) => {
  const root = fixture(t);
  // As in a sandbox whose pid 1 cannot be inspected, and a pod (no hostNetwork): our own namespace is not the host's.
  fs.rmSync(path.join(root, 'proc/1/ns/net'));
  fs.mkdirSync(path.join(root, 'proc/2/ns'), { recursive: true });
  fs.symlinkSync('net:[4026531840]', path.join(root, 'proc/2/ns/net'));
  fs.mkdirSync(path.join(root, 'proc/self/ns'), { recursive: true });
  fs.symlinkSync('net:[4026539999]', path.join(root, 'proc/self/ns/net'));
  const snap = await gatherer(root).gather();
  const withNet = snap.containers.filter((c) => c.network !== undefined).map((c) => c.id);
  t.ok(withNet.includes('/'), 'the root cgroup reports the host network');
  t.notOk(
    withNet.some((id) => id.startsWith('/system.slice')),
    'host-namespace services still do not repeat it',
  );
  t.equal(withNet.filter((id) => id.startsWith(`${POD}/`)).length, 1, 'the pod namespace is reported once');
});

t.test('an unparseable file drops its own series, is counted, and the gather succeeds', async (t) => {
  const root = fixture(t);
  fs.writeFileSync(path.join(root, 'sys/fs/cgroup', APP, 'memory.stat'), 'anon twelve\n');
  const g = gatherer(root);
  const snap = await g.gather();
  const app = snap.containers.find((c) => c.id === APP);
  t.equal(app?.cgroup.memory?.rssBytes, undefined, 'memory.stat series gone');
  t.ok((app?.cgroup.memory?.usageBytes ?? 0) > 0, 'memory.current still there');
  t.ok(app?.cgroup.cpu?.usageSeconds !== undefined, 'other collectors untouched');
  t.same(snap.collectorErrors, { memory: 1 });
  const again = await g.gather();
  t.same(again.collectorErrors, { memory: 2 }, 'the counter is cumulative');
});

t.test('a cgroup removed mid-gather is simply not reported, and its errors are not counted', async (t) => {
  const root = fixture(t);
  const victim = path.join(root, 'sys/fs/cgroup', PAUSE);
  const open = fs.openSync;
  t.teardown(() => {
    fs.openSync = open;
  });
  // Remove the pause container's cgroup the moment its first file is opened.
  fs.openSync = ((file: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode) => {
    if (String(file).startsWith(`${victim}/`) && fs.existsSync(victim)) fs.rmSync(victim, { recursive: true, force: true });
    return open(file, flags, mode);
  }) as typeof fs.openSync;
  const snap = await gatherer(root).gather();
  t.notOk(
    snap.containers.some((c) => c.id === PAUSE),
    'not reported',
  );
  t.ok(
    snap.containers.some((c) => c.id === APP),
    'its sibling is',
  );
  t.same(snap.collectorErrors, {}, 'no errors for the vanished cgroup');
});

t.test('an unreadable subtree is counted and skipped; an unreadable root fails the gather clearly', async (t) => {
  const root = fixture(t);
  const readdir = fs.readdirSync;
  t.teardown(() => {
    fs.readdirSync = readdir;
  });
  let denied = path.join(root, 'sys/fs/cgroup/system.slice');
  fs.readdirSync = ((dir: fs.PathLike, opts?: unknown) => {
    if (String(dir) === denied) throw Object.assign(new Error(`EACCES: permission denied, scandir '${denied}'`), { code: 'EACCES' });
    return readdir(dir, opts as { withFileTypes: true });
  }) as typeof fs.readdirSync;
  const g = gatherer(root);
  const snap = await g.gather();
  t.notOk(snap.containers.some((c) => c.id.startsWith('/system.slice')));
  t.ok(snap.containers.some((c) => c.id === APP));
  t.same(snap.collectorErrors, { discovery: 1 });
  denied = path.join(root, 'sys/fs/cgroup');
  await t.rejects(g.gather(), /no cgroup hierarchy could be listed/);
});

t.test('sliced gathers (on the HTTP thread) yield to the event loop and give the same result', async (t) => {
  const root = fixture(t);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const sliced = await gatherer(root, 0).gather();
  clearInterval(timer);
  t.ok(ticks > 0, `timers ran during the gather (${ticks})`);
  const whole = await gatherer(root).gather();
  t.same(
    sliced.containers.map((c) => [c.id, c.cgroup]),
    whole.containers.map((c) => [c.id, c.cgroup]),
  );
});

t.test('v1 blkio: the root decides which files are worth reading', async (t) => {
  const root = fixture(t, 'v1-cgroupfs');
  const layout = loadLayout(root);
  const reader = new FileReader();
  const ctx = (read: (f: string) => string | undefined): CgroupReadContext => ({ layout, read, onError() {}, readMeminfo: () => undefined });
  const blkio = layout.v1.get('blkio') ?? '';
  const probeBlkioFiles = (c: CgroupReadContext): string[] | undefined => probeBlkioGroups(c)?.map((g) => g.bytes);
  t.same(
    probeBlkioFiles(ctx((f) => reader.read(f))),
    ['blkio.bfq.io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive'].slice(
      fs.readFileSync(path.join(blkio, 'blkio.bfq.io_service_bytes_recursive'), 'utf8').includes(':') ? 0 : 1,
    ),
    'CFQ (missing at the root) is dropped; BFQ only if it has rows',
  );
  fs.writeFileSync(path.join(blkio, 'blkio.bfq.io_service_bytes_recursive'), 'Total 0\n');
  t.same(probeBlkioFiles(ctx((f) => reader.read(f))), ['blkio.throttle.io_service_bytes_recursive'], 'BFQ without rows at the root: skipped everywhere');
  fs.writeFileSync(path.join(blkio, 'blkio.throttle.io_service_bytes_recursive'), 'Total 0\n');
  t.same(
    probeBlkioFiles(ctx((f) => reader.read(f))),
    ['blkio.bfq.io_service_bytes_recursive'],
    'no rows anywhere: the first existing file, read as "no device"',
  );
  t.equal(
    probeBlkioFiles(
      ctx(() => {
        throw new Error('EIO');
      }),
    ),
    undefined,
    'an unreadable root gives no hint',
  );
  t.same(
    probeBlkioFiles({ layout: { mode: 'v1', v1: new Map() }, read: () => undefined, onError() {}, readMeminfo: () => undefined }),
    [],
    'no blkio controller',
  );
});
