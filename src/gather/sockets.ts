/** The `tcp` and `udp` kinds: socket counts of a network namespace, from its owner's /proc/<pid>/net/{tcp,tcp6,udp,udp6}. */
import { hostPath } from '../host/paths.js';
import type { SocketStats } from '../model/network.js';
import { parseTcpStates, parseUdpStats } from '../proc/net-sockets.js';
import type { Pending } from './collector-errors.js';

/** Each file once; a missing one (IPv6 off) is absent, a failing one counted as a network error and absent. */
export function readSockets(
  read: (file: string) => string | undefined,
  procRoot: string,
  pid: number,
  kinds: { tcp: boolean; udp: boolean },
  pending: Pending,
): SocketStats | undefined {
  const one = (name: 'tcp' | 'tcp6' | 'udp' | 'udp6'): Record<string, number> | undefined => {
    const file = hostPath(procRoot, String(pid), 'net', name);
    try {
      const text = read(file);
      if (text === undefined) return undefined;
      if (name === 'tcp' || name === 'tcp6') return parseTcpStates(text, file);
      const u = parseUdpStats(text, file);
      return { listen: u.listen, dropped: u.dropped, rxqueued: u.rxQueued, txqueued: u.txQueued };
    } catch (err) {
      pending.push(['network', file, err]);
      return undefined;
    }
  };
  const out: SocketStats = {};
  if (kinds.tcp) {
    const tcp = one('tcp');
    const tcp6 = one('tcp6');
    if (tcp !== undefined) out.tcp = tcp;
    if (tcp6 !== undefined) out.tcp6 = tcp6;
  }
  if (kinds.udp) {
    const udp = one('udp');
    const udp6 = one('udp6');
    if (udp !== undefined) out.udp = udp;
    if (udp6 !== undefined) out.udp6 = udp6;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
