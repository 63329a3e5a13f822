/**
 * Which filesystem a directory lives on, and that filesystem's size (statfs), cached: the device label of
 * container_fs_* series and the limits/totals cAdvisor reports. Nothing here runs per container per scrape: a
 * directory's device is looked up once, statfs results are reused for `refreshMs`.
 */
import fs from 'node:fs';
import { hostPath } from '../host/paths.js';
import { parseMountinfo, type MountinfoEntry } from '../proc/mountinfo.js';
import type { FilesystemStats } from '../model/disk.js';

/** `major:minor` of a st_dev (glibc's gnu_dev_major/minor encoding). */
export function majorMinor(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

export interface FilesystemsOptions {
  rootfs: string;
  refreshMs?: number;
  now?: () => number;
}

export class Filesystems {
  readonly #rootfs: string;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #mounts: MountinfoEntry[] = [];
  #mountsAt = -Infinity;
  readonly #stats = new Map<string, { at: number; stats: FilesystemStats | undefined }>();
  /** dir → the mount holding it (a directory does not move between filesystems); bounded. */
  readonly #dirs = new Map<string, MountinfoEntry>();

  constructor(opts: FilesystemsOptions) {
    this.#rootfs = opts.rootfs;
    this.#refreshMs = opts.refreshMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  #mountTable(): MountinfoEntry[] {
    if (this.#now() - this.#mountsAt < this.#refreshMs) return this.#mounts;
    this.#mountsAt = this.#now();
    for (const f of ['proc/1/mountinfo', 'proc/self/mountinfo']) {
      try {
        this.#mounts = parseMountinfo(fs.readFileSync(hostPath(this.#rootfs, f), 'utf8'), f);
        return this.#mounts;
      } catch {
        // try the next one
      }
    }
    return this.#mounts;
  }

  /** Block-device filesystems (`/dev/...` sources), one per device: the root cgroup reports their totals. */
  all(): FilesystemStats[] {
    const seen = new Set<string>();
    const out: FilesystemStats[] = [];
    for (const m of this.#mountTable()) {
      if (!m.source.startsWith('/dev/') || seen.has(m.source)) continue;
      seen.add(m.source);
      const s = this.#statfs(m);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /** The filesystem holding `dir` (a host path, resolved under --rootfs); undefined if it cannot be told. */
  of(dir: string): FilesystemStats | undefined {
    const known = this.#dirs.get(dir);
    if (known !== undefined) return this.#statfs(known);
    let dev: bigint;
    try {
      dev = fs.statSync(hostPath(this.#rootfs, dir), { bigint: true }).dev;
    } catch {
      return undefined;
    }
    const mm = majorMinor(dev);
    const mounts = this.#mountTable().filter((m) => m.majorMinor === mm);
    const m = mounts.find((x) => x.root === '/') ?? mounts[0];
    if (m === undefined) return undefined;
    if (this.#dirs.size >= 10_000) this.#dirs.clear();
    this.#dirs.set(dir, m);
    return this.#statfs(m);
  }

  #statfs(m: MountinfoEntry): FilesystemStats | undefined {
    const key = m.mountPoint;
    const hit = this.#stats.get(key);
    if (hit !== undefined && this.#now() - hit.at < this.#refreshMs) return hit.stats;
    let stats: FilesystemStats | undefined;
    try {
      const s = fs.statfsSync(hostPath(this.#rootfs, m.mountPoint));
      stats = { device: m.source, capacityBytes: s.bsize * s.blocks, freeBytes: s.bsize * s.bfree, inodes: s.files, inodesFree: s.ffree };
    } catch {
      stats = undefined;
    }
    this.#stats.set(key, { at: this.#now(), stats });
    return stats;
  }
}
