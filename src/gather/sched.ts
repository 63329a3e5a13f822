/**
 * The `sched` kind: /proc/<pid>/schedstat summed over a cgroup's processes, as cAdvisor sums it
 * (Handler.schedulerStatsFromProcs): one file per process (the main thread's numbers), and the last reading of each
 * process that has since exited is kept in the sum, so the counters do not fall when a process ends.
 */
import { parentCgroup } from '../cgroup/discover.js';
import { hostPath } from '../host/paths.js';
import type { SchedStats } from '../model/snapshot.js';
import { parseSchedstat, type Schedstat } from '../proc/schedstat.js';
import type { Pending } from './collector-errors.js';

interface CgroupSched {
  last: Map<number, Schedstat>;
  saved: Schedstat;
  /** Whether any process's schedstat was ever read: until then the sums are unknown, not 0. */
  seen: boolean;
}

export class SchedTracker {
  readonly #byCgroup = new Map<string, CgroupSched>();

  /**
   * The cgroup's sums now; undefined when a file existed but failed (counted as a sched error), or when no process's
   * file has been read yet (absent, not 0).
   */
  read(id: string, pids: readonly number[], procRoot: string, read: (file: string) => string | undefined, pending: Pending): SchedStats | undefined {
    let state = this.#byCgroup.get(id);
    if (state === undefined) {
      state = { last: new Map(), saved: { runNs: 0, runqueueNs: 0, runPeriods: 0 }, seen: false };
      this.#byCgroup.set(id, state);
    }
    const alive = new Set<number>();
    for (const pid of pids) {
      const file = hostPath(procRoot, String(pid), 'schedstat');
      try {
        const text = read(file);
        if (text === undefined) continue; // exited since the listing: its last reading moves to `saved` below
        state.last.set(pid, parseSchedstat(text, file));
        alive.add(pid);
        state.seen = true;
      } catch (err) {
        pending.push(['sched', file, err]);
        return undefined;
      }
    }
    if (!state.seen) return undefined;
    const sum = { ...state.saved };
    for (const [pid, s] of state.last) {
      sum.runNs += s.runNs;
      sum.runqueueNs += s.runqueueNs;
      sum.runPeriods += s.runPeriods;
      if (alive.has(pid)) continue;
      state.saved.runNs += s.runNs;
      state.saved.runqueueNs += s.runqueueNs;
      state.saved.runPeriods += s.runPeriods;
      state.last.delete(pid);
    }
    return { runSeconds: sum.runNs / 1e9, runqueueSeconds: sum.runqueueNs / 1e9, runPeriods: sum.runPeriods };
  }

  /** Forgets cgroups that are gone. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.#byCgroup.keys()) if (!ids.has(id)) this.#byCgroup.delete(id);
  }
}

/**
 * Each cgroup's own sums plus those of every cgroup below it among `ids` (sorted, parents first), as cAdvisor sums the
 * processes of a container's whole subtree. A cgroup with no processes of its own gets its descendants' sums.
 */
export function subtreeSums(own: ReadonlyMap<string, SchedStats>, ids: readonly string[]): Map<string, SchedStats> {
  const known = new Set(ids);
  const total = new Map<string, SchedStats>();
  for (const [id, s] of own) total.set(id, { ...s });
  for (let i = ids.length - 1; i >= 0; i--) {
    const id = ids[i];
    const t = id === undefined ? undefined : total.get(id);
    if (id === undefined || t === undefined || id === '/') continue;
    let parent = parentCgroup(id);
    while (parent !== '/' && !known.has(parent)) parent = parentCgroup(parent);
    if (!known.has(parent)) continue;
    const p = total.get(parent);
    total.set(
      parent,
      p === undefined
        ? { ...t }
        : { runSeconds: p.runSeconds + t.runSeconds, runqueueSeconds: p.runqueueSeconds + t.runqueueSeconds, runPeriods: p.runPeriods + t.runPeriods },
    );
  }
  return total;
}
