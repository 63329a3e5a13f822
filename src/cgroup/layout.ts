/**
 * Where the cgroup hierarchies are mounted (a CgroupLayout), found once at startup in the host's mount table, and the
 * startup checks that fail fast, with one line, when they cannot be used.
 */
import fs from 'node:fs';
import { StartupError, errorMessage } from '../errors.js';
import { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import { parseMountinfo, type MountinfoEntry } from '../proc/mountinfo.js';
import type { CgroupLayout, CgroupMode } from './types.js';

/** The v1 controllers the kernel knows (kernel/cgroup); anything else in the super options is a mount option. */
const V1_CONTROLLERS: ReadonlySet<string> = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'blkio',
  'perf_event',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
]);

/** Where podvisor reads the host's mounts from, for messages: the init process sees the host's mount namespace. */
export function mountinfoPath(rootfs: string): string {
  return hostPath(rootfs, '/proc/1/mountinfo');
}

/** The v1 controllers in a `cgroup` mount's super options (`rw,cpu,cpuacct` → cpu, cpuacct); named hierarchies give none. */
export function v1Controllers(superOptions: string): string[] {
  return superOptions.split(',').filter((opt) => V1_CONTROLLERS.has(opt));
}

/**
 * Finds the cgroup hierarchies in the host's mountinfo. Mount points are host paths, resolved under `rootfs`.
 * v1: each controller → its mount dir (first mount wins; `name=systemd` and other named hierarchies are ignored).
 * v2: the first `cgroup2` mount. Mode: `v2` with only cgroup2, `v1` with only v1 controllers, `hybrid` with both.
 * Throws StartupError when there is no usable cgroup mount, or the text is not mountinfo.
 */
export function detectLayout(mountinfoText: string, rootfs: string, file = mountinfoPath(rootfs)): CgroupLayout {
  let entries: MountinfoEntry[];
  try {
    entries = parseMountinfo(mountinfoText, file);
  } catch (err) {
    throw new StartupError(`cannot read cgroup mounts: ${errorMessage(err)}`, { cause: err });
  }
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const entry of entries) {
    if (entry.fsType === 'cgroup2') {
      v2 ??= hostPath(rootfs, entry.mountPoint);
    } else if (entry.fsType === 'cgroup') {
      for (const controller of v1Controllers(entry.superOptions)) {
        if (!v1.has(controller)) v1.set(controller, hostPath(rootfs, entry.mountPoint));
      }
    }
  }
  const mode: CgroupMode | undefined = v1.size > 0 ? (v2 === undefined ? 'v1' : 'hybrid') : v2 === undefined ? undefined : 'v2';
  if (mode === undefined) throw new StartupError(`no cgroup or cgroup2 mount with controllers found in ${file}`);
  return v2 === undefined ? { mode, v1 } : { mode, v1, v2 };
}

/** Finds the cgroup mounts: the host's view (/proc/1) first, then our own. */
export function loadLayout(rootfs: string): CgroupLayout {
  const candidates = [hostPath(rootfs, 'proc/1/mountinfo'), hostPath(rootfs, 'proc/self/mountinfo')];
  const reader = new FileReader();
  let lastErr: unknown;
  for (const file of candidates) {
    let text: string | undefined;
    try {
      text = reader.read(file);
    } catch (err) {
      lastErr = err;
      continue;
    }
    if (text !== undefined) return detectLayout(text, rootfs, file);
  }
  const why = lastErr === undefined ? 'not found' : errorMessage(lastErr);
  throw new StartupError(`cannot read the mount table (${candidates.join(' or ')}): ${why}`);
}

/** Fails fast, with one line, when the cgroup hierarchy is there but unreadable. */
export function checkLayoutReadable(layout: CgroupLayout): void {
  const dirs = [...new Set([...layout.v1.values(), ...(layout.v2 === undefined ? [] : [layout.v2])])];
  for (const dir of dirs) {
    try {
      fs.readdirSync(dir);
    } catch (err) {
      throw new StartupError(
        `cannot read cgroup hierarchy ${dir}: ${errorMessage(err)} (podvisor needs read access to /sys/fs/cgroup; run it as root or with the host's /sys mounted)`,
      );
    }
  }
}
