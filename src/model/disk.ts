import type { Histogram } from './histogram.js';

/** Disk usage: of a container's writable layer, and of the node's block-device filesystems. */
export interface ContainerFsUsage {
  device: string;
  usageBytes: number;
  /** Inodes used (cAdvisor's container_fs_inodes_total for containers). */
  inodes: number;
  /** Of the backing filesystem (statfs), when known. */
  limitBytes?: number;
  inodesFree?: number;
}

/** One block-device filesystem (statfs). */
export interface FilesystemStats {
  /** The device label: the mount source (`/dev/vda1`), as cAdvisor names filesystems. */
  device: string;
  capacityBytes: number;
  freeBytes: number;
  inodes: number;
  inodesFree: number;
}

/** The disk-usage measurements' own counts since start (podvisor_disk_walk_*). */
export interface DiskWalkStats {
  /** Measurements by result: ok, timeout (cancelled at the deadline), error (failed or denied). */
  walks: { ok: number; timeout: number; error: number };
  /** Files visited by walks. */
  files: number;
  /** Seconds each measurement took. */
  duration: Histogram;
  /** Containers due for a measurement and waiting for a slot, at the time of the gather. */
  queueLength: number;
}

/** One block device's /proc/diskstats counters, times in seconds (the kernel counts milliseconds). */
export interface DiskIoCounters {
  readsCompleted: number;
  readsMerged: number;
  sectorsRead: number;
  readSeconds: number;
  writesCompleted: number;
  writesMerged: number;
  sectorsWritten: number;
  writeSeconds: number;
  ioInProgress: number;
  ioSeconds: number;
  weightedIoSeconds: number;
}
