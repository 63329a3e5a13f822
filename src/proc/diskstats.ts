import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/** One row of `/proc/diskstats`: the device's kernel name and its first 11 counters (Documentation/admin-guide/iostats.rst). */
export interface DiskStats {
  name: string;
  readsCompleted: number;
  readsMerged: number;
  sectorsRead: number;
  readMs: number;
  writesCompleted: number;
  writesMerged: number;
  sectorsWritten: number;
  writeMs: number;
  ioInProgress: number;
  ioMs: number;
  weightedIoMs: number;
}

/** major, minor, name and the 11 counters every kernel since 2.6 prints; 4.18 adds 4 discard fields, 5.5 2 flush ones. */
const MIN_FIELDS = 14;

/**
 * Parses `/proc/diskstats` into `major:minor` → the device's name and counters, one entry per row, whatever the
 * device (cAdvisor's getDiskStatsMap in lib/fs/fs.go keeps only names matching `^(?:(?:s|v|xv)d[a-z]+\d*|dm-\d+)$`;
 * the caller decides). Fields past the 14th (discard and flush counters) must be decimal, as cAdvisor requires, and
 * are not returned. Throws ParseError on a row of fewer than 14 fields, a non-decimal field or a repeated
 * `major:minor`.
 */
export function parseDiskstats(text: string, file: string): Map<string, DiskStats> {
  const result = new Map<string, DiskStats>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '') continue;
    const fields = trimmed.split(/\s+/);
    const [majorToken, minorToken, name, ...counterTokens] = fields;
    if (fields.length < MIN_FIELDS || name === undefined) {
      throw new ParseError(file, `line ${i + 1}: ${fields.length} fields, expected at least ${MIN_FIELDS}`);
    }
    const major = parseDecimal(majorToken);
    const minor = parseDecimal(minorToken);
    const counters: number[] = [];
    for (const token of counterTokens) {
      const value = parseDecimal(token);
      if (value === undefined) throw new ParseError(file, `line ${i + 1}: ${name} has a non-numeric field "${token}"`);
      counters.push(value);
    }
    if (major === undefined || minor === undefined) throw new ParseError(file, `line ${i + 1}: expected "<major> <minor> <name> <counters>"`);
    const key = `${major}:${minor}`;
    if (result.has(key)) throw new ParseError(file, `line ${i + 1}: ${key} appears twice`);
    const at = (index: number): number => counters[index] ?? 0;
    result.set(key, {
      name,
      readsCompleted: at(0),
      readsMerged: at(1),
      sectorsRead: at(2),
      readMs: at(3),
      writesCompleted: at(4),
      writesMerged: at(5),
      sectorsWritten: at(6),
      writeMs: at(7),
      ioInProgress: at(8),
      ioMs: at(9),
      weightedIoMs: at(10),
    });
  }
  return result;
}
