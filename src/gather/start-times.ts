/**
 * container_start_time_seconds of a cgroup no runtime knows, with cAdvisor's raw semantics: the earliest mtime of the
 * cgroup's directories, taken when the cgroup is first seen and kept while it exists.
 */
import fs from 'node:fs';
import { cgroupDirs } from '../cgroup/discover.js';
import type { CgroupLayout } from '../cgroup/types.js';

export class StartTimes {
  readonly #layout: CgroupLayout;
  readonly #known = new Map<string, number>();

  constructor(layout: CgroupLayout) {
    this.#layout = layout;
  }

  /** Unix seconds; undefined when no directory of the cgroup can be stat'ed. */
  of(id: string): number | undefined {
    const known = this.#known.get(id);
    if (known !== undefined) return known;
    let min = Infinity;
    for (const dir of cgroupDirs(this.#layout, id)) {
      try {
        const st = fs.statSync(dir, { throwIfNoEntry: false });
        if (st !== undefined) min = Math.min(min, st.mtimeMs);
      } catch {
        // unreadable: leave it out, the start time falls back to the other hierarchies
      }
    }
    if (!Number.isFinite(min)) return undefined;
    const s = Math.floor(min / 1000);
    this.#known.set(id, s);
    return s;
  }

  /** Forgets the cgroups that are gone. */
  keepOnly(present: ReadonlySet<string>): void {
    for (const id of this.#known.keys()) if (!present.has(id)) this.#known.delete(id);
  }
}
