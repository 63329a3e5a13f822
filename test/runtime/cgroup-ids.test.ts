import t from 'tap';
import { parseCgroupPath, type CgroupIds } from '../../src/runtime/cgroup-ids.js';

const ID = '3f2a9c1b7e5d4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b';
const UID = '0b4f3a52-9c1d-4e8f-a6b7-1c2d3e4f5a6b';
const UID_ = UID.replaceAll('-', '_');
const STATIC = '6a1e4b2c9d8f7e6a5b4c3d2e1f0a9b8c'; // md5 uid of a static pod
const V1 = '/sys/fs/cgroup/memory'; // cgroup v1: under each controller
const V2 = '/sys/fs/cgroup'; // cgroup v2: unified

// [path (relative to the hierarchy), expected, what it is] — the cgroup names the cgroupfs and systemd drivers give containers of each runtime (src/runtime/cgroup-ids.ts lists them).
const ROWS: ReadonlyArray<readonly [string, CgroupIds, string]> = [
  // containerd CRI
  [`/kubepods/burstable/pod${UID}/${ID}`, { id: ID, podUid: UID }, 'containerd CRI, cgroupfs'],
  [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
    { id: ID, hint: 'containerd', podUid: UID },
    'containerd CRI, systemd',
  ],
  // CRI-O
  [`/kubepods/burstable/pod${UID}/crio-${ID}`, { id: ID, hint: 'crio', podUid: UID }, 'CRI-O, cgroupfs'],
  [`/kubepods/burstable/pod${UID}/crio-conmon-${ID}`, { hint: 'crio', podUid: UID, conmon: true }, 'CRI-O conmon, cgroupfs'],
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${ID}.scope`, { id: ID, hint: 'crio', podUid: UID }, 'CRI-O, systemd'],
  [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`,
    { hint: 'crio', podUid: UID, conmon: true },
    'CRI-O conmon, systemd',
  ],
  [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-${ID}`,
    { id: ID, hint: 'crio', podUid: UID },
    'CRI-O sandbox-only cgroup (no .scope): an id; inspect answers 404 and the caller reports it raw',
  ],
  // cri-dockerd / dockershim
  [`/kubepods/besteffort/pod${UID}/${ID}`, { id: ID, podUid: UID }, 'cri-dockerd, cgroupfs (no hint: same shape as containerd)'],
  [
    `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/docker-${ID}.scope`,
    { id: ID, hint: 'docker', podUid: UID },
    'cri-dockerd, systemd',
  ],
  // plain Docker
  [`/docker/${ID}`, { id: ID, hint: 'docker' }, 'plain Docker, cgroupfs'],
  [`/system.slice/docker-${ID}.scope`, { id: ID, hint: 'docker' }, 'plain Docker, systemd'],
  [`/my-parent/${ID}`, { id: ID }, 'Docker with a CgroupParent: no hint'],
  [`/user.slice/user-1000.slice/user@1000.service/docker-${ID}.scope`, { id: ID, hint: 'docker' }, 'rootless Docker, systemd'],
  [`/docker/${ID}/docker/${'a'.repeat(64)}`, { id: 'a'.repeat(64), hint: 'docker' }, 'Docker in Docker: the innermost'],
  // plain containerd
  [`/default/${ID}`, { id: ID }, 'ctr / nerdctl, cgroupfs'],
  [`/k8s.io/${ID}`, { id: ID }, 'containerd namespace k8s.io'],
  // Podman
  [`/libpod_parent/libpod-${ID}`, { id: ID }, 'Podman, cgroupfs (not a runtime of ours: no hint)'],
  [`/machine.slice/libpod-${ID}.scope`, { id: ID }, 'Podman, systemd'],
  [`/machine.slice/libpod-conmon-${ID}.scope`, { conmon: true }, 'Podman conmon'],
  // Pod cgroups
  [`/kubepods/burstable/pod${UID}`, { podUid: UID }, 'Burstable pod, cgroupfs'],
  [`/kubepods/besteffort/pod${UID}`, { podUid: UID }, 'BestEffort pod, cgroupfs'],
  [`/kubepods/pod${UID}`, { podUid: UID }, 'Guaranteed pod, cgroupfs'],
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`, { podUid: UID }, 'Burstable pod, systemd'],
  [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`, { podUid: UID }, 'BestEffort pod, systemd'],
  [`/kubepods.slice/kubepods-pod${UID_}.slice`, { podUid: UID }, 'Guaranteed pod, systemd'],
  [`/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`, { id: ID, hint: 'containerd', podUid: UID }, 'Guaranteed container, systemd'],
  // Static pods: 32 hex, no dashes
  [`/kubepods/burstable/pod${STATIC}`, { podUid: STATIC }, 'static pod, cgroupfs'],
  [`/kubepods/pod${STATIC}/${ID}`, { id: ID, podUid: STATIC }, 'static pod container, cgroupfs'],
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC}.slice`, { podUid: STATIC }, 'static pod, systemd'],
  [
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${STATIC}.slice/crio-${ID}.scope`,
    { id: ID, hint: 'crio', podUid: STATIC },
    'static pod container, systemd',
  ],
  // Not containers
  ['/', {}, 'root'],
  ['', {}, 'empty'],
  ['/kubepods', {}, 'kubepods'],
  ['/kubepods/burstable', {}, 'QoS cgroup, cgroupfs'],
  ['/kubepods.slice/kubepods-burstable.slice', {}, 'QoS cgroup, systemd'],
  ['/system.slice', {}, 'system slice'],
  ['/system.slice/kubelet.service', {}, 'kubelet'],
  ['/system.slice/containerd.service', {}, 'containerd daemon'],
  ['/system.slice/docker.service', {}, 'docker daemon'],
  ['/system.slice/crio.service', {}, 'crio daemon'],
  ['/user.slice/user-1000.slice/session-3.scope', {}, 'login session'],
  ['/init.scope', {}, 'systemd itself'],
  ['/docker', {}, 'the docker parent'],
  [`/system.slice/docker-${ID}.mount`, {}, '.mount unit with an id-like name'],
  [`/system.slice/run-containerd-io.containerd.runtime.v2.task-k8s.io-${ID}-rootfs.mount`, {}, 'containerd rootfs mount'],
  [`/system.slice/var-lib-kubelet-pods-${UID_}-volumes-kubernetes.io\\x7eprojected-kube\\x2dapi\\x2daccess.mount`, {}, 'kubelet volume mount'],
  [`/kubepods/burstable/pod${UID}/${ID}.mount`, {}, '.mount even under a pod'],
  // Near misses
  [`/docker/${ID.slice(1)}`, {}, '63 hex'],
  [`/docker/${ID}0`, {}, '65 hex'],
  [`/docker/${ID.toUpperCase()}`, {}, 'upper-case hex'],
  [`/system.slice/containerd-${ID}.scope`, {}, 'unknown prefix'],
  [`/kubepods/burstable/pods${UID}`, {}, 'pods<uid> is not a pod segment'],
  [`/kubepods/burstable/pod${UID.slice(1)}`, {}, 'short uid'],
  [`/kubepods/burstable/pod${UID}x`, {}, 'uid with a tail'],
];

t.test('every runtime cgroup name shape, as a relative path and under cgroup v1 and v2 mount points', async (t) => {
  for (const [path, want, what] of ROWS) {
    t.same(parseCgroupPath(path), want, `${what}: ${path}`);
    if (path === '' || path === '/') continue;
    t.same(parseCgroupPath(V1 + path), want, `${what} (v1 absolute)`);
    t.same(parseCgroupPath(V2 + path), want, `${what} (v2 absolute)`);
    t.same(parseCgroupPath(`${path}/`), want, `${what} (trailing slash)`);
  }
});

t.test('the result has only the keys that apply', async (t) => {
  t.strictSame(Object.keys(parseCgroupPath(`/kubepods/burstable/pod${UID}/${ID}`)).sort(), ['id', 'podUid']);
  t.strictSame(Object.keys(parseCgroupPath('/system.slice/kubelet.service')), []);
});

t.test('underscored systemd uids come back dashed; dashed and mixed separators too', async (t) => {
  t.equal(parseCgroupPath(`/kubepods.slice/kubepods-pod${UID_}.slice`).podUid, UID);
  const mixed = '0b4f3a52_9c1d-4e8f_a6b7-1c2d3e4f5a6b';
  t.equal(parseCgroupPath(`/kubepods/pod${mixed}`).podUid, UID);
});

t.test('never throws', async (t) => {
  for (const v of [undefined, null, 42, {}] as unknown[]) t.same(parseCgroupPath(v as string), {}, JSON.stringify(v) ?? 'undefined');
  t.same(parseCgroupPath('//////'), {});
});

t.test('cgroupFromCgroupsPath: OCI linux.cgroupsPath to podvisor cgroup paths', async (t) => {
  const { cgroupFromCgroupsPath } = await import('../../src/runtime/cgroup-ids.js');
  const id = 'a'.repeat(64);
  t.equal(cgroupFromCgroupsPath(`/kubepods/besteffort/pod1/${id}`), `/kubepods/besteffort/pod1/${id}`);
  t.equal(cgroupFromCgroupsPath('/default/redis/'), '/default/redis');
  t.equal(
    cgroupFromCgroupsPath(`kubepods-burstable-pod1234_5678.slice:cri-containerd:${id}`),
    `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-${id}.scope`,
  );
  t.equal(cgroupFromCgroupsPath(`system.slice:docker:${id}`), `/system.slice/docker-${id}.scope`);
  t.equal(cgroupFromCgroupsPath(`:crio:${id}`), `/crio-${id}.scope`);
  t.equal(cgroupFromCgroupsPath('kubepods.slice::kubepods-pod1.slice'), '/kubepods.slice/kubepods-pod1.slice');
  t.equal(cgroupFromCgroupsPath('nonsense'), undefined);
  t.equal(cgroupFromCgroupsPath('a:b'), undefined);
  t.equal(cgroupFromCgroupsPath('notaslice:p:n'), undefined);
});
