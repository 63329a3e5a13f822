import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/**
 * Parses `/proc/partitions` into `major:minor` → `/dev/<name>`, the `device` label cAdvisor puts on blkio and
 * diskstats series. The file is a `major minor  #blocks  name` header, a blank line, then one row per block
 * device and partition (`   8        1  488385536 sda1`). Throws ParseError if the header or a row is malformed.
 * The name is used as the kernel prints it (a `/` in a device name, e.g. `cciss/c0d0`, appears as `!`).
 */
export function parsePartitions(text: string, file: string): Map<string, string> {
  const result = new Map<string, string>();
  const lines = text.split('\n');
  let sawHeader = false;
  for (let i = 0; i < lines.length; i++) {
    const fields = (lines[i] ?? '').trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === '') continue;
    if (!sawHeader) {
      if (fields[0] !== 'major' || fields[1] !== 'minor') throw new ParseError(file, `line ${i + 1}: expected the "major minor #blocks name" header`);
      sawHeader = true;
      continue;
    }
    const [majorToken, minorToken, blocksToken, name] = fields;
    const major = parseDecimal(majorToken);
    const minor = parseDecimal(minorToken);
    if (fields.length !== 4 || major === undefined || minor === undefined || parseDecimal(blocksToken) === undefined || name === undefined) {
      throw new ParseError(file, `line ${i + 1}: expected "<major> <minor> <#blocks> <name>"`);
    }
    result.set(`${major}:${minor}`, `/dev/${name}`);
  }
  if (!sawHeader) throw new ParseError(file, 'missing the "major minor #blocks name" header');
  return result;
}
