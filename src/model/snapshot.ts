import type { AcceleratorDevice, AcceleratorStatus, ContainerAccelerator } from './accelerator.js';
import type { CgroupStats, CollectorName } from './cgroup.js';
import type { ContainerFsUsage, DiskIoCounters, DiskWalkStats, FilesystemStats } from './disk.js';
import type { MetricKind } from './kinds.js';
import type { MachineSnapshot } from './machine.js';
import type { NetworkInterfaceStats, SocketStats } from './network.js';
import type { ContainerLabels, RuntimeStatus } from './runtime.js';

/**
 * The result of one gather: plain, immutable data (structured-cloneable, so it can cross a worker boundary).
 * Metric specs turn it into series; nothing downstream reads the host again.
 */

/** From the cgroup's own cgroup.procs and /proc/<pid>/fd of each of its processes. */
export interface ProcessStats {
  processes?: number;
  fileDescriptors?: number;
  sockets?: number;
  /** Soft limits of the container's root process (/proc/<pid>/limits), by cAdvisor's name (`max_open_files`); -1 is unlimited. */
  ulimitsSoft?: Readonly<Record<string, number>>;
}

/**
 * /proc/<pid>/schedstat (a process's main thread, as cAdvisor reads it) summed over the processes of the cgroup and of
 * the cgroups below it (the `sched` kind).
 */
export interface SchedStats {
  runSeconds: number;
  runqueueSeconds: number;
  runPeriods: number;
}

export interface ContainerSnapshot {
  /** The cgroup path: `/` is the root, `/kubepods/burstable/pod<uid>/<id>` a container. */
  id: string;
  labels: ContainerLabels;
  cgroup: CgroupStats;
  processes?: ProcessStats;
  /** Interfaces of the network namespace this cgroup owns; absent when it shares the host's (or one already reported). */
  network?: readonly NetworkInterfaceStats[];
  /** Socket counts of the same namespace (the `tcp` and `udp` kinds). */
  sockets?: SocketStats;
  sched?: SchedStats;
  /** Unix seconds: the runtime's start time, else the earliest mtime of the cgroup's directories when first seen. */
  startTimeSeconds?: number;
  /** Disk usage of the container's writable layer (and logs), from the last complete measurement; absent until then. */
  fs?: ContainerFsUsage;
  /** Values of the snapshot's opt-in `container_label_*` / `container_env_*` labels, lined up with extraLabelNames. */
  extraLabelValues?: readonly string[];
  /** The accelerators attributed to this runtime container (the `accelerator` kind), sorted by uuid. */
  accelerators?: readonly ContainerAccelerator[];
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
  /** The metric kinds on in this gather; absent: every kind (families are rendered only for the kinds on). */
  kinds?: readonly MetricKind[];
  /** /proc/diskstats by device name (`/dev/vda`), for the filesystem rows of the diskIO families; absent: diskIO off. */
  diskstats?: ReadonlyMap<string, DiskIoCounters>;
  /** Block-device filesystems (statfs): the root cgroup's container_fs_* series. */
  filesystems?: readonly FilesystemStats[];
  /** The disk-usage measurements' own counts; absent without disk usage. */
  disk?: DiskWalkStats;
  /** Cgroups left out of this gather while their runtime looks them up, and holds that ran out since start. */
  labelHold?: { held: number; expired: number };
  /** The node's accelerators from the last NVML poll (the `accelerator` kind); absent while NVML is down or off. */
  accelerators?: readonly AcceleratorDevice[];
  /** The accelerator collector's state; absent when the `accelerator` kind is off or NVML was not found. */
  acceleratorStatus?: AcceleratorStatus;
}
