import { ParseError, StartupError } from '../errors.js';
import { hostPath } from '../host/paths.js';
import type { CgroupLayout, CgroupMode } from './types.js';

/**
 * /proc/<pid>/mountinfo (Documentation/filesystems/proc.rst §3.5):
 * `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
 * mount ID, parent ID, major:minor, root, mount point, mount options, optional fields, `-`, fs type, source,
 * super options. Paths escape space, tab, newline and backslash as octal (`\040`, `\011`, `\012`, `\134`).
 */
export interface MountinfoEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem (st_dev of files on it). */
  majorMinor: string;
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

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

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; a line without the ` - ` separator or with too few fields throws ParseError. */
export function parseMountinfo(text: string, file = '/proc/self/mountinfo'): MountinfoEntry[] {
  const result: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    const [id, parent, majorMinor, root, mountPoint, options] = fields;
    const [fsType, source, superOptions] = sep < 0 ? [] : fields.slice(sep + 1);
    if (
      id === undefined ||
      parent === undefined ||
      majorMinor === undefined ||
      !/^\d+:\d+$/.test(majorMinor) ||
      root === undefined ||
      mountPoint === undefined ||
      options === undefined ||
      fsType === undefined ||
      source === undefined ||
      superOptions === undefined ||
      !/^\d+$/.test(id) ||
      !/^\d+$/.test(parent)
    ) {
      throw new ParseError(file, `malformed mountinfo line "${line}"`);
    }
    result.push({
      mountId: Number(id),
      parentId: Number(parent),
      majorMinor,
      root: unescapeOctal(root),
      mountPoint: unescapeOctal(mountPoint),
      options,
      fsType,
      source: unescapeOctal(source),
      superOptions,
    });
  }
  return result;
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
    throw new StartupError(`cannot read cgroup mounts: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
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
