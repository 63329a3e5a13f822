import type { CgroupStats, CollectorName } from '../cgroup/types.js';
import type { RuntimeStatus } from '../runtime/types.js';
import type { FilesystemStats } from '../disk/filesystems.js';

/**
 * The result of one gather: plain, immutable data (structured-cloneable, so it can cross a worker boundary).
 * Metric specs turn it into series; nothing downstream reads the host again.
 */

/** One interface from /proc/<pid>/net/dev. */
export interface NetworkInterfaceStats {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** From the cgroup's own cgroup.procs and /proc/<pid>/fd of each of its processes. */
export interface ProcessStats {
  processes?: number;
  fileDescriptors?: number;
  sockets?: number;
}

/** The kubelet's label set. Empty strings where unknown; runtime factories fill them in. */
export interface ContainerLabels {
  name: string;
  image: string;
  container: string;
  pod: string;
  namespace: string;
}

export const EMPTY_LABELS: Readonly<ContainerLabels> = Object.freeze({ name: '', image: '', container: '', pod: '', namespace: '' });

export interface ContainerSnapshot {
  /** The cgroup path: `/` is the root, `/kubepods/burstable/pod<uid>/<id>` a container. */
  id: string;
  labels: ContainerLabels;
  cgroup: CgroupStats;
  processes?: ProcessStats;
  /** Interfaces of the network namespace this cgroup owns; absent when it shares the host's (or one already reported). */
  network?: readonly NetworkInterfaceStats[];
  /** Unix seconds: the runtime's start time, else the earliest mtime of the cgroup's directories when first seen. */
  startTimeSeconds?: number;
  /** Disk usage of the container's writable layer (and logs), from the last complete measurement; absent until then. */
  fs?: ContainerFsUsage;
  /** Values of the snapshot's opt-in `container_label_*` / `container_env_*` labels, lined up with extraLabelNames. */
  extraLabelValues?: readonly string[];
}

export interface ContainerFsUsage {
  device: string;
  usageBytes: number;
  /** Inodes used (cAdvisor's container_fs_inodes_total for containers). */
  inodes: number;
  /** Of the backing filesystem (statfs), when known. */
  limitBytes?: number;
  inodesFree?: number;
}

export interface MachineSnapshot {
  cpuCores?: number;
  cpuPhysicalCores?: number;
  cpuSockets?: number;
  memoryBytes?: number;
  swapBytes?: number;
  /** cAdvisor's machine labels; empty strings where unknown. */
  machineId: string;
  systemUuid: string;
  bootId: string;
}

export interface Snapshot {
  /** When the gather started (ms since the epoch). */
  timestampMs: number;
  /** Sorted by id. */
  containers: readonly ContainerSnapshot[];
  machine: MachineSnapshot;
  /** `major:minor` → `/dev/<name>` from /proc/partitions; the blkio `device` label. */
  deviceNames: ReadonlyMap<string, string>;
  /** Cumulative since start: files that existed but could not be read or parsed, by collector. */
  collectorErrors: Readonly<Partial<Record<CollectorName, number>>>;
  /** Opt-in extra label names (`container_label_*`, `container_env_*`), the same on every container series. */
  extraLabelNames?: readonly string[];
  /** Runtime registration state. */
  runtimes?: readonly RuntimeStatus[];
  /** Block-device filesystems (statfs): the root cgroup's container_fs_* series. */
  filesystems?: readonly FilesystemStats[];
}
