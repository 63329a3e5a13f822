/**
 * What a cgroup's path says about the container in it, for the cgroupfs and systemd drivers on
 * cgroup v1 (`/sys/fs/cgroup/<controller>/…`) and v2 (`/sys/fs/cgroup/…`). Pure: no file or daemon is touched.
 *
 * Container leaves:
 *   containerd CRI  `/kubepods/burstable/pod<uid>/<id>`        `…/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`
 *   CRI-O           `/kubepods/burstable/pod<uid>/crio-<id>`   `…pod<uid_>.slice/crio-<id>.scope` (conmon: `crio-conmon-<id>`)
 *   cri-dockerd     `/kubepods/burstable/pod<uid>/<id>`        `…pod<uid_>.slice/docker-<id>.scope`
 *   plain Docker    `/docker/<id>`                             `/system.slice/docker-<id>.scope`
 *   Podman          `/libpod_parent/libpod-<id>`               `machine.slice/libpod-<id>.scope` (conmon: `libpod-conmon-<id>.scope`)
 * Pod cgroups: `/kubepods[/burstable|/besteffort]/pod<uid>` and `…/kubepods[-burstable|-besteffort]-pod<uid_>.slice`;
 * static pods have a 32-hex uid without dashes.
 */

import { CONTAINER_ID_PATTERN } from '../guards.js';

export type RuntimeHint = 'docker' | 'containerd' | 'crio';

export interface CgroupIds {
  /** The 64-hex container id, when the leaf is a container. */
  id?: string;
  /**
   * The runtime the leaf's prefix names (`cri-containerd-`, `crio-`, `docker-`, or a bare id under `/docker/`);
   * absent when the name does not say (a bare `<id>` under cgroupfs is containerd CRI or cri-dockerd; Podman).
   */
  hint?: RuntimeHint;
  /** The pod UID (dashed form) from any `pod<uid>` segment: set on containers and on the pod cgroup itself. */
  podUid?: string;
  /** A conmon (container monitor) cgroup: a runtime helper, not a workload; it has no id. */
  conmon?: boolean;
}

const LEAF_RE = new RegExp(`^(?:(cri-containerd|crio|docker|libpod)-)?(${CONTAINER_ID_PATTERN})(?:\\.scope)?$`);
const CONMON_RE = new RegExp(`^(crio|libpod)-conmon-${CONTAINER_ID_PATTERN}(?:\\.scope)?$`);
/** A whole segment: `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_>.slice` (systemd). */
const POD_RE = /^(?:.*-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?:\.slice)?$/;

const PREFIX_HINT: Readonly<Record<string, RuntimeHint | undefined>> = {
  'cri-containerd': 'containerd',
  crio: 'crio',
  docker: 'docker',
  libpod: undefined,
};

/** The innermost `pod<uid>` segment's uid, with `_` (systemd escaping) turned back into `-`. */
function podUidOf(segments: readonly string[]): string | undefined {
  for (let i = segments.length - 1; i >= 0; i--) {
    const m = POD_RE.exec(segments[i] ?? '');
    if (m?.[1] !== undefined) return m[1].replaceAll('_', '-');
  }
  return undefined;
}

/**
 * Splits a cgroup path (relative `/kubepods/…` or absolute `/sys/fs/cgroup/…`; trailing slashes ignored) into the
 * container id, the runtime hint, the pod UID and the conmon flag. Anything else (system slices, `.mount` units, the
 * root) gives `{}`. Never throws.
 */
export function parseCgroupPath(path: string): CgroupIds {
  if (typeof path !== 'string') return {};
  const segments = path.split('/').filter((s) => s !== '');
  const leaf = segments[segments.length - 1];
  if (leaf === undefined || leaf.endsWith('.mount')) return {};
  const out: CgroupIds = {};
  const podUid = podUidOf(segments);

  const conmon = CONMON_RE.exec(leaf);
  if (conmon !== null) {
    if (conmon[1] === 'crio') out.hint = 'crio';
    if (podUid !== undefined) out.podUid = podUid;
    out.conmon = true;
    return out;
  }

  const m = LEAF_RE.exec(leaf);
  if (m?.[2] !== undefined) {
    out.id = m[2];
    const hint = m[1] !== undefined ? PREFIX_HINT[m[1]] : segments[segments.length - 2] === 'docker' ? 'docker' : undefined;
    if (hint !== undefined) out.hint = hint;
  }
  if (podUid !== undefined) out.podUid = podUid;
  return out;
}

/**
 * The cgroup path (as podvisor names cgroups: `/`-rooted, below the hierarchy root) of an OCI `linux.cgroupsPath`:
 * cgroupfs paths as they are; the systemd form `slice:prefix:name` as systemd lays it out (`a-b.slice` lives in
 * `/a.slice/a-b.slice`; the unit is `<prefix>-<name>.scope`, or `<name>` itself when it already ends in `.slice`).
 * Anything else: undefined.
 */
export function cgroupFromCgroupsPath(cgroupsPath: string): string | undefined {
  if (cgroupsPath.startsWith('/')) return cgroupsPath.length > 1 ? cgroupsPath.replace(/\/+$/, '') : '/';
  const parts = cgroupsPath.split(':');
  if (parts.length !== 3) return undefined;
  const [slice = '', prefix = '', name = ''] = parts;
  if (name === '') return undefined;
  let path = '';
  if (slice !== '' && slice !== '-.slice') {
    if (!slice.endsWith('.slice')) return undefined;
    const words = slice.slice(0, -'.slice'.length).split('-');
    for (let i = 1; i <= words.length; i++) path += `/${words.slice(0, i).join('-')}.slice`;
  }
  const unit = name.endsWith('.slice') ? name : `${prefix === '' ? '' : `${prefix}-`}${name}.scope`;
  return `${path}/${unit}`;
}
