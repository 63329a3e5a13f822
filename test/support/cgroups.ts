/**
 * Cleanup for cgroups a test caused to exist: Docker and containerd leave the (empty) pod cgroup of
 * `--cgroup-parent` / `--cgroup` behind after the container is gone. Removes `relPath` in every mounted hierarchy
 * where it exists and is empty; never touches anything else.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup';

export function removeCgroupDirs(relPath: string): void {
  if (!relPath.startsWith('/kubepods/') || relPath.includes('..')) throw new Error(`refusing to remove ${relPath}: not a test pod cgroup`);
  let mounts: string[];
  try {
    mounts = fs.readdirSync(ROOT).map((m) => path.join(ROOT, m));
  } catch {
    return;
  }
  if (fs.existsSync(path.join(ROOT, 'cgroup.controllers'))) mounts = [ROOT]; // pure v2
  for (const mount of mounts) {
    const dir = path.join(mount, relPath);
    try {
      fs.rmdirSync(dir);
    } catch {
      // not there, or not empty (a container still in it): left alone
    }
  }
}

/** A kernel file of `key value` lines (memory.stat, memory.oom_control, /proc/vmstat) as numbers by key. */
export function flatKeyed(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [k, v] = line.split(' ');
    if (k !== undefined && k !== '' && v !== undefined) out.set(k, Number(v));
  }
  return out;
}
