/**
 * /proc/diskstats for the filesystem rows of the diskIO families on `/`: the counters of each block-device filesystem's
 * device, merged into container_fs_reads_total and the others as cAdvisor's ioValues does (containers get none: the
 * disk's counters are not theirs, metrics/container/diskio.ts).
 */
import type { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import type { DiskIoCounters } from '../model/disk.js';
import { parseDiskstats } from '../proc/diskstats.js';
import type { CollectorErrors } from './collector-errors.js';

/** By `/dev/<name>`, as filesystems are named; unreadable or malformed: counted as a blkio error, and empty. */
export function readDiskstats(reader: FileReader, procRoot: string, errors: CollectorErrors): Map<string, DiskIoCounters> {
  const file = hostPath(procRoot, 'diskstats');
  const out = new Map<string, DiskIoCounters>();
  try {
    const text = reader.read(file);
    if (text === undefined) return out;
    for (const d of parseDiskstats(text, file).values()) {
      out.set(`/dev/${d.name}`, {
        readsCompleted: d.readsCompleted,
        readsMerged: d.readsMerged,
        sectorsRead: d.sectorsRead,
        readSeconds: d.readMs / 1000,
        writesCompleted: d.writesCompleted,
        writesMerged: d.writesMerged,
        sectorsWritten: d.sectorsWritten,
        writeSeconds: d.writeMs / 1000,
        ioInProgress: d.ioInProgress,
        ioSeconds: d.ioMs / 1000,
        weightedIoSeconds: d.weightedIoMs / 1000,
      });
    }
  } catch (err) {
    errors.count('blkio', file, err);
  }
  return out;
}
