import fs from 'node:fs';
import { isMissing } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import type { CgroupLayout } from './types.js';

/**
 * Which cgroups exist. As in cAdvisor's raw factory, every cgroup is a container, named by its path below the
 * hierarchy root: `/` is the root, `/kubepods/burstable/pod<uid>/<id>` a container.
 */

/**
 * The v1 controllers podvisor reads stats from; their trees make up the cgroup list. (cAdvisor also walks cpuset,
 * devices and hugetlb, but a cgroup found only there has no stats podvisor reads, and each extra tree costs a
 * readdir per cgroup on every gather.)
 */
const V1_READ_CONTROLLERS: readonly string[] = ['cpu', 'cpuacct', 'memory', 'blkio', 'pids'];

/** Where cgroup.procs is taken from on v1: the first of these hierarchies in which the cgroup exists. */
const V1_PROCS_CONTROLLERS: readonly string[] = ['pids', 'cpu', 'cpuacct', 'memory', 'blkio'];

/** The hierarchy roots to walk: the cgroup2 mount on pure v2, else each distinct v1 mount we read (hybrid reads v1). */
function hierarchyRoots(layout: CgroupLayout, controllers: readonly string[] = V1_READ_CONTROLLERS): string[] {
  if (layout.mode === 'v2') return layout.v2 === undefined ? [] : [layout.v2];
  const roots: string[] = [];
  for (const controller of controllers) {
    const dir = layout.v1.get(controller);
    if (dir !== undefined && !roots.includes(dir)) roots.push(dir);
  }
  return roots;
}

/** The directory of cgroup `path` under a hierarchy root (the root itself for `/`, without a trailing slash). */
function dirOf(root: string, path: string): string {
  return path === '/' ? root : hostPath(root, path);
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** The parent cgroup path of `path` (`/` for a top-level cgroup, and for `/` itself). */
export function parentCgroup(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** True if `path` or a cgroup below it can start with one of the prefixes: worth descending into. */
function mayMatchBelow(path: string, prefixes: readonly string[]): boolean {
  const base = path === '/' ? '/' : `${path}/`;
  return prefixes.some((p) => base.startsWith(p) || p.startsWith(base));
}

function isReported(path: string, prefixes: readonly string[]): boolean {
  return path === '/' || prefixes.length === 0 || prefixes.some((p) => path.startsWith(p));
}

/**
 * Walks the hierarchies podvisor reads, one directory per step, yielding every cgroup path found (a path present in
 * several v1 hierarchies is yielded once per hierarchy). Lazy, so a caller on the HTTP thread can pause between steps.
 * `allowPrefixes` (`--raw-cgroup-prefix-allowlist`): empty reports everything; otherwise `/` plus the paths that
 * start with a prefix, and subtrees that cannot match are not walked.
 * A directory that vanishes mid-walk is skipped. Other errors go to `onError` (and that subtree is skipped);
 * without `onError` they throw.
 */
export function* walkCgroups(
  layout: CgroupLayout,
  allowPrefixes: readonly string[],
  onError?: (dir: string, err: unknown) => void,
): Generator<string, void, undefined> {
  for (const root of hierarchyRoots(layout)) {
    const countsSubdirs = isCgroupFs(root);
    const stack = ['/'];
    for (let path = stack.pop(); path !== undefined; path = stack.pop()) {
      let entries: fs.Dirent[];
      const dir = dirOf(root, path);
      try {
        // Most cgroups are leaves (the containers). On cgroupfs a directory's link count is 2 + its subdirectories,
        // so a leaf needs one stat instead of a readdir listing its ~20-60 control files.
        if (countsSubdirs && path !== '/') {
          const st = fs.statSync(dir, { throwIfNoEntry: false });
          if (st === undefined) continue;
          if (st.nlink === 2) {
            if (isReported(path, allowPrefixes)) yield path;
            continue;
          }
        }
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) continue;
        if (onError === undefined) throw err;
        onError(dir, err);
        continue;
      }
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const child = childPath(path, entry.name);
        if (allowPrefixes.length === 0 || mayMatchBelow(child, allowPrefixes)) stack.push(child);
      }
      if (isReported(path, allowPrefixes)) yield path;
    }
  }
}

/** cgroup (v1) and cgroup2 superblock magics (linux/magic.h). */
const CGROUP_FS_MAGICS: ReadonlySet<number> = new Set([0x27e0eb, 0x63677270]);

/** True if `root` is a cgroupfs mount (kernfs: directory link counts are 2 + subdirectories), not a fixture tree. */
function isCgroupFs(root: string): boolean {
  try {
    return CGROUP_FS_MAGICS.has(fs.statfsSync(root).type);
  } catch {
    return false;
  }
}

/** Cgroup paths sorted, `/` first, each once. */
export function sortCgroups(paths: Iterable<string>): string[] {
  return [...new Set(paths)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Every cgroup path, sorted (`/` first), found by walking the hierarchies podvisor reads: the cgroup2 tree on
 * pure v2; the union of the v1 controller trees (each mount dir once) on v1 and hybrid. See walkCgroups.
 */
export function listCgroups(layout: CgroupLayout, allowPrefixes: readonly string[], onError?: (dir: string, err: unknown) => void): string[] {
  return sortCgroups(walkCgroups(layout, allowPrefixes, onError));
}

/**
 * The directories of cgroup `path` in every hierarchy podvisor reads, existing or not
 * (for existence checks and the earliest-mtime start time).
 */
export function cgroupDirs(layout: CgroupLayout, path: string): string[] {
  return hierarchyRoots(layout).map((root) => dirOf(root, path));
}

function isDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** True if the cgroup still exists in at least one hierarchy podvisor reads. */
export function cgroupExists(layout: CgroupLayout, path: string): boolean {
  return cgroupDirs(layout, path).some(isDir);
}

/**
 * The `cgroup.procs` file to list the cgroup's processes from: the cgroup2 dir on pure v2; on v1 and hybrid the
 * first of the pids, cpu, cpuacct, memory, blkio hierarchies in which the cgroup exists.
 * `undefined` when it exists in none.
 */
export function procsFile(layout: CgroupLayout, path: string): string | undefined {
  const dir = hierarchyRoots(layout, V1_PROCS_CONTROLLERS)
    .map((root) => dirOf(root, path))
    .find(isDir);
  return dir === undefined ? undefined : hostPath(dir, 'cgroup.procs');
}
