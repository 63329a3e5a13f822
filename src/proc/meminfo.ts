import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/**
 * Parses `/proc/meminfo` (Documentation/filesystems/proc.rst): `Name:   value kB`, or `Name:   value` for counts
 * such as `HugePages_Total`. Values with the `kB` unit (which the kernel means as KiB) become bytes; values
 * without a unit are returned as they are. Blank lines are skipped; any other unit or shape throws ParseError.
 */
export function parseMeminfo(text: string, file: string): Map<string, number> {
  const result = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (name === '') throw new ParseError(file, `line ${i + 1}: expected "<name>: <value> [kB]"`);
    const [valueToken, unit, extra] = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    const value = parseDecimal(valueToken);
    if (value === undefined || extra !== undefined) {
      throw new ParseError(file, `line ${i + 1}: ${name} has an unexpected value "${line.slice(colon + 1).trim()}"`);
    }
    if (unit === undefined) result.set(name, value);
    else if (unit === 'kB') result.set(name, value * 1024);
    else throw new ParseError(file, `line ${i + 1}: ${name} has an unknown unit "${unit}"`);
  }
  return result;
}
