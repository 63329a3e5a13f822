import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/** One task's scheduler statistics: time on a CPU and waiting on a runqueue (ns), and the number of times it ran. */
export interface Schedstat {
  runNs: number;
  runqueueNs: number;
  runPeriods: number;
}

/**
 * Parses `/proc/<pid>/schedstat` or `/proc/<pid>/task/<tid>/schedstat`: one line, `%llu %llu %lu\n`, of
 * se.sum_exec_runtime, sched_info.run_delay and sched_info.pcount (fs/proc/base.c proc_pid_schedstat). Like cAdvisor,
 * the three numbers must be separated by single spaces and nothing but newlines may follow. Throws ParseError
 * otherwise.
 *
 * These are one task's numbers, not its thread group's: `/proc/<pid>/schedstat` is the same as
 * `/proc/<pid>/task/<pid>/schedstat`, the main thread only (on a 15-thread process the main thread showed 0.28 s
 * run time where its threads summed to 617 s).
 *
 * What cAdvisor sums for `container_cpu_schedstat_{run_seconds,runqueue_seconds,run_periods}_total`
 * (lib/container/libcontainer/handler.go, Handler.schedulerStatsFromProcs):
 * - the pids are cgroupManager.GetAllPids(), i.e. opencontainers/cgroups GetAllPids: every `cgroup.procs` of the
 *   container's cgroup and of all its descendant cgroups (a WalkDir; on cgroup v1 under the `devices` hierarchy),
 *   falling back to `cgroup.threads` only for a threaded cgroup v2 whose `cgroup.procs` read fails with ENOTSUP;
 * - for each pid it reads `<rootfs>/proc/<pid>/schedstat`, one file per process (TGID): never `task/<tid>/`, so the
 *   other threads of a multi-threaded process are not counted;
 * - it caches the last reading per pid in the Handler (pidMetricsCache, one Handler per container, kept across
 *   scrapes). The result is the sum over the cache plus pidMetricsSaved; a pid absent from this round's list is added
 *   to pidMetricsSaved with its last reading and dropped from the cache, so an exited process's last values stay in
 *   the counters. A reused pid overwrites its entry (the sum can then go down).
 * - any pid whose schedstat cannot be opened, read or parsed (e.g. a process that exited after the listing) fails the
 *   whole call: it logs at V(4) and the container's Schedstat is the zero value, so the three series read 0 for that
 *   scrape (GetStats assigns the returned zero struct).
 */
export function parseSchedstat(text: string, file: string): Schedstat {
  const fields = text.replace(/\n+$/, '').split(' ');
  const [run, runqueue, periods] = fields.map(parseDecimal);
  if (fields.length !== 3 || run === undefined || runqueue === undefined || periods === undefined) {
    throw new ParseError(file, 'line 1: expected "<run ns> <runqueue ns> <run periods>"');
  }
  return { runNs: run, runqueueNs: runqueue, runPeriods: periods };
}
