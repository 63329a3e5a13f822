/**
 * Process sampling from /proc: CPU time (own and reaped children's, so a cAdvisor that forks du/find pays for it),
 * VmRSS, VmHWM and its reset, whole-machine CPU and load average.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

let clkTck: number | undefined;

/** USER_HZ, the unit of the times in /proc/<pid>/stat (`getconf CLK_TCK`, 100 on Linux). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface CpuTimes {
  /** utime + stime of every thread of the process, seconds */
  self: number;
  /** cutime + cstime: children the process waited for (du, find, ...), seconds */
  children: number;
}

/** CPU times of `pid` from /proc/<pid>/stat; throws if the process is gone. */
export function cpuTimes(pid: number): CpuTimes {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, so utime (14) is index 11 here.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const hz = clockTicks();
  return { self: ((f[11] ?? NaN) + (f[12] ?? NaN)) / hz, children: ((f[13] ?? NaN) + (f[14] ?? NaN)) / hz };
}

/** Own + children's CPU seconds. */
export function cpuTotal(pid: number): number {
  const t = cpuTimes(pid);
  return t.self + t.children;
}

function statusKiB(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

export const rssMiB = (pid: number): number => statusKiB(pid, 'VmRSS') / 1024;
export const hwmMiB = (pid: number): number => statusKiB(pid, 'VmHWM') / 1024;

/** Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0); false if the kernel refused. */
export function resetHwm(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS every `everyMs` until stopped: the peak seen (a cross-check of VmHWM). */
export class RssSampler {
  peak: number;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    everyMs = 20,
  ) {
    this.peak = rssMiB(pid);
    this.#timer = setInterval(() => {
      try {
        this.peak = Math.max(this.peak, rssMiB(pid));
      } catch {
        // exited
      }
    }, everyMs);
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.peak;
  }
}

/** Whole-machine [busy, total] jiffies from the first line of /proc/stat (idle and iowait are not busy). */
export function machineJiffies(): [number, number] {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1, 9).map(Number) ?? [];
  const total = cpu.reduce((a, b) => a + b, 0);
  return [total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total];
}

/** % of all CPUs busy between two machineJiffies() readings. */
export function machineBusyPct(a: [number, number], b: [number, number]): number {
  return b[1] === a[1] ? NaN : ((b[0] - a[0]) / (b[1] - a[1])) * 100;
}

export const loadavg = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Pids whose /proc/<pid>/comm is `comm` (e.g. the runtime daemons). */
export function pidsByComm(comm: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** Own CPU seconds of several processes together (0 for those gone). */
export function cpuOf(pids: readonly number[]): number {
  let s = 0;
  for (const pid of pids) {
    try {
      s += cpuTimes(pid).self;
    } catch {
      // gone
    }
  }
  return s;
}
