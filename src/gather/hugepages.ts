/**
 * The huge page sizes of the node, as cgroup files name them (`hugetlb.2MB.current`) and cAdvisor labels them
 * (`pagesize="2MB"`): from the directories of /sys/kernel/mm/hugepages (`hugepages-2048kB`), read once at startup.
 */
import fs from 'node:fs';
import { hostPath } from '../host/paths.js';

/** `hugepages-2048kB` → `2MB`, `hugepages-1048576kB` → `1GB`, `hugepages-64kB` → `64KB`; undefined for other names. */
export function pagesizeName(dir: string): string | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(dir);
  if (m === null) return undefined;
  let size = Number(m[1]);
  for (const unit of ['KB', 'MB', 'GB', 'TB']) {
    if (size < 1024 || size % 1024 !== 0) return `${size}${unit}`;
    size /= 1024;
  }
  return `${size}PB`;
}

/** The sizes, smallest first; none when the directory is missing (no huge page support) or unreadable. */
export function readHugepageSizes(rootfs: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(hostPath(rootfs, 'sys/kernel/mm/hugepages'));
  } catch {
    return [];
  }
  return entries
    .map((d) => [d, /^hugepages-(\d+)kB$/.exec(d)?.[1]] as const)
    .filter((e): e is readonly [string, string] => e[1] !== undefined)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .flatMap(([d]) => pagesizeName(d) ?? []);
}
