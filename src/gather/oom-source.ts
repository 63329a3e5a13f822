/**
 * Where container_oom_events_total comes from on this node: the kernel's own counters (memory.events / memory.oom_control
 * `oom_kill`, and /proc/vmstat `oom_kill` for `/`, all added in Linux 4.13), or, on older kernels, the OOM killer's
 * messages in /dev/kmsg, counted from podvisor's start (and whatever is still in the kernel's ring buffer).
 */
import { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import { KmsgOomCounter } from './kmsg.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export type OomSource = 'kernel' | 'kmsg';

/** `kernel` when /proc/vmstat has `oom_kill` (the memory cgroup's counters came with it), else `kmsg`. */
export function detectOomSource(vmstat: string | undefined): OomSource {
  return vmstat !== undefined && /^oom_kill \d+$/m.test(vmstat) ? 'kernel' : 'kmsg';
}

export interface OomFallback {
  counts: () => ReadonlyMap<string, number>;
  close: () => Promise<void>;
}

/**
 * Decides the source and logs it; on `kmsg` starts reading <rootfs>/dev/kmsg. If that cannot be opened (not mounted
 * into the pod, no permission), says so once and reports no OOM series rather than zeros.
 */
export async function startOomSource(rootfs: string, log: Logger): Promise<OomFallback | undefined> {
  let vmstat: string | undefined;
  try {
    vmstat = new FileReader().read(hostPath(rootfs, 'proc/vmstat'));
  } catch {
    vmstat = undefined;
  }
  const source = detectOomSource(vmstat);
  if (source === 'kernel') {
    log.info('OOM kills are counted by the kernel', { source: 'memory.events / memory.oom_control oom_kill' });
    return undefined;
  }
  const path = hostPath(rootfs, 'dev/kmsg');
  const counter = new KmsgOomCounter({ path, log });
  try {
    await counter.start();
  } catch (err) {
    log.warn('this kernel has no oom_kill counter and the kernel log cannot be read: container_oom_events_total is not exported', {
      error: errorMessage(err),
    });
    return undefined;
  }
  log.info('OOM kills are counted from the kernel log (this kernel has no oom_kill counter)', { source: path });
  return { counts: () => counter.counts(), close: () => counter.close() };
}
