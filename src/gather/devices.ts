/** `major:minor` → `/dev/<name>` from /proc/partitions: the `device` label of blkio series. */
import type { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import { parsePartitions } from '../proc/partitions.js';
import type { CollectorErrors } from './collector-errors.js';

/** Unreadable or malformed: counted as a blkio error, and the names are unknown (an empty map). */
export function readDeviceNames(reader: FileReader, procRoot: string, errors: CollectorErrors): Map<string, string> {
  const file = hostPath(procRoot, 'partitions');
  try {
    const text = reader.read(file);
    return text === undefined ? new Map<string, string>() : parsePartitions(text, file);
  } catch (err) {
    errors.count('blkio', file, err);
    return new Map<string, string>();
  }
}
