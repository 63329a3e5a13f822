/**
 * Network belongs to the owner of a network namespace: the root cgroup gets the host's (from /proc/1), and any other
 * cgroup only if its first live process sits in a namespace that is not the host's and that no cgroup earlier in this
 * gather already reported. That keeps host traffic from repeating on every system service, and a shared namespace
 * from being counted twice.
 */
import fs from 'node:fs';
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

/**
 * The pid whose namespace cgroup `id` reports: 1 for `/`; else its first live process, if that one's namespace is not
 * claimed yet (it is then claimed). Undefined when it owns none.
 */
export function netnsOwner(procRoot: string, id: string, pids: readonly number[] | undefined, claimed: Set<string>, pending: Pending): number | undefined {
  if (id === '/') return 1;
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
    return p;
  }
  return undefined;
}

/** The interfaces of the namespace of `pid`, from /proc/<pid>/net/dev. */
export function readNetDev(read: (file: string) => string | undefined, procRoot: string, pid: number, pending: Pending): NetworkInterfaceStats[] | undefined {
  const file = hostPath(procRoot, String(pid), 'net/dev');
  try {
    const text = read(file);
    return text === undefined ? undefined : parseNetDev(text, file);
  } catch (err) {
    pending.push(['network', file, err]);
    return undefined;
  }
}
