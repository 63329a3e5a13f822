/** container_ulimits_soft: the soft limits of a runtime container's root process, from /proc/<pid>/limits. */
import { hostPath } from '../host/paths.js';
import { parseLimits } from '../proc/limits.js';
import type { Pending } from './collector-errors.js';

/** cAdvisor's `ulimit` label values, by the name /proc/<pid>/limits prints: it exports only the open files limit. */
const ULIMITS: readonly (readonly [printed: string, label: string])[] = [['Max open files', 'max_open_files']];

/** Soft limits by label value (-1: unlimited); undefined when the process is gone or the file failed (a process error). */
export function readUlimits(read: (file: string) => string | undefined, procRoot: string, pid: number, pending: Pending): Record<string, number> | undefined {
  const file = hostPath(procRoot, String(pid), 'limits');
  try {
    const text = read(file);
    if (text === undefined) return undefined;
    const limits = parseLimits(text, file);
    const out: Record<string, number> = {};
    for (const [printed, label] of ULIMITS) {
      const limit = limits.get(printed);
      if (limit !== undefined) out[label] = limit.soft;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  } catch (err) {
    pending.push(['process', file, err]);
    return undefined;
  }
}
