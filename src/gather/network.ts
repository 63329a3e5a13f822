/**
 * Network belongs to the owner of a network namespace: the root cgroup gets the host's (from /proc/1), and any other
 * cgroup only if its first live process sits in a namespace that is not the host's and that no cgroup earlier in this
 * gather already reported. That keeps host traffic from repeating on every system service, and a shared namespace
 * from being counted twice.
 */
import fs from 'node:fs';
import type { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import { netnsId } from '../host/process-files.js';
import type { NetworkInterfaceStats } from '../model/network.js';
import { parseNetDev } from '../proc/net-dev.js';
import type { Pending } from './collector-errors.js';

/**
 * The host's network namespace: init's, else kthreadd's (pid 2: kernel threads always live in the initial
 * namespace; some sandboxes' init cannot be inspected), else, as a last resort, our own — right only with
 * hostNetwork, which the DaemonSet does not use, so it is tried last.
 */
export function hostNetns(procRoot: string): string | undefined {
  for (const link of ['1/ns/net', '2/ns/net', 'self/ns/net']) {
    try {
      return fs.readlinkSync(hostPath(procRoot, link));
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** The namespaces already reported in one gather; the host's is claimed first, for `/` only. */
export function claimHostNetns(procRoot: string): Set<string> {
  const host = hostNetns(procRoot);
  return new Set(host === undefined ? [] : [host]);
}

/** The interfaces of the namespace cgroup `id` owns, or undefined when it owns none (or claimed one already reported). */
export function readNetwork(
  reader: FileReader,
  procRoot: string,
  id: string,
  pids: readonly number[] | undefined,
  claimed: Set<string>,
  pending: Pending,
): NetworkInterfaceStats[] | undefined {
  let pid: number | undefined;
  if (id === '/') pid = 1;
  else {
    for (const p of pids ?? []) {
      let ns: string | undefined;
      try {
        ns = netnsId(procRoot, p);
      } catch (err) {
        pending.push(['network', hostPath(procRoot, String(p), 'ns/net'), err]);
        return undefined;
      }
      if (ns === undefined) continue; // exited
      if (claimed.has(ns)) return undefined;
      claimed.add(ns);
      pid = p;
      break;
    }
  }
  if (pid === undefined) return undefined;
  const file = hostPath(procRoot, String(pid), 'net/dev');
  try {
    const text = reader.read(file);
    return text === undefined ? undefined : parseNetDev(text, file);
  } catch (err) {
    pending.push(['network', file, err]);
    return undefined;
  }
}
